"""``lifeline worker``: a faust-streaming worker running the engine on its partitions of the readings topic.

Every worker of one --app-id shares the partitions of "--topic" (a Kafka consumer group): each partition has
its own engine, fed in offset order, whose alert events go to "--alerts-topic" (key: the alert id) and dead
letters to "--deadletter-topic". Each partition's engine state is checkpointed every --checkpoint-every into
the Faust table "engine" (its changelog topic is "<app-id>-engine-changelog", with as many partitions as the
readings topic), and the records are acknowledged only then; a worker that takes a partition over (the
other one died or left) restores the engine from there and processes the records after it again: no alert is
lost, and a re-sent alert event has the same id and seq (lifeline deliver stores it once).

Rules and register must be the same files on every worker. To roll out a rule change, restart the workers one
by one with the new files: each restores its partitions' state (a removed rule's state is dropped, a new rule
starts empty). The readings must be partitioned by shard (lifeline bridge does it), so that every sensor of
a neighbourhood group is judged by one engine: the alerts are then exactly those of lifeline backtest on the
same input. docs/kafka.md has the topic layout and the sizing rule.

example:
  lifeline worker --kafka kafka:9092 --rules /etc/lifeline/rules --registry /etc/lifeline/sensors.csv \\
                  --districts /etc/lifeline/districts.geojson --partitions 12 \\
                  --store rocksdb:///data/worker/engine --data-dir /data/worker
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lifeline.commands.bridge import _seconds
from lifeline.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run the engine on Kafka partitions (a faust-streaming worker)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kafka", default="127.0.0.1:9092", metavar="HOST:PORT[,...]",
                   help="Kafka bootstrap servers (default: %(default)s)")
    p.add_argument("--rules", type=Path, nargs="+", default=None,
                   help="rule pack files or directories (default: ./rules or the shipped packs)")
    p.add_argument("--registry", type=Path, default=None, help="sensor register CSV/YAML (default: the demo city)")
    p.add_argument("--districts", type=Path, default=None, help="district polygons GeoJSON")
    p.add_argument("--app-id", default="lifeline", help="Faust app id = consumer group (default: %(default)s)")
    p.add_argument("--partitions", type=int, default=12,
                   help="partitions of the readings topic (and of the engine table's changelog; default: "
                        "%(default)s)")
    p.add_argument("--topic", default="readings", help="readings topic (default: %(default)s)")
    p.add_argument("--alerts-topic", default="alerts", help="alert events out (default: %(default)s)")
    p.add_argument("--deadletter-topic", default="deadletter", help="dead letters out (default: %(default)s)")
    p.add_argument("--prefix", default="lifeline/readings", help="MQTT topic prefix in the records' mqtt_topic "
                   "header (default: %(default)s)")
    p.add_argument("--store", default="memory://",
                   help="table store: memory:// (tests) or rocksdb://PATH (production; default: %(default)s)")
    p.add_argument("--data-dir", default="var/worker", help="Faust's data directory (default: %(default)s)")
    p.add_argument("--checkpoint-every", default="2s", metavar="DURATION",
                   help="engine checkpoint interval; records are acknowledged at checkpoints (default: %(default)s)")
    p.add_argument("--web-port", type=int, default=None,
                   help="Faust's web server on 127.0.0.1:PORT (health; default: off)")
    p.add_argument("--session-timeout", default="60s", metavar="DURATION",
                   help="a worker silent this long is dead to the group (default: %(default)s)")
    p.add_argument("--rebalance-timeout", default="60s", metavar="DURATION",
                   help="how long a rebalance may take (default: %(default)s)")
    p.add_argument("--status-every", default="10s", metavar="DURATION", help="status line (default: %(default)s)")
    p.add_argument("--stop-timeout", default="30s", metavar="DURATION",
                   help="after SIGTERM, how long a clean stop may take before the worker exits anyway (code 1; "
                        "nothing is lost: records are acknowledged at checkpoints; default: %(default)s)")
    p.add_argument("--sync-grace", default="0s", metavar="DURATION",
                   help="the group leader waits this long before sending the assignment: only for librdkafka's "
                        "mock cluster, which refuses a member's late SyncGroup (default: %(default)s)")
    p.add_argument("--loglevel", default="warn", choices=("crit", "error", "warn", "info", "debug"),
                   help="Faust's log level (default: %(default)s)")
    p.set_defaults(func=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    from lifeline import paths
    from lifeline.kafka.checkpoint import rules_fingerprint
    from lifeline.kafka.worker import Worker, WorkerSettings
    from lifeline.registry import load_registry
    from lifeline.rules.loader import load_rules, rule_files

    rules_paths = args.rules or [paths.default_rules()]
    ruleset = load_rules(rules_paths)
    registry = load_registry(args.registry or paths.default_registry(),
                             args.districts or (paths.default_districts() if args.registry is None else None))
    files, _ = rule_files(rules_paths)
    fingerprint = rules_fingerprint({f: Path(f).read_bytes() for f in files})
    settings = WorkerSettings(
        bootstrap=args.kafka, partitions=args.partitions, app_id=args.app_id, readings_topic=args.topic,
        alerts_topic=args.alerts_topic, deadletter_topic=args.deadletter_topic, prefix=args.prefix,
        store=args.store, datadir=args.data_dir,
        checkpoint_every_s=_seconds("--checkpoint-every", args.checkpoint_every),
        web_port=args.web_port, session_timeout_s=_seconds("--session-timeout", args.session_timeout),
        heartbeat_s=max(0.5, _seconds("--session-timeout", args.session_timeout) / 10),
        rebalance_timeout_s=_seconds("--rebalance-timeout", args.rebalance_timeout),
        status_every_s=_seconds("--status-every", args.status_every),
        sync_grace_s=_seconds("--sync-grace", args.sync_grace),
        stop_timeout_s=_seconds("--stop-timeout", args.stop_timeout))
    problems = settings.problems()
    if problems:
        raise ConfigError("; ".join(problems))
    logging.getLogger("lifeline").setLevel(logging.INFO)
    print(f"lifeline worker: {len(ruleset.rules)} rules ({fingerprint}), {len(registry.sensors)} sensors, "
          f"app {settings.app_id!r} on {settings.bootstrap}, topic {settings.readings_topic!r} "
          f"({settings.partitions} partitions)", file=sys.stderr, flush=True)
    return Worker(settings, ruleset, registry, fingerprint).run(loglevel=args.loglevel)
