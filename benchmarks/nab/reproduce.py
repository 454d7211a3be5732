"""Prove the scorer faithful: score a detector's published NAB results and compare with NAB's own figures.

    python -m benchmarks.nab.reproduce [--root DATASET] [--detector-dir RESULTS/<detector>] [--tolerance 0.05]

Prints published-vs-ours per profile and, where NAB's per-file ``<detector>_<profile>_scores.csv`` are
present, how far our per-file scores and row counts are from them. Exits 1 if a normalised score is off
by more than the tolerance, 2 if the dataset is missing.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from benchmarks.nab.corpus import NabCorpus, NabDataMissingError, load_corpus, load_detector_scores, published_results
from benchmarks.nab.evaluate import ProfileResult, evaluate
from benchmarks.nab.scorer import score_file

DEFAULT_DETECTOR = "windowedGaussian"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nab.reproduce",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="NAB dataset root (default: ../shared/datasets/nab)")
    parser.add_argument("--detector-dir", type=Path, default=None,
                        help=f"results directory of one detector (default: <root>/results/{DEFAULT_DETECTOR})")
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        corpus = load_corpus(args.root)
        detector_dir = args.detector_dir or corpus.root / "results" / DEFAULT_DETECTOR
        scores = load_detector_scores(detector_dir)
        published = published_results(corpus.root, detector_dir.name)
    except NabDataMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    loaded = time.perf_counter()
    results = evaluate(scores, corpus)
    scored = time.perf_counter()
    worst = _print_table(detector_dir.name, published, results)
    for profile, result in results.items():
        _print_per_file_check(detector_dir, profile, result, corpus, scores)
    print(f"\nload {loaded - started:.2f} s, sweep + optimise 3 profiles {scored - loaded:.2f} s")
    if worst > args.tolerance:
        print(f"FAIL: off by {worst:.2g} > {args.tolerance}", file=sys.stderr)
        return 1
    print(f"OK: every profile within {args.tolerance} of the published score (worst {worst:.2g})")
    return 0


def _print_table(detector: str, published: dict[str, float], results: dict[str, ProfileResult]) -> float:
    print(f"NAB scores of {detector} (threshold optimised over the corpus, null = 0, perfect = 100)\n")
    print(f"{'profile':<20} {'published':>10} {'ours':>10} {'diff':>10} {'threshold':>10} {'raw':>12}")
    worst = 0.0
    for profile, result in results.items():
        diff = result.normalised - published[profile]
        worst = max(worst, abs(diff))
        print(f"{profile:<20} {published[profile]:>10.2f} {result.normalised:>10.2f} {diff:>+10.1e} "
              f"{result.threshold:>10.4g} {result.raw:>12.4f}")
    return worst


def _print_per_file_check(detector_dir: Path, profile: str, result: ProfileResult, corpus: NabCorpus,
                          scores: Mapping[str, NDArray[np.float64]]) -> None:
    path = detector_dir / f"{detector_dir.name}_{profile}_scores.csv"
    if not path.exists():
        return
    cost = corpus.profiles[profile]
    worst, mismatched = 0.0, []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            name = row["File"]
            if name not in corpus.layouts:
                continue  # the Totals row
            ours = score_file(corpus.layouts[name], scores[name], cost, result.threshold)
            worst = max(worst, abs(ours.raw - float(row["Score"])))
            if (ours.tp, ours.tn, ours.fp, ours.fn) != tuple(int(row[k]) for k in ("TP", "TN", "FP", "FN")):
                mismatched.append(name)
    print(f"  {profile}: per-file raw scores vs {path.name}: max |diff| {worst:.1e}; "
          f"TP/TN/FP/FN row counts differ in {len(mismatched)} files {mismatched[:3]}")


if __name__ == "__main__":
    sys.exit(main())
