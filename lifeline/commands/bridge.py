"""``lifeline bridge``: MQTT readings → a Kafka topic, keyed by sensor id, for the Faust workers.

Subscribes to <prefix>/# with QoS 1 and a persistent session (MQTT 5, clean start off, client id
"--client-id"), and produces every message's payload, unchanged, to the Kafka topic "--topic": key = the
sensor id (the topic's last level, so a sensor's readings stay in order on one partition), header
"mqtt_topic" = the MQTT topic. A message is acknowledged to the broker only after Kafka acknowledged the
write (acks=all, idempotent producer): a crash loses nothing, and may write a message twice.

At most --max-inflight messages are held between the two; when Kafka is slow or away the broker keeps
the rest (its queue must allow it: deploy/mosquitto.conf). A topic without a sensor id is written to
"--deadletter-topic" with the reason, and the bridge goes on. SIGTERM / Ctrl-C: stop reading, wait for
Kafka to confirm what is in flight, acknowledge it, disconnect.

Partitions: every sensor of a shard (the sensors that neighbourhood rules judge together, from --rules and
--registry: lifeline/engine/shards.py) goes to one partition, so each worker's engine sees whole groups in
arrival order and the workers give exactly the alerts of one engine (--no-shard: Kafka's hash of the key).
Ticks: a message on "lifeline/tick" ({"tick": <epoch s>}) is written to every partition; with --tick, so is a
wall-clock tick whenever no message came for that long (an idle partition's nodata checks go on).

example:
  lifeline bridge --broker 127.0.0.1:1883 --kafka kafka1:9092,kafka2:9092 --topic readings
  lifeline bridge --kafka 127.0.0.1:9092 --kafka-config security.protocol=SASL_SSL \\
                  --kafka-config sasl.mechanism=PLAIN --max-inflight 20000 --status-every 10s
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lifeline.commands.run import parse_broker
from lifeline.errors import ConfigError
from lifeline.timefmt import TimeFormatError, parse_duration


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bridge", help="forward MQTT readings to a Kafka topic (keyed by sensor id)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT", help="MQTT broker (default: %(default)s)")
    p.add_argument("--client-id", default="lifeline-bridge",
                   help="MQTT client id; the broker keeps this session's queue while the bridge is down "
                        "(default: %(default)s)")
    p.add_argument("--prefix", default="lifeline/readings", help="readings topic prefix (default: %(default)s)")
    p.add_argument("--kafka", default="127.0.0.1:9092", metavar="HOST:PORT[,...]",
                   help="Kafka bootstrap servers (default: %(default)s)")
    p.add_argument("--topic", default="readings", help="Kafka topic for the readings (default: %(default)s)")
    p.add_argument("--deadletter-topic", default="deadletter",
                   help="Kafka topic for messages that cannot be keyed (default: %(default)s)")
    p.add_argument("--max-inflight", type=int, default=10_000, metavar="N",
                   help="messages held between MQTT and Kafka at most, 1..65535 (default: %(default)s)")
    p.add_argument("--kafka-config", action="append", default=[], metavar="KEY=VALUE",
                   help="any librdkafka producer setting, e.g. security.protocol=SASL_SSL (repeat)")
    p.add_argument("--session-expiry", default="7d", metavar="DURATION",
                   help="how long the broker keeps the session and its queue while the bridge is away "
                        "(default: %(default)s)")
    p.add_argument("--connect-timeout", default="10s", metavar="DURATION",
                   help="at start, how long Kafka and the broker may take to answer (default: %(default)s)")
    p.add_argument("--drain-timeout", default="30s", metavar="DURATION",
                   help="at stop, how long to wait for Kafka to confirm what is in flight (default: %(default)s)")
    p.add_argument("--status-every", default="5s", metavar="DURATION",
                   help="progress line on stderr every ... (default: %(default)s)")
    p.add_argument("--rules", type=Path, nargs="+", default=None,
                   help="rule packs, for the shards (default: ./rules or the shipped packs; the workers' own)")
    p.add_argument("--registry", type=Path, default=None, help="sensor register, for the shards (default: the demo "
                   "city; the workers' own)")
    p.add_argument("--districts", type=Path, default=None, help="district polygons GeoJSON")
    p.add_argument("--no-shard", action="store_true",
                   help="partition by Kafka's hash of the sensor id instead of by shard (neighbourhood rules then "
                        "see their groups split over workers)")
    p.add_argument("--tick", default=None, metavar="DURATION",
                   help="when no message arrives for this long, a wall-clock tick to every partition "
                        "(default: never)")
    p.set_defaults(func=cmd_bridge)


def _seconds(flag: str, text: str) -> float:
    try:
        return parse_duration(text)
    except TimeFormatError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def parse_kafka_config(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--kafka-config: expected KEY=VALUE, e.g. security.protocol=SASL_SSL (got {item!r})")
        out[key.strip()] = value
    return out


def _shards(args: argparse.Namespace) -> dict[str, str] | None:
    if args.no_shard:
        return None
    from lifeline import paths
    from lifeline.engine.shards import shard_keys
    from lifeline.registry import load_registry
    from lifeline.rules.loader import load_rules

    rules = load_rules(args.rules or [paths.default_rules()])
    registry = load_registry(args.registry or paths.default_registry(),
                             args.districts or (paths.default_districts() if args.registry is None else None))
    return shard_keys(rules, registry)


def cmd_bridge(args: argparse.Namespace) -> int:
    from lifeline.kafka.bridge import Bridge, BridgeSettings

    host, port = parse_broker(args.broker)
    shards = _shards(args)
    settings = BridgeSettings(
        mqtt_host=host, mqtt_port=port, client_id=args.client_id, prefix=args.prefix, kafka=args.kafka,
        topic=args.topic, deadletter_topic=args.deadletter_topic, max_inflight=args.max_inflight,
        session_expiry_s=int(_seconds("--session-expiry", args.session_expiry)),
        connect_timeout_s=_seconds("--connect-timeout", args.connect_timeout),
        drain_timeout_s=_seconds("--drain-timeout", args.drain_timeout),
        status_interval_s=_seconds("--status-every", args.status_every),
        kafka_config=parse_kafka_config(args.kafka_config),
        shards=shards, tick_s=None if args.tick is None else _seconds("--tick", args.tick),
    )
    print(f"lifeline bridge: MQTT {host}:{port} {args.prefix}/# (client id {args.client_id!r}) -> Kafka "
          f"{args.kafka} topic {args.topic!r} (dead letters {args.deadletter_topic!r}), "
          f"at most {args.max_inflight:,} in flight, "
          f"{'by key hash' if shards is None else f'by shard ({len(set(shards.values()))} shards)'}",
          file=sys.stderr, flush=True)
    return Bridge(settings).run()
