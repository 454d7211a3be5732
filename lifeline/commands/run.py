"""``lifeline run``: the live engine. MQTT readings in; alerts to the store, the journal and MQTT out.

Readings arrive on <prefix>/<domain>/<sensor_id> (QoS 1, persistent session "--client-id"). Each batch
is committed to the SQLite store (events + engine checkpoint in one transaction) before any alert is
published on lifeline/alerts/<domain>/<sensor_id>, and only then acknowledged to the broker: a crash
never loses a reading nor duplicates an alert. Rejected input goes to lifeline/deadletter with a reason.

example:
  lifeline run --broker 127.0.0.1:1883 --rules rules/ --registry sensors.csv --districts districts.geojson \\
               --db var/lifeline.db --journal var/journal.jsonl --alerts-out var/alerts.jsonl
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lifeline.codec import Limits
from lifeline.errors import ConfigError
from lifeline.timefmt import TimeFormatError, parse_duration

if TYPE_CHECKING:
    from lifeline.sinks.influxdb import InfluxDBSettings

RETRY_INITIAL_S = 2.0  # the outbox dispatcher's first wait after a failed attempt (Dispatcher.retry_initial_s)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the live engine against an MQTT broker", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT",
                   help="MQTT broker (default: %(default)s)")
    p.add_argument("--client-id", default="lifeline-engine",
                   help="MQTT client id; the broker keeps this session's queue while lifeline is down "
                        "(default: %(default)s)")
    p.add_argument("--prefix", default="lifeline/readings", help="readings topic prefix (default: %(default)s)")
    p.add_argument("--rules", type=Path, nargs="+", default=None,
                   help="rule pack files or directories (default: ./rules or the shipped packs)")
    p.add_argument("--registry", type=Path, default=None, help="sensor register CSV/YAML (default: the demo city)")
    p.add_argument("--districts", type=Path, default=None, help="district polygons GeoJSON")
    p.add_argument("--db", default="var/lifeline.db", help="SQLite alert store (default: %(default)s)")
    p.add_argument("--journal", default="var/journal.jsonl",
                   help="JSON-lines journal of every accepted input, replayable with 'lifeline backtest' "
                        "('' to disable; default: %(default)s)")
    p.add_argument("--alerts-out", default=None, metavar="PATH",
                   help="also write alert events as JSON lines (the same bytes as 'lifeline backtest --out')")
    p.add_argument("--batch-size", type=int, default=1000, help="messages per batch (default: %(default)s)")
    p.add_argument("--max-latency", default="0s", metavar="DURATION",
                   help="extra time a batch may wait to fill, e.g. '20ms' (default: %(default)s)")
    p.add_argument("--tick", default=None, metavar="DURATION",
                   help="when no reading arrives for this long, advance event time to the wall clock "
                        "(runs no-data checks; journaled). Default: only data moves time")
    p.add_argument("--status-every", default="5s", metavar="DURATION",
                   help="progress line on stderr every ... (default: %(default)s)")
    p.add_argument("--no-publish", action="store_true", help="do not publish alerts and dead letters over MQTT")
    p.add_argument("--routes", type=Path, default=None, metavar="FILE",
                   help="notification routing tree and receivers (YAML, docs/delivery.md); default: notify nobody")
    p.add_argument("--notify-retry-max", default="5m", metavar="DURATION",
                   help="longest wait between two attempts at an undelivered notification: retries start after "
                        f"{RETRY_INITIAL_S:g} s and double up to this (default: %(default)s)")
    p.add_argument("--console", default=None, metavar="HOST:PORT",
                   help="serve the operator console's API here (docs/console.md; accounts: lifeline console users)")
    p.add_argument("--metrics", default=None, metavar="HOST:PORT",
                   help="serve Prometheus /metrics here, e.g. 127.0.0.1:9464 (docs/metrics.md); default: off")
    add_influxdb_arguments(p, readings=True)
    p.add_argument("--max-bytes", type=int, default=Limits().max_bytes,
                   help="largest accepted payload in bytes (default: %(default)s)")
    p.set_defaults(func=cmd_run)


def add_influxdb_arguments(p: argparse.ArgumentParser, *, readings: bool) -> None:
    """The time-series store's options (``_influxdb`` reads them); ``readings``: also which readings to write."""
    ts = p.add_argument_group("time-series store (InfluxDB 2.x/3.x line protocol; docs/timeseries.md)")
    ts.add_argument("--influxdb", default=None, metavar="URL",
                    help=f"write {'readings and ' if readings else ''}alert events to this InfluxDB "
                         "(http://host:8086); default: off")
    ts.add_argument("--influxdb-org", default="lifeline", help="organisation (default: %(default)s)")
    ts.add_argument("--influxdb-bucket", default="lifeline", help="bucket (3.x: database) (default: %(default)s)")
    ts.add_argument("--influxdb-token-env", default="LIFELINE_INFLUXDB_TOKEN", metavar="VAR",
                    help="environment variable holding the API token, never the command line (default: %(default)s)")
    ts.add_argument("--influxdb-spool", default="var/influxdb-spool", metavar="DIR",
                    help="bounded on-disk buffer while the store is down (default: %(default)s)")
    if readings:
        ts.add_argument("--influxdb-alerts-only", action="store_true", help="write alert events only, not readings")
        ts.add_argument("--influxdb-downsample", action="append", default=[], metavar="KEY=INTERVAL",
                        help="write at most one reading per interval per sensor and metric: KEY is a domain, "
                             "domain.metric or * (crowd=1m, elevator.speed_ms=30s); repeat; default: every reading")


def _duration(flag: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except TimeFormatError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def _retry_max(text: str) -> float:
    value = _duration("--notify-retry-max", text)
    if value is None or value < RETRY_INITIAL_S:
        raise ConfigError(f"--notify-retry-max: must be at least the first retry's {RETRY_INITIAL_S:g} s "
                          f"(got {text!r})")
    return value


def parse_address(flag: str, text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{flag}: expected HOST:PORT with a port in 0..65535 (got {text!r})")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_broker(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 1883
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--broker: expected HOST:PORT with a port in 1..65535 (got {text!r})")
    return host.strip("[]") or "127.0.0.1", int(port)


def _influxdb(args: argparse.Namespace) -> InfluxDBSettings | None:
    from lifeline.sinks.influxdb import InfluxDBSettings

    if not args.influxdb:
        return None
    settings = InfluxDBSettings(url=args.influxdb, org=args.influxdb_org, bucket=args.influxdb_bucket,
                                token=os.environ.get(args.influxdb_token_env, ""), spool_dir=args.influxdb_spool)
    problems = settings.problems()
    if problems:
        raise ConfigError("--influxdb: " + "; ".join(problems))
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    from lifeline import paths
    from lifeline.alerting.routing import load_routing
    from lifeline.engine.runner import RunConfig, Runner
    from lifeline.registry import load_registry
    from lifeline.rules.loader import load_rules
    from lifeline.sinks.downsample import parse_downsample

    host, port = parse_broker(args.broker)
    retry_max_s = _retry_max(args.notify_retry_max)
    rules_paths = args.rules or [paths.default_rules()]
    reg_path = args.registry or paths.default_registry()
    districts = args.districts or (paths.default_districts() if args.registry is None else None)
    ruleset = load_rules(rules_paths)
    registry = load_registry(reg_path, districts)
    config = RunConfig(
        broker_host=host, broker_port=port, client_id=args.client_id, prefix=args.prefix,
        rules_paths=tuple(str(p) for p in rules_paths), registry_path=str(reg_path),
        districts_path=None if districts is None else str(districts), db_path=args.db,
        journal_path=args.journal or None, alerts_out=args.alerts_out, batch_size=max(1, args.batch_size),
        batch_linger_s=_duration("--max-latency", args.max_latency) or 0.0,
        tick_interval_s=_duration("--tick", args.tick), status_interval_s=_duration("--status-every",
                                                                                     args.status_every) or 5.0,
        publish=not args.no_publish, limits=Limits(max_bytes=args.max_bytes),
        influxdb=_influxdb(args), influxdb_readings=not args.influxdb_alerts_only,
        influxdb_downsample=parse_downsample(args.influxdb_downsample),
        metrics_addr=None if args.metrics is None else parse_address("--metrics", args.metrics),
        console_addr=None if args.console is None else parse_address("--console", args.console),
        routing=None if args.routes is None else load_routing(args.routes),
        notify_retry_max_s=retry_max_s,
    )
    print(f"lifeline run: {len(ruleset.rules)} rules, {len(registry)} sensors; broker {host}:{port} "
          f"(client id {args.client_id!r}), store {args.db}, journal {args.journal or 'off'}", file=sys.stderr)
    return Runner(config, ruleset, registry).run()
