"""The NAB scoring protocol (v1.1) as pure numpy functions: windows → row weights → threshold sweep → score.

What is implemented, following numenta/NAB ``nab/sweeper.py`` / ``optimizer.py`` / ``runner.normalize``
at commit ea702d75 (the commit the shared dataset comes from):

* the first ``min(floor(0.15 n), ceil(0.15 * 5000))`` rows of a file are probationary and never scored;
* a row inside a window of width ``w`` ending at row ``r`` weighs ``A_TP * σ(-(r - i + 1) / w) / σ(-1)``
  where ``σ(x) = 2 / (1 + e^{5x}) - 1`` (``-1`` for ``x > 3``): exactly ``A_TP`` at the window start;
* a row outside every window weighs ``A_FP * σ((i - r) / (w - 1))`` against the preceding window
  (``r``, ``w`` of the last window that ended before it, probationary or not), ``-A_FP`` if none;
* a row is a detection when its score is ``>=`` the threshold; each window contributes the weight of
  its first detection, or ``-A_FN`` if it has none; every detection outside the windows adds its weight;
* windows lying wholly in the probationary period do not count at all;
* the threshold is chosen over the whole corpus (the highest one among exact ties), and the raw score
  is normalised to ``100 * (raw - null) / (perfect - null)`` with ``null`` the never-firing detector and
  ``perfect = A_TP * number of windows``.

This module never reads files; ``corpus.py`` does. Thresholds are returned as plain floats; "never fire"
is ``math.inf`` (NAB writes 1.1 for the same thing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

PROBATION_FRACTION = 0.15
PROBATION_CAP_ROWS = 5000  # NAB caps the probationary period at fraction * 5000 rows (750)
NEVER_FIRE = math.inf


@dataclass(frozen=True)
class CostMatrix:
    """A NAB application profile: the weights A_TP, A_FP, A_FN."""

    tp: float
    fp: float
    fn: float


def scaled_sigmoid(x: FloatArray) -> FloatArray:
    """NAB's ``2 * sigmoid(-5x) - 1``, forced to -1 beyond x = 3 (an FP far after a window)."""
    # min(x, 3) only keeps exp() finite; those rows are overwritten with -1 anyway.
    value: FloatArray = 2.0 / (1.0 + np.exp(5.0 * np.minimum(x, 3.0))) - 1.0
    return np.where(x > 3.0, -1.0, value)


MAX_TP = float(scaled_sigmoid(np.array([-1.0]))[0])


def probationary_length(n_rows: int, fraction: float = PROBATION_FRACTION) -> int:
    """Rows [0, result) of a file of ``n_rows`` rows are not scored."""
    return min(math.floor(fraction * n_rows), math.ceil(fraction * PROBATION_CAP_ROWS))


@dataclass(frozen=True)
class FileLayout:
    """Everything about one file that depends neither on the detector nor on the profile.

    ``window_of_row`` is the window index of each row (-1 outside); ``tp_unit`` the weight of a
    detection inside a window for A_TP = 1; ``fp_unit`` the weight of one outside for A_FP = 1.
    """

    n_rows: int
    probation: int
    windows: IntArray
    window_of_row: IntArray
    tp_unit: FloatArray
    fp_unit: FloatArray

    @property
    def n_windows(self) -> int:
        return len(self.windows)

    @property
    def scorable_windows(self) -> int:
        """Windows with at least one row after the probationary period."""
        return int(np.count_nonzero(self.windows[:, 1] >= self.probation))


def file_layout(n_rows: int, windows: Sequence[tuple[int, int]] | IntArray,
                probation_fraction: float = PROBATION_FRACTION) -> FileLayout:
    """Row weights of a file with ``n_rows`` rows and inclusive window row bounds ``[(start, end), ...]``."""
    bounds = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
    _check_windows(n_rows, bounds)
    rows = np.arange(n_rows, dtype=np.float64)
    window_of_row = np.full(n_rows, -1, dtype=np.int64)
    tp_unit = np.zeros(n_rows)
    fp_unit = np.full(n_rows, -1.0)  # before any window: as far as can be
    for w, (start, end) in enumerate(bounds.tolist()):
        width = end - start + 1
        inside = slice(start, end + 1)
        window_of_row[inside] = w
        tp_unit[inside] = scaled_sigmoid(-(end - rows[inside] + 1.0) / width) / MAX_TP
        after = slice(end + 1, bounds[w + 1, 0] if w + 1 < len(bounds) else n_rows)
        # NAB divides by (width - 1) and so fails on one-row windows; we measure those in rows.
        fp_unit[after] = scaled_sigmoid((rows[after] - end) / max(width - 1, 1))
    return FileLayout(n_rows, probationary_length(n_rows, probation_fraction), bounds, window_of_row,
                      tp_unit, fp_unit)


def _check_windows(n_rows: int, bounds: IntArray) -> None:
    problems = [f"window {w} {start}..{end}" for w, (start, end) in enumerate(bounds.tolist())
                if not 0 <= start <= end < n_rows or (w > 0 and start <= bounds[w - 1, 1])]
    if problems:
        raise ValueError(f"windows must be ordered, disjoint row ranges inside 0..{n_rows - 1}: "
                         + ", ".join(problems))


def check_scores(name: str, layout: FileLayout, scores: FloatArray) -> None:
    """Raise ValueError naming the file if ``scores`` cannot be scored against ``layout``."""
    if scores.shape != (layout.n_rows,):
        raise ValueError(f"{name}: expected {layout.n_rows} anomaly scores, got shape {scores.shape}")
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        raise ValueError(f"{name}: anomaly scores must be finite; row {bad[0]} is {scores[bad[0]]}")


@dataclass(frozen=True)
class FileScore:
    """One file scored at one threshold; counts are rows, as in NAB's results files."""

    raw: float
    tp: int
    tn: int
    fp: int
    fn: int
    windows_detected: int


def score_file(layout: FileLayout, scores: FloatArray, cost: CostMatrix, threshold: float) -> FileScore:
    """Raw NAB score of one file when every scored row with ``score >= threshold`` is a detection."""
    scorable = np.arange(layout.n_rows) >= layout.probation
    inside = layout.window_of_row >= 0
    detected = scorable & (scores >= threshold)
    fp_rows = detected & ~inside
    tp_rows = detected & inside
    first_rows = np.unique(layout.window_of_row[tp_rows], return_index=True)[1]
    first_tp = np.flatnonzero(tp_rows)[first_rows]  # rows ascend, so unique's first index is the earliest
    raw = (cost.fp * float(layout.fp_unit[fp_rows].sum()) + cost.tp * float(layout.tp_unit[first_tp].sum())
           - cost.fn * (layout.scorable_windows - len(first_tp)))
    return FileScore(raw=raw, tp=int(tp_rows.sum()), tn=int((scorable & ~inside & ~detected).sum()),
                     fp=int(fp_rows.sum()), fn=int((scorable & inside & ~detected).sum()),
                     windows_detected=len(first_tp))


@dataclass(frozen=True)
class ThresholdCurve:
    """Raw corpus score for every distinct threshold, thresholds descending; the first is NEVER_FIRE."""

    thresholds: FloatArray
    raw: FloatArray

    def best(self) -> tuple[float, float]:
        """(threshold, raw score) of the maximum; among exact ties the highest threshold, as NAB's stable sort."""
        i = int(np.argmax(self.raw))
        return float(self.thresholds[i]), float(self.raw[i])


def sweep(files: Iterable[tuple[FileLayout, FloatArray]], cost: CostMatrix) -> ThresholdCurve:
    """Raw score of the whole corpus at every threshold, in one sort of all scored rows."""
    scores, window, weight, base = _scored_rows(files, cost)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_window = scores[order], window[order]
    delta = np.where(sorted_window < 0, weight[order], 0.0)
    inside = np.flatnonzero(sorted_window >= 0)
    delta[inside] = _first_detection_gain(sorted_window[inside], order[inside], weight, cost.fn)
    running = base + np.cumsum(delta)
    # A threshold activates every row with that score, so read the running total at the end of each tie run.
    ends = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    return ThresholdCurve(np.concatenate([[NEVER_FIRE], sorted_scores[ends]]),
                          np.concatenate([[base], running[ends]]))


def _scored_rows(files: Iterable[tuple[FileLayout, FloatArray]],
                 cost: CostMatrix) -> tuple[FloatArray, IntArray, FloatArray, float]:
    """All files' scored rows end to end: score, corpus-wide window id (-1 outside), weight; and the null score."""
    parts: list[tuple[FloatArray, IntArray, FloatArray]] = [(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0))]
    offset, base = 0, 0.0
    for layout, file_scores in files:
        keep = slice(layout.probation, layout.n_rows)
        w = layout.window_of_row[keep]
        weight = np.where(w >= 0, cost.tp * layout.tp_unit[keep], cost.fp * layout.fp_unit[keep])
        parts.append((file_scores[keep], np.where(w >= 0, w + offset, -1), weight))
        offset += layout.n_windows
        base -= cost.fn * layout.scorable_windows
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), base)


def _first_detection_gain(window: IntArray, row: IntArray, weight_of_row: FloatArray, fn: float) -> FloatArray:
    """Score change each in-window row brings as it becomes a detection; rows come in activation order.

    A window is worth the weight of its earliest detected row, -A_FN before any (weights fall along a
    window, so this is NAB's running max); a row changes the score only if it precedes all detected so far.
    ``row`` indexes ``weight_of_row`` and ascends in time within a window.
    """
    if len(window) == 0:
        return np.zeros(0)
    by_window = np.argsort(window, kind="stable")  # keeps activation order inside each window
    w, r = window[by_window], row[by_window]
    # Segmented running minimum of the row, exact in integers: with windows sorted, w * span - r of a
    # window is above every value of the windows before it, so their running maximum cannot leak in.
    span = len(weight_of_row)
    earliest = w * span - np.maximum.accumulate(w * span - r)
    value = weight_of_row[earliest]
    previous = np.concatenate([[-fn], value[:-1]])
    previous[np.flatnonzero(np.append(True, w[1:] != w[:-1]))] = -fn
    gain = np.empty_like(value)
    gain[by_window] = value - previous
    return gain


def null_score(layouts: Iterable[FileLayout], cost: CostMatrix) -> float:
    """Raw score of the detector that never fires: every scorable window missed."""
    return -cost.fn * sum(layout.scorable_windows for layout in layouts)


def perfect_score(n_windows: int, cost: CostMatrix) -> float:
    """Raw score of a detector that fires exactly at every window start (NAB counts every labelled window)."""
    return cost.tp * n_windows


def normalise(raw: float, null: float, perfect: float) -> float:
    """NAB's normalised score: null detector = 0, perfect detector = 100."""
    return 100.0 * (raw - null) / (perfect - null)
