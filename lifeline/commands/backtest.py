"""``lifeline backtest``: run recorded input through the same engine, write AlertEvents as JSON lines.

The output is byte-identical to what the live runner writes for the same input (same writer, same
engine, batch-invariant processing), so ops engineers can tune rules on recorded data.

With ``--routes`` it also runs the routing tree and noise control (flapping, bounces, inhibition,
maintenance windows) over the alert events, as the live runner does, and reports per receiver how many
notifications would be sent and how many held, and why, beside the count without noise control; with
``--notifications FILE`` it writes each decision as a JSON line. Secrets named in the file are not needed.

example:
  lifeline backtest -i recorded.jsonl -o alerts.jsonl --routes deploy/routes.yaml
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

from lifeline import paths
from lifeline.codec import decode_line
from lifeline.engine import Engine
from lifeline.model import AlertEvent, Reading

BATCH = 2000


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backtest", help="replay recorded readings (JSON lines) through the rules",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rules", type=Path, nargs="+", default=None, help="rule pack files or directories "
                   "(default: ./rules or the shipped packs)")
    p.add_argument("--registry", type=Path, default=None, help="sensor register CSV/YAML (default: the demo city)")
    p.add_argument("--districts", type=Path, default=None, help="district polygons GeoJSON")
    p.add_argument("--input", "-i", type=Path, required=True, help="JSON lines in the replay format (.gz ok)")
    p.add_argument("--out", "-o", type=Path, default=None, help="alert events as JSON lines (default: stdout)")
    p.add_argument("--dead-letters", type=Path, default=None, help="write rejected lines here as JSON lines")
    p.add_argument("--routes", type=Path, default=None, help="routing file: report the notifications that noise "
                   "control would send and hold, per receiver")
    p.add_argument("--notifications", type=Path, default=None,
                   help="with --routes: write every notification decision here as JSON lines")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_backtest)


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _count_lines(path: Path) -> int | None:
    if path.suffix == ".gz":
        return None
    with path.open("rb") as f:
        return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))


def run_backtest(engine: Engine, lines: Iterator[bytes], *, where: str = "") -> tuple[list[AlertEvent], Counter[str]]:
    """Pure-ish core used by the CLI and tests: feed replay lines, return events and dead-letter counts."""
    events: list[AlertEvent] = []
    dead: Counter[str] = Counter()
    for _ in _feed(engine, lines, events, dead, None, where):
        pass
    return events, dead


def _feed(engine: Engine, lines: Iterator[bytes], events: list[AlertEvent], dead: Counter[str],
          dead_out: IO[bytes] | None, where: str) -> Iterator[int]:
    import orjson

    batch: list[Reading] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        decoded, tick = decode_line(line, registry=engine.registry, where=f"{where}:{lineno}: ")
        for d in decoded.dead:
            dead[d.reason] += 1
            if dead_out is not None:
                dead_out.write(orjson.dumps(d.to_dict()) + b"\n")
        if tick is not None:
            events.extend(engine.process(batch).events)
            batch = []
            events.extend(engine.tick(tick).events)
        else:
            batch.extend(decoded.readings)
        if len(batch) >= BATCH:  # only between lines: one payload's readings stay in one call
            out = engine.process(batch)
            events.extend(out.events)
            for d in out.dead:
                dead[d.reason] += 1
            batch = []
        yield lineno
    out = engine.process(batch)
    events.extend(out.events)
    for d in out.dead:
        dead[d.reason] += 1


def load_engine(rules: list[Path] | None, registry: Path | None, districts: Path | None) -> Engine:
    from lifeline.registry import load_registry
    from lifeline.rules.loader import load_rules

    ruleset = load_rules(rules or [paths.default_rules()])
    reg_path = registry or paths.default_registry()
    dist = districts or (paths.default_districts() if registry is None else None)
    return Engine(ruleset, load_registry(reg_path, dist))


def cmd_backtest(args: argparse.Namespace) -> int:
    from lifeline.progress import Progress
    from lifeline.sinks.jsonl import JsonlSink

    engine = load_engine(args.rules, args.registry, args.districts)
    total = None if args.quiet else _count_lines(args.input)
    progress = None if args.quiet else Progress("backtest lines", total)
    events: list[AlertEvent] = []
    dead: Counter[str] = Counter()
    dead_out = args.dead_letters.open("wb") if args.dead_letters else None
    try:
        with _open(args.input) as f:
            for _ in _feed(engine, iter(f), events, dead, dead_out, str(args.input)):
                if progress is not None:
                    progress.update(1)
    finally:
        if dead_out is not None:
            dead_out.close()
    if progress is not None:
        progress.close(f"{len(events)} alert events")
    if args.out is None:
        sink = JsonlSink(sys.stdout.buffer)
        sink.write(events)
        sink.flush()
    else:
        with args.out.open("wb") as f:
            sink = JsonlSink(f)
            sink.write(events)
            sink.flush()
    summary = ", ".join(f"{k}={v}" for k, v in sorted(dead.items())) or "none"
    print(f"backtest: {engine.counts['readings']:,} readings, {len(events)} alert events, "
          f"dead letters: {summary}", file=sys.stderr)
    if args.routes is not None:
        report_notifications(engine, events, args.routes, args.notifications)
    return 0


class _AnySecret(dict[str, str]):
    """Every environment variable is "set": a backtest sends nothing, so it needs no secrets."""

    def get(self, key: str, default: object = None) -> str:
        return "https://backtest.invalid/"  # satisfies URL checks; a backtest contacts nothing


def report_notifications(engine: Engine, events: list[AlertEvent], routes: Path, out: Path | None) -> None:
    """Noise control over the backtest's events, as the live runner applies it; a summary per receiver on
    stderr: sent, held by reason, and the count without noise control."""
    import orjson

    from lifeline.alerting.policy import Policy
    from lifeline.alerting.routing import labels_of, load_routing, positions_of

    routing = load_routing(routes, _AnySecret())
    labels = labels_of(engine.registry)
    policy = Policy(routing, labels=labels, position=positions_of(engine.registry))
    decided = policy.process(events, 0.0)
    if engine.watermark is not None:
        decided.notifications.extend(policy.advance(engine.watermark, 0.0).notifications)
    before = Counter(r for e in events for r in routing.receivers_for(e, labels(e.sensor)))
    by: dict[str, Counter[str]] = {}
    for n in decided.notifications:
        by.setdefault(n.receiver, Counter())[n.state] += 1
    for receiver in sorted(set(before) | set(by)):
        c = by.get(receiver, Counter())
        held = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k not in ("pending", "awaiting_approval"))
        print(f"notifications to {receiver}: {c['pending'] + c['awaiting_approval']} to send "
              f"({c['awaiting_approval']} awaiting approval); held: {held or 'none'}; the routing tree alone: "
              f"{before[receiver]}", file=sys.stderr)
    if out is not None:
        with out.open("wb") as f:
            for n in decided.notifications:
                f.write(orjson.dumps({"key": n.key, "receiver": n.receiver, "alert": n.alert, "seq": n.seq,
                                      "state": n.state, "note": n.note, "event": n.payload.get("event"),
                                      "ts": n.payload.get("ts")}) + b"\n")
