"""Engine-only throughput: readings/s through ``Engine.process`` with the default rule packs.

Input: the demo city (all six domains, 345 sensors) simulated by ``simulators`` with the ``demo``
scenario (incidents in every domain, so alerts fire, escalate and resolve during the run), decoded
up front: this measures the engine, not JSON. Reference measured in the same run: a bare Python
loop that does the least any engine must do per reading (one dict lookup and one comparison), so
the ratio survives a noisy, shared machine. One core: the engine is single-threaded.

    python -m benchmarks.engine_throughput [--duration 12h] [--runs 5]
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.common import best_of, decode_file, demo_registry, machine, simulated_input, spread, timed, write_result
from lifeline import paths
from lifeline.engine import Engine
from lifeline.model import Reading
from lifeline.rules.loader import load_rules
from lifeline.rules.model import RuleSet

BATCH = 2000


def bare_loop(readings: list[Reading]) -> float:
    seen: dict[str, float] = {}
    hits = 0
    for r in readings:
        last = seen.get(r.sensor)
        seen[r.sensor] = r.ts
        if last is not None and r.value > 1e9:
            hits += 1
    return float(hits)


def _same_payload(a: Reading, b: Reading) -> bool:
    return a.sensor == b.sensor and a.ts == b.ts


def batches(readings: list[Reading], size: int = BATCH) -> list[list[Reading]]:
    """Cut into batches of about ``size``, never inside one payload (same sensor and ts), as the runner does."""
    out: list[list[Reading]] = []
    start = 0
    for i in range(size, len(readings), size):
        j = i
        while j < len(readings) and _same_payload(readings[j - 1], readings[j]):
            j += 1
        if j > start:
            out.append(readings[start:j])
            start = j
    out.append(readings[start:])
    return out


def run_engine(engine: Engine, chunks: list[list[Reading]]) -> int:
    events = 0
    for chunk in chunks:
        events += len(engine.process(chunk).events)
    return events


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", default="12h", help="simulated time of the demo city (default 12h)")
    ap.add_argument("--runs", type=int, default=5, help="repetitions; the best is reported (default 5)")
    args = ap.parse_args(argv)

    registry = demo_registry()
    rules = load_rules([paths.REPO / "rules"])
    src = simulated_input("demo", args.duration)
    readings = decode_file(src, registry)
    n = len(readings)
    print(f"{n:,} readings from {len(registry)} sensors, {len(rules.rules)} rules", file=sys.stderr)

    chunks = batches(readings)
    plain = RuleSet(tuple(r for r in rules.rules if r.detector is None and r.neighbourhood is None))
    events = run_engine(Engine(rules, registry), chunks)  # warm-up, and the alert count
    ref, ref_times = best_of(args.runs, lambda: timed(lambda: bare_loop(readings)))
    eng, eng_times = best_of(args.runs, lambda: timed(lambda: run_engine(Engine(rules, registry), chunks)))
    thr, thr_times = best_of(args.runs, lambda: timed(lambda: run_engine(Engine(plain, registry), chunks)))
    rate, ref_rate, thr_rate = n / eng, n / ref, n / thr
    text = (
        "# Engine-only throughput\n\n"
        f"- machine: {machine()}\n"
        f"- input: demo city, scenario `demo`, {args.duration} simulated, {n:,} readings, {events} alert events\n"
        f"- rules: the {len(rules.rules)} default rules of `rules/`\n\n"
        "| what | readings/s | time |\n|---|---:|---|\n"
        f"| engine, full default packs ({len(rules.rules)} rules, detectors and neighbourhoods included) "
        f"| {rate:,.0f} | {spread(eng_times)} |\n"
        f"| engine, the skeleton's rule features only ({len(plain.rules)} threshold, condition and no-data rules; "
        f"no detector, no neighbourhood) "
        f"| {thr_rate:,.0f} | {spread(thr_times)} |\n"
        f"| reference: bare loop (dict lookup + compare) | {ref_rate:,.0f} | {spread(ref_times)} |\n\n"
        f"Full packs / thresholds only: **{rate / thr_rate:.2f}**; full packs / bare loop: {rate / ref_rate:.3f}. "
        f"Targets: ≥ 200,000 readings/s with the skeleton's rule features (issue 2: thresholds, conditions, no-data), "
        f"≥ 100,000 readings/s with the full packs "
        f"(issue 3), on one core.\n"
    )
    print(text)
    print(f"written to {write_result('engine_throughput', text)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
