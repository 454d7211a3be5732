"""Reading the deployment files in deploy/ for the tests: compose files (merged as ``docker compose -f a -f b``
does, for what these files use), Mosquitto configs, the dev certificates. Parsing only: no Docker here.
"""

from __future__ import annotations

import copy
import functools
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from lifeline.paths import REPO

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
COMPOSE_PROD = DEPLOY / "docker-compose.prod.yml"
MOSQUITTO_SHIPPED = DEPLOY / "mosquitto.conf"
MOSQUITTO_COMPOSE = DEPLOY / "mosquitto" / "mosquitto.conf"
MOSQUITTO_PROD = DEPLOY / "mosquitto" / "mosquitto.prod.conf"
MAKE_CERTS = DEPLOY / "certs" / "make-dev-certs.sh"
GENERATED_CERTS = "certs/dev/"  # bind-mount sources under deploy/ that make-dev-certs.sh makes


@dataclass(frozen=True)
class Override:
    """A value tagged ``!override`` or ``!reset`` (compose 2.24+): it replaces the base value, never merges."""

    value: Any


class _ComposeLoader(yaml.SafeLoader):
    pass


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    return Override(loader.construct_scalar(node))  # type: ignore[arg-type]


_ComposeLoader.add_constructor("!override", _override)
_ComposeLoader.add_constructor("!reset", _override)


def load_compose(path: Path) -> dict[str, Any]:
    with path.open() as f:
        doc = yaml.load(f, Loader=_ComposeLoader)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a mapping")
    return doc


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of a service's volumes, short or long syntax."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out.append((str(v.get("source", "")), str(v["target"])))
        else:
            src, _, rest = str(v).partition(":")
            out.append((src, rest.split(":")[0]) if rest else ("", src))
    return out


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base`` as compose merges them: mappings key by key, volumes by target, other lists
    appended, ``!override`` values replacing."""
    out = copy.deepcopy(base)
    for key in ("volumes", "networks"):
        if key in override:
            out.setdefault(key, {}).update(override[key] or {})
    for name, svc in override.get("services", {}).items():
        target = out.setdefault("services", {}).setdefault(name, {})
        for key, value in svc.items():
            old = target.get(key)
            if isinstance(value, Override):
                target[key] = value.value
            elif key == "volumes" and isinstance(old, list):
                new_targets = {t for _, t in mounts({"volumes": value})}
                kept = [v for v, (_, t) in zip(old, mounts({"volumes": old}), strict=True) if t not in new_targets]
                target[key] = kept + list(value)
            elif isinstance(value, dict) and isinstance(old, dict):
                target[key] = {**old, **value}
            elif isinstance(value, list) and isinstance(old, list):
                target[key] = old + value
            else:
                target[key] = value
    return out


def compose_files() -> dict[str, dict[str, Any]]:
    """The configurations to check: the base file alone, and the production override merged over it."""
    base = load_compose(COMPOSE)
    return {COMPOSE.name: base, f"{COMPOSE.name} + {COMPOSE_PROD.name}": merge(base, load_compose(COMPOSE_PROD))}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return [str(c) for c in cmd] if isinstance(cmd, list) else shlex.split(str(cmd))


def is_lifeline(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith("lifeline:")


def flag(argv: list[str], name: str) -> str | None:
    """The value after ``name`` in an argv, or None."""
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


def origin(service: dict[str, Any], path: str) -> str:
    """Where a path inside a service's container comes from: ``<mount source><rest>`` when it is at or under a
    mount's target (the deepest), else ``image:<path>``."""
    best = ("", "")
    for src, target in mounts(service):
        t = target.rstrip("/")
        if (path == t or path.startswith(t + "/")) and len(t) > len(best[1]):
            best = (src, t)
    return f"{best[0]}{path[len(best[1]):]}" if best[1] else f"image:{path}"


# ---- Kafka topics ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Topic:
    partitions: int
    replication: int
    config: dict[str, str]


def created_topics(script: str) -> dict[str, Topic]:
    """The topics a shell script creates with ``kafka-topics.sh ... --create`` (kafka-init's command): name ->
    partitions, replication factor, ``--config`` settings. Line continuations joined, comments left out."""
    out: dict[str, Topic] = {}
    for line in re.sub(r"\\\n", " ", script).splitlines():
        argv = shlex.split(line, comments=True)
        if "--create" not in argv:
            continue
        name = flag(argv, "--topic")
        if name is None:
            raise ValueError(f"kafka-topics --create without --topic: {line.strip()}")
        configs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
        out[name] = Topic(int(flag(argv, "--partitions") or 0), int(flag(argv, "--replication-factor") or 0),
                          dict(c.split("=", 1) for c in configs))
    return out


# ---- the workers' Faust table on disk --------------------------------------------------------------------
def rocksdb_table_file(store: str, datadir: str, app_id: str, table: str, partition: int) -> Path:
    """The RocksDB database Faust opens for one partition of a table, for ``lifeline worker --store rocksdb://...
    --data-dir ...``: faust.stores.rocksdb.Store.partition_path itself, run on what it reads (the app's tabledir,
    and the store URL's path, or the table's name when the URL has none, as Store.__init__ sets it).
    An absolute URL path wins over the tabledir, and the partition goes into its last part:
    rocksdb:///data/worker gives /data/worker-<partition>.db, beside /data/worker, not in it."""
    import faust
    from faust.stores.rocksdb import Store
    from yarl import URL

    url = URL(store)
    if not url.path:
        url /= table
    app = faust.App(app_id, store=store, datadir=datadir)
    stub: Any = SimpleNamespace(path=app.conf.tabledir, basename=Path(url.path))
    stub._path_with_suffix = functools.partial(Store._path_with_suffix, stub)
    return Path(Store.partition_path(stub, partition))


# ---- Mosquitto configs -----------------------------------------------------------------------------------
def conf_lines(path: Path) -> list[tuple[str, str]]:
    """(key, value) of each setting in file order; comments and blank lines left out."""
    out = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.append((key, value.strip()))
    return out


def rewrite_conf(path: Path, tmp: Path, ports: dict[str, int], files: dict[str, Path], user: str) -> str:
    """A Mosquitto config from ``path`` for a test: each ``listener PORT`` on 127.0.0.1 and the port given for
    it in ``ports`` (by the config's port, as a string), persistence under ``tmp``, every file setting
    (cafile, acl_file, ...) that names a container path found in ``files`` pointed at that local file."""
    out = []
    for key, value in conf_lines(path):
        if key == "listener":
            value = f"{ports[value.split()[0]]} 127.0.0.1"
        elif key == "persistence_location":
            value = f"{tmp}/"
        elif key in ("cafile", "certfile", "keyfile", "acl_file", "password_file"):
            value = str(files[value])
        elif key == "log_dest":
            value = f"file {tmp}/mosquitto.log"
        out.append(f"{key} {value}")
    out.append(f"user {user}")  # started as root, mosquitto would drop to "mosquitto", which cannot read tmp
    return "\n".join(out) + "\n"


# ---- certificates ----------------------------------------------------------------------------------------
def make_dev_certs(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(MAKE_CERTS), str(out)], capture_output=True, text=True, timeout=120,
                          check=False)


def dev_certs(out: Path) -> Path:
    """``out``, with the certificates make-dev-certs.sh made there (an AssertionError with its stderr if it failed)."""
    made = make_dev_certs(out)
    assert made.returncode == 0, f"make-dev-certs.sh failed ({made.returncode}): {made.stderr}"
    return out
