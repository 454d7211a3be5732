"""The deployment files in deploy/ (compose, Dockerfile, Grafana, Mosquitto, certificates), checked by parsing them:
Docker cannot run here, so they must be right by construction. Each test lists every problem it finds.

``test_compose_lifeline_commands_parse`` runs every lifeline command line of the compose files through the real
argparse parser; the tests after it read the parsed flags (defaults filled in) against the topics kafka-init makes,
the files the services read, where Faust writes the workers' tables, and the healthchecks.
The real Mosquitto runs the configs in tests/integration/test_deploy_mosquitto.py.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from lifeline.alerting.routing import load_routing
from lifeline.cli import build_parser
from lifeline.paths import REPO
from lifeline.sinks.influxdb import ALERT, ALERT_FIELDS, ALERT_TAGS, READING, READING_TAGS
from tests.deployfiles import (
    COMPOSE,
    COMPOSE_PROD,
    DEPLOY,
    GENERATED_CERTS,
    MOSQUITTO_COMPOSE,
    MOSQUITTO_PROD,
    MOSQUITTO_SHIPPED,
    Topic,
    command,
    compose_files,
    conf_lines,
    created_topics,
    dev_certs,
    flag,
    is_bind,
    is_lifeline,
    load_compose,
    make_dev_certs,
    merge,
    mounts,
    origin,
    rocksdb_table_file,
)

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "influxdb.yaml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "lifeline.yaml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
DOCKERFILE = DEPLOY / "Dockerfile"
HEALTHCHECK = DEPLOY / "healthcheck.py"
FILES = compose_files()


def _fail_on(problems: list[str], what: str) -> None:
    assert not problems, f"{what}:\n  " + "\n  ".join(problems)


def _one_shot(svc: dict[str, Any]) -> bool:
    return str(svc.get("restart", "")) == "no"


def _pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    return bool(name) and tag not in ("", "latest") and any(c.isdigit() for c in tag)


def _service(doc: dict[str, Any], image_prefix: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(n, s) for n, s in doc["services"].items() if str(s.get("image", "")).startswith(image_prefix)][:1]
    return found


# ---- compose: services, healthchecks, dependencies, volumes ----------------------------------------------
def test_compose_services_have_an_image_a_healthcheck_and_real_dependencies() -> None:
    """Every service: a pinned image or a build, a restart policy, a healthcheck unless one-shot; every depends_on
    names a real service with a valid condition that service can meet."""
    problems = []
    for label, doc in FILES.items():
        services = doc["services"]
        for name, svc in services.items():
            where = f"{label}: services.{name}"
            if "image" not in svc and "build" not in svc:
                problems.append(f"{where}: neither image nor build")
            if "image" in svc and not _pinned(str(svc["image"])):
                problems.append(f"{where}.image: pin a version (got {svc['image']!r})")
            if "restart" not in svc:
                problems.append(f"{where}: no restart policy")
            test = svc.get("healthcheck", {}).get("test")
            if not _one_shot(svc) and not (isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL")):
                problems.append(f"{where}.healthcheck.test: expected [CMD, ...] or [CMD-SHELL, ...] (got {test!r})")
            for dep, spec in (svc.get("depends_on") or {}).items():
                cond = spec.get("condition") if isinstance(spec, dict) else None
                if dep not in services:
                    problems.append(f"{where}.depends_on: no service {dep!r}")
                elif cond not in CONDITIONS:
                    problems.append(f"{where}.depends_on.{dep}.condition: expected one of {CONDITIONS} (got {cond!r})")
                elif cond == "service_healthy" and "healthcheck" not in services[dep]:
                    problems.append(f"{where}.depends_on.{dep}: service_healthy, but {dep} has no healthcheck")
                elif (cond == "service_completed_successfully") != _one_shot(services[dep]):
                    problems.append(f"{where}.depends_on.{dep}: use service_completed_successfully for one-shot "
                                    f"jobs only (got {cond})")
    _fail_on(problems, "compose services")


def test_compose_volumes_are_declared_and_bind_mounts_exist() -> None:
    """Named volumes are declared (and every declared one used); bind-mounted host paths exist under deploy/,
    except the certificates make-dev-certs.sh makes (checked below)."""
    problems = []
    for label, doc in FILES.items():
        declared = set(doc.get("volumes") or {})
        used = set()
        for name, svc in doc["services"].items():
            for src, target in mounts(svc):
                where = f"{label}: services.{name}.volumes {src}:{target}"
                if not src:
                    problems.append(f"{where}: an anonymous volume; name it")
                elif not is_bind(src):
                    used.add(src)
                    if src not in declared:
                        problems.append(f"{where}: volume {src!r} is not declared under volumes:")
                elif not src.removeprefix("./").startswith(GENERATED_CERTS) and not (DEPLOY / src).exists():
                    problems.append(f"{where}: {DEPLOY / src} does not exist")
        problems += [f"{label}: volumes.{v}: declared, never used" for v in sorted(declared - used)]
    _fail_on(problems, "compose volumes")


def _state_dirs(svc: dict[str, Any]) -> list[str]:
    """Where a service keeps state that must outlive its container."""
    image, argv = str(svc.get("image", "")), command(svc)
    env = svc.get("environment") or {}
    if image.startswith("eclipse-mosquitto"):
        return ["/mosquitto/data"]
    if image.startswith("apache/kafka") and not _one_shot(svc):
        return [str(env.get("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"))]
    if image.startswith("influxdb"):
        return ["/var/lib/influxdb2", "/etc/influxdb2"]
    if image.startswith("grafana"):
        return ["/var/lib/grafana"]
    if argv[:1] == ["worker"]:
        args = _args(svc)
        if args.store.startswith("rocksdb://"):  # where Faust really writes the table (and its data directory)
            return [str(rocksdb_table_file(args.store, args.data_dir, args.app_id, "engine", 0).parent),
                    str(args.data_dir)]
        return []
    db = flag(argv, "--db")
    return [str(Path(db).parent)] if db else []


def test_compose_state_lives_in_named_volumes() -> None:
    """Broker, Kafka, InfluxDB, Grafana, each worker's RocksDB and the delivery store are on named volumes, one
    per service (two workers never share a RocksDB directory)."""
    problems = []
    for label, doc in FILES.items():
        owners: dict[str, str] = {}
        for name, svc in doc["services"].items():
            named = {t: s for s, t in mounts(svc) if s and not is_bind(s)}
            for d in _state_dirs(svc):
                vol = next((v for t, v in named.items() if d == t or d.startswith(t.rstrip("/") + "/")), None)
                if vol is None:
                    problems.append(f"{label}: services.{name}: its state in {d} is not on a named volume")
                elif owners.get(vol) == name:
                    continue
                elif vol in owners:
                    problems.append(f"{label}: services.{name}: volume {vol!r} already holds {owners[vol]}'s state")
                else:
                    owners[vol] = name
    _fail_on(problems, "state volumes")


def test_compose_secrets_come_from_the_env_file() -> None:
    """Every ${VAR} the compose files need is in .env.example with a placeholder, and deploy/.env is git-ignored."""
    example = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    problems = []
    for path in (COMPOSE, COMPOSE_PROD):
        for var, default in re.findall(r"\$\{(\w+)(:-[^}]*)?\}", path.read_text()):
            if not default and var not in example:
                problems.append(f"{path.name}: ${{{var}}} is required but not in .env.example")
    problems += [f".env.example: {k}={v!r} looks like a real secret; use a change-me placeholder"
                 for k, v in example.items() if "change-me" not in v]
    for secret in ("deploy/.env", "deploy/certs/dev/ca.key"):
        if subprocess.run(["git", "check-ignore", "-q", secret], cwd=REPO, check=False).returncode != 0:
            problems.append(f".gitignore: {secret} must be ignored (a secret or a key)")
    _fail_on(problems, "secrets")


# ---- lifeline command lines ------------------------------------------------------------------------------
def _args(svc: dict[str, Any]) -> argparse.Namespace:
    """A lifeline service's command line as the real parser reads it (defaults filled in)."""
    return build_parser().parse_args(command(svc))


def _running(doc: dict[str, Any], *subcommands: str) -> dict[str, argparse.Namespace]:
    """The lifeline services running one of ``subcommands``, each with its parsed command line."""
    return {n: _args(s) for n, s in doc["services"].items() if is_lifeline(s) and command(s)[:1] in
            [[c] for c in subcommands]}


def test_compose_lifeline_commands_parse() -> None:
    """Every lifeline command line in the compose files parses with the real parser (lifeline.cli.build_parser)."""
    problems = []
    for label, doc in FILES.items():
        for name, svc in doc["services"].items():
            if not is_lifeline(svc):
                continue
            argv = command(svc)
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err):
                    build_parser().parse_args(argv)
            except SystemExit:
                last = err.getvalue().strip().splitlines()[-1:] or ["(no message)"]
                problems.append(f"{label}: services.{name}: `lifeline {' '.join(argv[:1])} ...`: {last[0]}")
    _fail_on(problems, "lifeline command lines")


def _image_paths() -> set[str]:
    """Paths the Dockerfile puts into the image (COPY destinations)."""
    out = set()
    for line in _dockerfile_instructions():
        if line[0] == "COPY" and not line[1].startswith("--from"):
            out.add(line[-1])
    return out


def test_compose_lifeline_files_and_settings_are_there() -> None:
    """Files named on lifeline command lines are in the image or mounted; the token variable is set; Kafka and
    InfluxDB addresses name services; the routes file loads with the real routing loader."""
    problems = []
    image_paths = _image_paths()
    for label, doc in FILES.items():
        for name, svc in doc["services"].items():
            if not is_lifeline(svc):
                continue
            argv, where = command(svc), f"{label}: services.{name}"
            targets = {t: s for s, t in mounts(svc)}
            for opt in ("--rules", "--registry", "--districts", "--routes"):
                value = flag(argv, opt)
                if value and value not in targets and not any(value.startswith(p.rstrip("/")) for p in image_paths):
                    problems.append(f"{where}: {opt} {value}: neither copied into the image nor mounted")
            var = flag(argv, "--influxdb-token-env")
            if var and var not in (svc.get("environment") or {}):
                problems.append(f"{where}: --influxdb-token-env {var}, but {var} is not in its environment")
            for opt in ("--kafka", "--broker", "--influxdb"):
                value = flag(argv, opt)
                host = value.split("://")[-1].split(":")[0] if value else None
                if host is not None and host not in doc["services"]:
                    problems.append(f"{where}: {opt} {value}: {host!r} is not a service")
            routes = flag(argv, "--routes")
            if routes in targets and is_bind(targets[routes]):
                load_routing(DEPLOY / targets[routes], env={})  # raises ConfigError with file:line:col
    _fail_on(problems, "lifeline services")


# ---- Kafka -----------------------------------------------------------------------------------------------
def _listeners(value: str) -> dict[str, tuple[str, int]]:
    out = {}
    for item in value.split(","):
        name, _, rest = item.partition("://")
        host, _, port = rest.rpartition(":")
        out[name] = (host, int(port))
    return out


def test_compose_kafka_is_a_coherent_kraft_node() -> None:
    """One KRaft node: controller among its roles, the quorum voter is itself on its controller listener,
    clients reach an advertised listener by service name, replication factors fit one node; topics are made."""
    doc = FILES[COMPOSE.name]
    name, kafka = _service(doc, "apache/kafka")
    env = {k: str(v) for k, v in kafka["environment"].items()}
    problems = []
    roles = env["KAFKA_PROCESS_ROLES"].split(",")
    if not {"broker", "controller"} <= set(roles):
        problems.append(f"KAFKA_PROCESS_ROLES: expected broker,controller (got {roles})")
    listeners, advertised = _listeners(env["KAFKA_LISTENERS"]), _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    m = re.fullmatch(r"(\d+)@([\w.-]+):(\d+)", voters[0])
    if len(voters) != 1 or m is None:
        problems.append(f"KAFKA_CONTROLLER_QUORUM_VOTERS: expected one id@host:port (got {voters})")
    elif (m[1], m[2], int(m[3])) != (env["KAFKA_NODE_ID"], name, listeners.get(controller, ("", 0))[1]):
        problems.append(f"KAFKA_CONTROLLER_QUORUM_VOTERS {voters[0]}: expected {env['KAFKA_NODE_ID']}@{name}:"
                        f"<the {controller} listener's port>")
    problems += [f"listener {n}: not in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP" for n in listeners if n not in protocols]
    if controller in advertised:
        problems.append(f"KAFKA_ADVERTISED_LISTENERS: the controller listener {controller} must not be advertised")
    problems += [f"advertised listener {n}: not among KAFKA_LISTENERS" for n in advertised if n not in listeners]
    inter = env.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT")
    if advertised.get(inter, ("",))[0] != name:
        problems.append(f"KAFKA_ADVERTISED_LISTENERS: the inter-broker listener {inter} must use the service name "
                        f"{name!r} (got {advertised.get(inter)})")
    problems += [f"{k}={v}: a single node needs 1" for k, v in env.items()
                 if k.endswith(("REPLICATION_FACTOR", "MIN_ISR", "MIN_INSYNC_REPLICAS")) and v != "1"]
    for key in ("KAFKA_NUM_PARTITIONS", "KAFKA_LOG_RETENTION_HOURS"):
        if not env.get(key, "").isdigit():
            problems.append(f"{key}: expected a number (got {env.get(key)!r})")
    cluster_id = re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", env["CLUSTER_ID"])
    if len(base64.urlsafe_b64decode(cluster_id + "==")) != 16:
        problems.append(f"CLUSTER_ID {cluster_id!r}: expected a base64 UUID (kafka-storage.sh random-uuid)")
    reachable = {f"{h}:{p}" for h, p in advertised.values()}
    for svc_name, svc in doc["services"].items():
        line = " ".join(command(svc))
        for addr in sorted(set(re.findall(r"(?:--kafka|--bootstrap-server)[ =]+([\w.-]+:\d+)", line))):
            if addr not in reachable:
                problems.append(f"services.{svc_name}: Kafka at {addr}, which is not an advertised listener")
    topics = _topics(doc)
    problems += [f"kafka-init: topic {t!r}: replication factor {spec.replication} on one node"
                 for t, spec in topics.items() if spec.replication != 1]
    problems += [f"kafka-init: topic {t!r}: {spec.partitions} partitions" for t, spec in topics.items()
                 if spec.partitions < 1]
    readings = topics.get("readings")
    workers = [n for n, s in doc["services"].items() if command(s)[:1] == ["worker"] and "profiles" not in s]
    if readings and len(workers) > readings.partitions:
        problems.append(f"{len(workers)} workers for {readings.partitions} partitions of readings: some would stay "
                        "idle")
    _fail_on(problems, f"Kafka (services.{name})")


def _topics(doc: dict[str, Any]) -> dict[str, Topic]:
    init = [s for s in doc["services"].values() if "kafka-topics.sh" in " ".join(command(s))]
    assert len(init) == 1, "expected one service that creates the topics (kafka-init)"
    return created_topics("\n".join(command(init[0])))


def test_created_topics_reads_a_topic_init_script() -> None:
    """The kafka-init parser itself: continuation lines, several --config, comments, other commands left out."""
    script = ("t=/opt/kafka/bin/kafka-topics.sh  # --create --topic nope\n"
              "$$t --bootstrap-server k:9092 --create --if-not-exists --topic a \\\n"
              "  --partitions 6 --replication-factor 1 --config cleanup.policy=compact --config x=1=2\n"
              "$$t --bootstrap-server k:9092 --describe --topic a\n")
    assert created_topics(script) == {"a": Topic(6, 1, {"cleanup.policy": "compact", "x": "1=2"})}


def _need(topics: dict[str, Topic], problems: list[str], where: str, flag_name: str, topic: str) -> Topic | None:
    """The topic a flag names, as kafka-init creates it; a problem if it does not."""
    if topic not in topics:
        problems.append(f"{where}: {flag_name} {topic}: kafka-init does not create it (made: {sorted(topics)})")
    return topics.get(topic)


def test_compose_topics_are_made_for_what_the_commands_read_and_write() -> None:
    """kafka-init creates every topic the bridge, the workers and deliver name (their flags or their defaults);
    each worker's --partitions is the partition count of its readings topic, and the engine table's changelog
    `<app-id>-engine-changelog` (the workers declare no topic) has as many partitions and is compacted."""
    problems: list[str] = []
    for label, doc in FILES.items():
        topics = _topics(doc)
        for name, args in _running(doc, "bridge").items():
            _need(topics, problems, f"{label}: services.{name}", "--topic", args.topic)
            _need(topics, problems, f"{label}: services.{name}", "--deadletter-topic", args.deadletter_topic)
        for name, args in _running(doc, "deliver").items():
            _need(topics, problems, f"{label}: services.{name}", "--alerts-topic", args.alerts_topic)
        for name, args in _running(doc, "worker").items():
            where = f"{label}: services.{name}"
            readings = _need(topics, problems, where, "--topic", args.topic)
            _need(topics, problems, where, "--alerts-topic", args.alerts_topic)
            _need(topics, problems, where, "--deadletter-topic", args.deadletter_topic)
            changelog = _need(topics, problems, where, "the engine table's changelog",
                              f"{args.app_id}-engine-changelog")
            if readings and args.partitions != readings.partitions:
                problems.append(f"{where}: --partitions {args.partitions}, but {args.topic} has "
                                f"{readings.partitions}")
            if changelog and changelog.partitions != args.partitions:
                problems.append(f"{where}: {args.app_id}-engine-changelog has {changelog.partitions} partitions, "
                                f"--partitions is {args.partitions}")
            if changelog and changelog.config.get("cleanup.policy") != "compact":
                problems.append(f"{where}: {args.app_id}-engine-changelog: cleanup.policy "
                                f"{changelog.config.get('cleanup.policy')!r}, expected 'compact'")
    _fail_on(problems, "topics")


def _city(svc: dict[str, Any], args: argparse.Namespace) -> tuple[object, ...]:
    """Which rule packs, register and districts a lifeline service reads: where each path comes from (a mount's
    source or the image), None for a default."""
    return (None if args.rules is None else tuple(origin(svc, str(r)) for r in args.rules),
            None if args.registry is None else origin(svc, str(args.registry)),
            None if args.districts is None else origin(svc, str(args.districts)))


def test_compose_bridge_and_workers_read_the_same_city() -> None:
    """The bridge partitions by shard, computed from --rules/--registry/--districts: it is given the very files
    the workers judge with (same paths from the same mounts or the image), and deliver too (the console's
    rule details); no --no-shard."""
    problems = []
    for label, doc in FILES.items():
        cities = {name: _city(doc["services"][name], args)
                  for name, args in _running(doc, "bridge", "worker", "deliver").items()}
        bridges = _running(doc, "bridge")
        if not bridges or not _running(doc, "worker"):
            problems.append(f"{label}: expected a bridge and workers (got {sorted(cities)})")
            continue
        problems += [f"{label}: services.{n}: --no-shard (neighbourhood rules would see their groups split over "
                     "workers)" for n, a in bridges.items() if a.no_shard]
        first = next(iter(bridges))
        problems += [f"{label}: services.{n} reads {c}, services.{first} reads {cities[first]}"
                     for n, c in cities.items() if c != cities[first]]
        problems += [f"{label}: services.{n}: --rules/--registry/--districts left to their defaults"
                     for n, c in cities.items() if None in c]
    _fail_on(problems, "the city's files")


def test_origin_follows_the_deepest_mount() -> None:
    svc = {"volumes": ["./city:/etc/lifeline:ro", "/srv/rules:/etc/lifeline/rules:ro", "data:/data"]}
    assert [origin(svc, p) for p in ("/etc/lifeline/rules/a.yaml", "/etc/lifeline/sensors.csv", "/etc/lifelines",
                                     "/data")] == ["/srv/rules/a.yaml", "./city/sensors.csv", "image:/etc/lifelines",
                                                   "data"]


def test_readme_city_override_mounts_the_same_files_everywhere() -> None:
    """deploy/README.md's "Your city" override, merged over each compose configuration: every lifeline service
    reads the city's files from the same mounts, and the workers keep their own volumes."""
    text = (DEPLOY / "README.md").read_text()
    block = re.search(r"\*\*Your city\.\*\*.*?```yaml\n(.*?)```", text, re.S)
    assert block, "deploy/README.md: no yaml block under **Your city.**"
    override = yaml.safe_load(block[1])
    problems = []
    for label, doc in FILES.items():
        merged = merge(doc, override)
        cities = {n: _city(merged["services"][n], a) for n, a in _running(merged, "bridge", "worker", "deliver")
                  .items()}
        if set(override["services"]) != set(cities):
            problems.append(f"{label}: the override names {sorted(override['services'])}, the lifeline services "
                            f"are {sorted(cities)}")
        problems += [f"{label}: services.{n}: reads {c} from the image" for n, c in cities.items()
                     if "image:" in repr(c)]
        problems += [f"{label}: services.{n} reads {c}, unlike the others" for n, c in cities.items()
                     if c != next(iter(cities.values()))]
        for n in _running(merged, "worker"):
            lost = set(mounts(doc["services"][n])) - set(mounts(merged["services"][n]))
            problems += [f"{label}: services.{n}: the override drops its mount {m}" for m in sorted(lost)]
    _fail_on(problems, "README city override")


def test_compose_worker_table_files_are_on_its_volume() -> None:
    """Every worker with a RocksDB store: the files Faust opens for each partition of the engine table are on a
    named volume of that worker's own (not beside it: rocksdb:///data/worker would write /data/worker-<n>.db)."""
    problems = []
    for label, doc in FILES.items():
        for name, args in _running(doc, "worker").items():
            if not args.store.startswith("rocksdb://"):
                continue
            svc = doc["services"][name]
            named = [t.rstrip("/") + "/" for s, t in mounts(svc) if s and not is_bind(s)]
            for p in range(args.partitions):
                f = str(rocksdb_table_file(args.store, args.data_dir, args.app_id, "engine", p))
                if not any(f.startswith(t) for t in named):
                    problems.append(f"{label}: services.{name}: --store {args.store} --data-dir {args.data_dir}: "
                                    f"Faust writes partition {p} to {f}, on none of its named volumes {named}")
                    break
    _fail_on(problems, "worker tables")


def test_rocksdb_table_file_is_where_faust_puts_it() -> None:
    """The helper against Faust's own RocksDB store (where rocksdict is installed, as in the image)."""
    pytest.importorskip("rocksdict")
    import faust

    for store in ("rocksdb:///data/worker", "rocksdb:///data/worker/engine", "rocksdb://"):
        app = faust.App("lifeline", store=store, datadir="/data/worker")
        table = app.Table("engine", partitions=12)
        assert Path(table._new_store().partition_path(5)) == rocksdb_table_file(store, "/data/worker", "lifeline",
                                                                                 "engine", 5)
    assert rocksdb_table_file("rocksdb:///data/worker", "/x", "lifeline", "engine", 5) == Path("/data/worker-5.db")


def test_compose_lifeline_healthchecks_ask_the_port_the_command_opens() -> None:
    """A worker's healthcheck connects to its --web-port on 127.0.0.1 (Faust binds nowhere else); deliver's asks
    the console's port; the bridge's looks for its connections to the --broker and --kafka ports."""
    problems = []
    for label, doc in FILES.items():
        for name, svc in doc["services"].items():
            if not is_lifeline(svc):
                continue
            args, test = _args(svc), [str(t) for t in svc.get("healthcheck", {}).get("test", [])]
            script = next((i for i, t in enumerate(test) if t.endswith("healthcheck.py")), None)
            check = test[script + 1:] if script is not None else []
            where = f"{label}: services.{name}: healthcheck {check}"
            if args.command == "worker":
                if args.web_port is None or check != ["listening", f"127.0.0.1:{args.web_port}"]:
                    problems.append(f"{where}: expected listening 127.0.0.1:<--web-port {args.web_port}>")
            elif args.command == "deliver":
                port = (args.console or "").rpartition(":")[2]
                if not port or check != ["http", f"http://127.0.0.1:{port}/api/health"]:
                    problems.append(f"{where}: expected http http://127.0.0.1:<--console port>/api/health")
            elif args.command == "bridge":
                want = [args.broker.rpartition(":")[2], *(a.rpartition(":")[2] for a in args.kafka.split(","))]
                if check[:1] != ["connected"] or sorted(set(check[1:])) != sorted(set(want)):
                    problems.append(f"{where}: expected connected {' '.join(want)}")
    _fail_on(problems, "lifeline healthchecks")


# ---- Mosquitto -------------------------------------------------------------------------------------------
def test_mosquitto_configs_keep_the_shipped_settings_and_lock_the_tls_listener() -> None:
    """The compose and production configs keep the shipped queue, in-flight and persistence settings (DESIGN §5);
    the production TLS listener wants a client certificate, no anonymous client, and an ACL file; every file
    the configs name is mounted into the broker's container."""
    shipped = dict(conf_lines(MOSQUITTO_SHIPPED))
    kept = {k: v for k, v in shipped.items() if k not in ("listener", "allow_anonymous", "persistence_location")}
    problems = []
    for path in (MOSQUITTO_COMPOSE, MOSQUITTO_PROD):
        have = dict(conf_lines(path))
        problems += [f"{path.name}: {k} {have.get(k)!r}, the shipped {MOSQUITTO_SHIPPED.name} has {v!r}"
                     for k, v in kept.items() if have.get(k) != v]
    sections: list[dict[str, str]] = []
    for key, value in conf_lines(MOSQUITTO_PROD):
        if key == "listener":
            sections.append({})
        if sections:
            sections[-1][key] = value
    tls = next((s for s in sections if "certfile" in s), {})
    for key, want in (("listener", "8883"), ("require_certificate", "true"), ("use_identity_as_username", "true"),
                      ("allow_anonymous", "false")):
        if tls.get(key) != want:
            problems.append(f"{MOSQUITTO_PROD.name}: TLS listener: {key} {tls.get(key)!r}, expected {want!r}")
    if "acl_file" not in tls:
        problems.append(f"{MOSQUITTO_PROD.name}: TLS listener: no acl_file")
    for label, doc in FILES.items():
        name, svc = _service(doc, "eclipse-mosquitto")
        targets = {t: s for s, t in mounts(svc)}
        conf = DEPLOY / targets["/mosquitto/config/mosquitto.conf"]
        for key, value in conf_lines(conf):
            if key in ("cafile", "certfile", "keyfile", "acl_file", "password_file") and value not in targets:
                problems.append(f"{label}: {conf.name}: {key} {value} is not mounted into services.{name}")
            if key == "persistence_location" and value.rstrip("/") not in targets:
                problems.append(f"{label}: {conf.name}: persistence_location {value} is not a volume")
    _fail_on(problems, "Mosquitto configs")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dev_certs(tmp_path_factory.mktemp("certs") / "dev")


def test_make_dev_certs_makes_what_the_production_broker_needs(certs: Path) -> None:
    """make-dev-certs.sh makes a CA and certificates that `openssl verify` accepts, every file the production
    compose mounts from certs/dev/, a client certificate for every ACL user; it never overwrites a CA."""
    crts = sorted(certs.glob("*.crt"))
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(certs / "ca.crt"), *map(str, crts)],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, f"openssl verify: {verify.stdout}{verify.stderr}"
    problems = []
    prod = FILES[f"{COMPOSE.name} + {COMPOSE_PROD.name}"]
    for name, svc in prod["services"].items():
        for src, _ in mounts(svc):
            rel = src.removeprefix("./")
            if rel.startswith(GENERATED_CERTS) and not (certs / rel.removeprefix(GENERATED_CERTS)).is_file():
                problems.append(f"services.{name} mounts {src}, which make-dev-certs.sh does not make")
    users = [v for k, v in conf_lines(DEPLOY / "mosquitto" / "acl") if k == "user"]
    problems += [f"acl: user {u}: no client certificate {u}.crt" for u in users
                 if not (certs / f"{u}.crt").is_file()]
    san = subprocess.run(["openssl", "x509", "-in", str(certs / "server.crt"), "-noout", "-ext", "subjectAltName"],
                         capture_output=True, text=True, check=True).stdout
    problems += [f"server.crt: {n} not among its names ({san.strip()})" for n in ("DNS:mosquitto", "DNS:localhost")
                 if n not in san]
    again = make_dev_certs(certs)
    if again.returncode == 0:
        problems.append("make-dev-certs.sh overwrote an existing CA")
    _fail_on(problems, "dev certificates")


# ---- Grafana ---------------------------------------------------------------------------------------------
def _influx_env(doc: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in _service(doc, "influxdb")[1]["environment"].items()}


def test_grafana_provisioning_points_at_the_compose_influxdb_and_dashboards() -> None:
    """The data source is InfluxDB/Flux with the organisation and bucket InfluxDB is set up with and deliver
    writes to, its token from the environment; the dashboard provider reads the mounted dashboards directory."""
    doc = FILES[COMPOSE.name]
    influx, (gname, grafana) = _influx_env(doc), _service(doc, "grafana/grafana")
    deliver = command(doc["services"]["deliver"])
    problems = []
    ds_doc = yaml.safe_load(DATASOURCES.read_text())
    (ds,) = ds_doc["datasources"]
    want = {"apiVersion": (ds_doc.get("apiVersion"), 1), "type": (ds.get("type"), "influxdb"),
            "jsonData.version": (ds["jsonData"].get("version"), "Flux"),
            "jsonData.organization": (ds["jsonData"].get("organization"), influx["DOCKER_INFLUXDB_INIT_ORG"]),
            "jsonData.defaultBucket": (ds["jsonData"].get("defaultBucket"), influx["DOCKER_INFLUXDB_INIT_BUCKET"]),
            "deliver --influxdb-org": (flag(deliver, "--influxdb-org"), influx["DOCKER_INFLUXDB_INIT_ORG"]),
            "deliver --influxdb-bucket": (flag(deliver, "--influxdb-bucket"), influx["DOCKER_INFLUXDB_INIT_BUCKET"]),
            "url": (ds.get("url"), flag(deliver, "--influxdb"))}
    problems += [f"{k}: {got!r}, expected {exp!r}" for k, (got, exp) in want.items() if got != exp]
    token = re.fullmatch(r"\$\{?(\w+)\}?", str(ds.get("secureJsonData", {}).get("token", "")))
    if token is None or token[1] not in grafana.get("environment", {}):
        problems.append(f"secureJsonData.token: expected $VAR with VAR in services.{gname}.environment")
    if not ds.get("uid"):
        problems.append(f"{DATASOURCES.name}: no uid (the dashboards refer to it)")
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())
    (prov,) = providers["providers"]
    targets = {t: s for s, t in mounts(grafana)}
    if providers.get("apiVersion") != 1 or prov.get("type") != "file":
        problems.append(f"{DASHBOARD_PROVIDERS.name}: expected apiVersion 1 and a provider of type file")
    path = prov.get("options", {}).get("path")
    if not path or (DEPLOY / targets.get(path, "-")).resolve() != DASHBOARDS.resolve():
        problems.append(f"{DASHBOARD_PROVIDERS.name}: options.path {path!r} is not where deploy/grafana/dashboards "
                        f"is mounted ({targets})")
    if (DEPLOY / targets.get("/etc/grafana/provisioning", "-")).resolve() != DATASOURCES.parent.parent.resolve():
        problems.append("deploy/grafana/provisioning is not mounted at /etc/grafana/provisioning")
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
    if path and not (DASHBOARDS / home.removeprefix(path).lstrip("/")).is_file():
        problems.append(f"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH {home}: no such dashboard")
    _fail_on(problems, "Grafana provisioning")


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(where, the datasource it names, the Flux) of every panel target, query variable and annotation."""
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dashboard["panels"]):
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            yield f"panel {p.get('title')!r}", p.get("datasource") or {}, ""
        for t in p.get("targets", []):
            yield f"panel {p.get('title')!r}", p.get("datasource") or {}, t.get("query", "")
            yield f"panel {p.get('title')!r} target {t.get('refId')}", t.get("datasource") or {}, "-"
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            yield f"variable {v['name']}", v.get("datasource") or {}, str(v.get("query", ""))
    for a in dashboard["annotations"]["list"]:
        yield f"annotation {a['name']!r}", a.get("datasource") or {}, a.get("target", {}).get("query", "")


def flux_problems(flux: str) -> list[str]:
    """What a Flux query names that lifeline does not write (measurement, field, tag), or its bucket not the
    dashboard's ${bucket} variable."""
    tags = {READING: set(READING_TAGS), ALERT: set(ALERT_TAGS)}
    out = []
    buckets = re.findall(r"bucket:\s*([^,)]+)", flux)
    if not buckets or any(b.strip() != '"${bucket}"' for b in buckets):
        out.append(f'bucket: expected "${{bucket}}" (got {buckets})')
    measurements = re.findall(r'r\._measurement\s*==\s*"([^"]*)"', flux)
    if not measurements:
        out.append("no r._measurement filter")
    out += [f"measurement {m!r}: lifeline writes {READING!r} and {ALERT!r}" for m in measurements if m not in tags]
    for f in re.findall(r'r\._field\s*==\s*"([^"]*)"', flux):
        if ALERT in measurements and READING not in measurements and f not in ALERT_FIELDS:
            out.append(f"field {f!r}: {ALERT} has {ALERT_FIELDS}")
        elif READING in measurements and not re.fullmatch(r"\$\{?\w+\}?", f):
            out.append(f"field {f!r}: {READING}'s fields are the sensors' metrics: use a dashboard variable")
    known = set().union(*(tags.get(m, set()) for m in measurements))
    used = re.findall(r"\br\.(\w+)\s*(?:==|!=|=~|!~)", flux) + re.findall(r'\btag:\s*"(\w+)"', flux)
    out += [f"tag {t!r}: {', '.join(measurements)} has tags {sorted(known)}" for t in used
            if not t.startswith("_") and t not in known]
    return out


def test_dashboards_query_only_what_lifeline_writes() -> None:
    """Every dashboard loads, has its own uid, uses the provisioned data source everywhere, and its Flux names
    only the bucket variable and the measurements, fields and tags of lifeline/sinks/influxdb.py."""
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    files = sorted(DASHBOARDS.glob("*.json"))
    assert len(files) >= 2, f"expected the city overview and sensor readings dashboards in {DASHBOARDS}"
    problems: list[str] = []
    uids: dict[str, str] = {}
    for path in files:
        d = json.loads(path.read_text())
        if d.get("uid") in uids:
            problems.append(f"{path.name}: uid {d.get('uid')!r} is also {uids[d['uid']]}'s")
        uids[d.get("uid")] = path.name
        if "bucket" not in {v["name"] for v in d["templating"]["list"]}:
            problems.append(f"{path.name}: no bucket variable")
        for where, ds, flux in _queries(d):
            if ds.get("uid") != uid:
                problems.append(f"{path.name}: {where}: data source uid {ds.get('uid')!r}, expected {uid!r}")
            if flux == "":
                problems.append(f"{path.name}: {where}: no Flux query")
            elif flux != "-":
                problems += [f"{path.name}: {where}: {p}" for p in flux_problems(flux)]
    titles = {json.loads(p.read_text())["title"] for p in files}
    problems += [f"no dashboard titled '... {t}'" for t in ("City overview", "Sensor readings")
                 if not any(x.endswith(t) for x in titles)]
    _fail_on(problems, "dashboards")


def test_flux_check_catches_names_lifeline_does_not_write() -> None:
    """The dashboard check itself: a wrong measurement, field, tag or bucket is reported."""
    flux = ('from(bucket: "lifeline") |> filter(fn: (r) => r._measurement == "lifeline_alerts" and '
            'r._measurement == "lifeline_alert" and r._field == "levelnum" and r.colour == "red")')
    assert flux_problems(flux) == [
        "bucket: expected \"${bucket}\" (got ['\"lifeline\"'])",
        f"measurement 'lifeline_alerts': lifeline writes {READING!r} and {ALERT!r}",
        f"field 'levelnum': {ALERT} has {ALERT_FIELDS}",
        f"tag 'colour': lifeline_alerts, lifeline_alert has tags {sorted(ALERT_TAGS)}",
    ]


# ---- Dockerfile ------------------------------------------------------------------------------------------
def _dockerfile_instructions() -> list[list[str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_pins_its_base_copies_what_exists_and_ends_unprivileged() -> None:
    """Base images pinned; every COPY source exists in the build context (the repository root, as the compose
    build says) and is not excluded by .dockerignore; the last USER is not root; the entrypoint is lifeline."""
    problems = []
    lines = _dockerfile_instructions()
    args = {ln[1].split("=")[0]: ln[1].split("=", 1)[1] for ln in lines if ln[0] == "ARG" and "=" in ln[1]}
    for ln in (x for x in lines if x[0] == "FROM"):
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), ln[1])
        if not _pinned(image):
            problems.append(f"FROM {ln[1]} ({image}): pin the base image")
    build = load_compose(COMPOSE)["services"]["bridge"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    if context != REPO.resolve() or (context / build["dockerfile"]).resolve() != DOCKERFILE.resolve():
        problems.append(f"compose build {build}: expected the repository root and deploy/Dockerfile")
    ignored = [p for p in (REPO / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    for ln in (x for x in lines if x[0] == "COPY" and not x[1].startswith("--from")):
        for src in (s for s in ln[1:-1] if not s.startswith("--")):
            if not (context / src).exists():
                problems.append(f"COPY {src}: not in the build context {context}")
            if any(Path(src).match(p) or src == p or src.startswith(p + "/") for p in ignored):
                problems.append(f"COPY {src}: excluded by .dockerignore")
    users = [ln[1].split(":")[0] for ln in lines if ln[0] == "USER"]
    if not users or users[-1] in ("root", "0"):
        problems.append(f"USER: the image must end as an unprivileged user (got {users})")
    entry = [ln for ln in lines if ln[0] == "ENTRYPOINT"]
    if not entry or " ".join(entry[-1][1:]) != '["lifeline"]':
        problems.append(f'ENTRYPOINT: expected ["lifeline"] (got {entry})')
    _fail_on(problems, DOCKERFILE.name)


def test_dockerfile_installs_what_the_compose_commands_need() -> None:
    """The image gets the kafka extra (bridge, worker, deliver), and Faust's RocksDB driver when a compose worker
    keeps its table in RocksDB (faust-streaming[rocksdict]; without it the worker fails at start)."""
    installs = " ".join(" ".join(ln) for ln in _dockerfile_instructions() if ln[0] == "RUN" and "install" in ln)
    problems = []
    if '".[kafka]"' not in installs and "'.[kafka]'" not in installs:
        problems.append("no pip install of the kafka extra (\".[kafka]\")")
    rocks = [f"{label}: services.{n}" for label, doc in FILES.items()
             for n, a in _running(doc, "worker").items() if a.store.startswith("rocksdb://")]
    if rocks and "faust-streaming[rocksdict]" not in installs:
        problems.append(f"{rocks[0]} keeps its table in RocksDB, but the image does not install "
                        "faust-streaming[rocksdict]")
    _fail_on(problems, DOCKERFILE.name)


# ---- the healthcheck script the lifeline services use -----------------------------------------------------
class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/api/health" else 503)
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _healthcheck(*argv: str) -> int:
    return subprocess.run([sys.executable, str(HEALTHCHECK), *argv], capture_output=True, timeout=30,
                          check=False).returncode


def test_healthcheck_script_answers_for_http_listening_and_connected() -> None:
    """healthcheck.py: 0 for a 2xx URL, a listening port and a held connection; 1 for a 503, a closed port and
    no connection."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    try:
        with socket.create_connection(("127.0.0.1", port)):
            got = (_healthcheck("http", f"http://127.0.0.1:{port}/api/health"),
                   _healthcheck("http", f"http://127.0.0.1:{port}/nope"),
                   _healthcheck("listening", f"127.0.0.1:{port}"),
                   _healthcheck("listening", f"127.0.0.1:{closed_port}"),
                   _healthcheck("connected", str(port)), _healthcheck("connected", str(port), str(closed_port)))
    finally:
        server.shutdown()
        server.server_close()
        closed.close()
    assert got == (0, 1, 0, 1, 0, 1)

