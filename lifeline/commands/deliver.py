"""``lifeline deliver``: alert events from the Kafka workers into the alert store, the time-series store and
the notification outbox, and the operator console: the half of ``lifeline run`` after its engine.

Consumes "--alerts-topic" (consumer group "--group", offsets committed only after the store committed): a
transition the store already holds (id, seq) is dropped, so an alert event a worker re-sent after taking a
partition over is stored and notified once. Every alert is stored before it is notified (the outbox). The
console (--console) reads the same store; its readings charts need the readings, which only lifeline run
keeps: here they are empty (the time-series store has them).

example:
  lifeline deliver --kafka kafka:9092 --db /data/lifeline.db --routes /etc/lifeline/routes.yaml \\
                   --console 0.0.0.0:8080 --influxdb http://influxdb:8086
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lifeline.commands.bridge import parse_kafka_config
from lifeline.commands.run import _duration, _influxdb, _retry_max, add_influxdb_arguments, parse_address


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("deliver", help="store and notify the alert events of the Kafka workers, serve the console",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kafka", default="127.0.0.1:9092", metavar="HOST:PORT[,...]",
                   help="Kafka bootstrap servers (default: %(default)s)")
    p.add_argument("--alerts-topic", default="alerts", help="alert events in (default: %(default)s)")
    p.add_argument("--group", default="lifeline-deliver", help="Kafka consumer group (default: %(default)s)")
    p.add_argument("--db", default="var/lifeline.db", help="SQLite alert store (default: %(default)s)")
    p.add_argument("--rules", type=Path, nargs="+", default=None,
                   help="rule packs, for the console's rule details (default: ./rules or the shipped packs)")
    p.add_argument("--registry", type=Path, default=None, help="sensor register CSV/YAML (default: the demo city)")
    p.add_argument("--districts", type=Path, default=None, help="district polygons GeoJSON")
    p.add_argument("--routes", type=Path, default=None, metavar="FILE",
                   help="notification routing tree and receivers (YAML, docs/delivery.md); default: notify nobody")
    p.add_argument("--notify-retry-max", default="5m", metavar="DURATION",
                   help="longest wait between two attempts at an undelivered notification (default: %(default)s)")
    p.add_argument("--console", default=None, metavar="HOST:PORT", help="serve the operator console here")
    p.add_argument("--status-every", default="5s", metavar="DURATION",
                   help="progress line on stderr every ... (default: %(default)s)")
    p.add_argument("--kafka-config", action="append", default=[], metavar="KEY=VALUE",
                   help="any librdkafka consumer setting, e.g. security.protocol=SASL_SSL or session.timeout.ms=6000 "
                        "(repeat)")
    add_influxdb_arguments(p, readings=False)
    p.set_defaults(func=cmd_deliver)


def cmd_deliver(args: argparse.Namespace) -> int:
    from lifeline import paths
    from lifeline.alerting.routing import load_routing
    from lifeline.kafka.deliver import Deliverer, DeliverSettings
    from lifeline.registry import load_registry
    from lifeline.rules.loader import load_rules

    ruleset = load_rules(args.rules or [paths.default_rules()])
    registry = load_registry(args.registry or paths.default_registry(),
                             args.districts or (paths.default_districts() if args.registry is None else None))
    settings = DeliverSettings(
        bootstrap=args.kafka, db_path=args.db, group=args.group, alerts_topic=args.alerts_topic,
        status_interval_s=_duration("--status-every", args.status_every) or 5.0,
        notify_retry_max_s=_retry_max(args.notify_retry_max),
        console_addr=None if args.console is None else parse_address("--console", args.console),
        influxdb=_influxdb(args), kafka_config=parse_kafka_config(args.kafka_config))
    routing = None if args.routes is None else load_routing(args.routes)
    print(f"lifeline deliver: Kafka {args.kafka} topic {args.alerts_topic!r} (group {args.group!r}) -> store "
          f"{args.db}; routes {args.routes or 'none'}", file=sys.stderr, flush=True)
    return Deliverer(settings, ruleset, registry, routing).run()
