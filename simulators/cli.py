"""``python -m simulators``: run scenarios to JSON lines or MQTT, regenerate the demo city, list
scenarios. Progress goes to stderr; data to files or the broker."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

from lifeline.registry import RegistryError, load_registry
from lifeline.timefmt import TimeFormatError, parse_duration, parse_ts
from simulators import city
from simulators.runner import generate
from simulators.scenario import ScenarioError, builtin_names, load_scenario


def _say(message: str) -> None:
    print(f"simulators: {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="simulate a scenario to JSON lines (--out) or MQTT (--mqtt)")
    run.add_argument("--registry", default=str(city.DEMO_DIR / "sensors.csv"),
                     help="sensor register (.csv/.yaml); default: the demo city")
    run.add_argument("--districts", default=None, help="districts GeoJSON (default: next to the demo registry)")
    run.add_argument("--scenario", default="quiet", help="built-in name or path to a scenario YAML")
    run.add_argument("--duration", default=None, help="override the scenario duration ('1h', '20m', seconds)")
    run.add_argument("--seed", type=int, default=None, help="override the scenario seed")
    run.add_argument("--start", default=None, help="override the start (epoch seconds or RFC 3339)")
    run.add_argument("--out", default=None, help="write JSON lines here ('-' = stdout)")
    run.add_argument("--truth", default=None, help="write the ground truth JSON here")
    run.add_argument("--mqtt", default=None, metavar="HOST:PORT", help="publish to this MQTT broker")
    run.add_argument("--prefix", default="lifeline/readings", help="MQTT topic prefix")
    run.add_argument("--rate", type=float, default=0.0, help="MQTT: max readings per second (0 = unpaced)")
    run.add_argument("--realtime", action="store_true",
                     help="MQTT: start now and publish each reading at its event time (ts = wall clock)")
    c = sub.add_parser("city", help="regenerate the demo city (sensors.csv, districts.geojson)")
    c.add_argument("--out", default=str(city.DEMO_DIR), help="output directory")
    c.add_argument("--seed", type=int, default=2026)
    sub.add_parser("scenarios", help="list the built-in scenarios")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "city":
            csv_path, geo_path, n = city.write(Path(args.out), args.seed)
            _say(f"wrote {n} sensors to {csv_path} and districts to {geo_path}")
        elif args.command == "scenarios":
            for name in builtin_names():
                sc = load_scenario(name)
                print(f"{name:12s} {sc.duration / 60:6.0f} min  {len(sc.incidents):2d} incidents  "
                      f"{len(sc.faults):2d} faults  {sc.description}")
        else:
            return _run(args)
    except (RegistryError, ScenarioError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


def _run(args: argparse.Namespace) -> int:
    if not args.out and not args.mqtt:
        print("simulators run: give --out FILE (or '-') and/or --mqtt HOST:PORT", file=sys.stderr)
        return 2
    districts = args.districts
    if districts is None and Path(args.registry).resolve().parent == city.DEMO_DIR:
        districts = str(city.DEMO_DIR / "districts.geojson")
    registry = load_registry(args.registry, districts)
    scenario = load_scenario(args.scenario)
    try:
        duration = parse_duration(args.duration) if args.duration else None
        start = parse_ts(float(args.start) if _is_number(args.start) else args.start) if args.start else None
    except TimeFormatError as exc:
        print(f"simulators run: {exc}", file=sys.stderr)
        return 2
    if args.realtime:
        start = float(int(time.time()))
    run = generate(registry, scenario, seed=args.seed, duration=duration, start=start, progress=_say)
    _say(f"simulated {len(run.streams)} sensors, {len(run)} readings of scenario {scenario.name!r} "
         f"in {run.elapsed_s:.2f} s")
    if args.truth:
        Path(args.truth).write_bytes(orjson.dumps(run.truth(), option=orjson.OPT_INDENT_2) + b"\n")
        _say(f"wrote ground truth to {args.truth}")
    if args.out == "-":
        run.write_jsonl(sys.stdout.buffer)
    elif args.out:
        with open(args.out, "wb") as fh:
            n = run.write_jsonl(fh, progress=_say)
        _say(f"wrote {n} readings to {args.out}")
    if args.mqtt:
        from simulators.publish import publish

        host, _, port = args.mqtt.rpartition(":")
        sent = publish(run, host or "127.0.0.1", int(port or 1883), prefix=args.prefix, rate=args.rate,
                       realtime=args.realtime, progress=_say)
        _say(f"published {sent} readings to {args.mqtt}")
    return 0


def _is_number(text: str | None) -> bool:
    try:
        float(text or "")
    except ValueError:
        return False
    return True
