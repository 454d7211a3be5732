"""NAB (Numenta Anomaly Benchmark) scoring, reimplemented from the published protocol and checked against it."""

from benchmarks.nab.evaluate import ProfileResult, evaluate, score_detector

__all__ = ["ProfileResult", "evaluate", "score_detector"]
