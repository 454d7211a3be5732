"""Ensemble of robust surprises, turned into an anomaly likelihood, with alarm suppression.

What it asks: "is the recent level of surprise unusual for THIS series?" rather than "is this value
far from normal?". Three steps per reading, all one-pass and bounded:

1. Raw surprise in [0, 1), per feature: four robust, scale-free deviations of the new value, each
   measured against history that excludes it:

   * level — robust z of the value against the median and inter-quartile range of the last
     ``window`` values (IQR / 1.349 estimates sigma for normal data);
   * rate — the same for the first difference (x_t - x_{t-1}) against the last ``window`` differences;
   * season — the same for x(t) - x(t - ``season_s``) (a broken daily pattern; 0 turns it off);
   * range — how far the value lies outside the [min, max] of everything seen so far, in units of
     that range (beyond ``range_tolerance``). This is the "spatial anomaly" idea of Numenta's NAB
     detector (a value never seen before is suspicious whatever the model says).

   Each deviation d becomes ``1 - exp(-max(d - z_floor, 0) / z_scale)`` (range: ``/ range_scale``).

2. Anomaly likelihood (the idea of Numenta's ``AnomalyLikelihood``, Ahmad et al., "Unsupervised
   real-time anomaly detection for streaming data", Neurocomputing 2017; re-implemented here from the
   paper's description): the mean of the last ``short_window`` raw surprises is compared with the
   distribution (mean, std) of that same moving average over the last ``history`` readings; the
   Gaussian tail probability ``q`` of the current average says how unusual the recent surprise is for
   this series. A noisy series that is always a bit surprising does not alarm; a quiet one that
   suddenly is does. Each feature has its own likelihood; the smallest tail wins. ``likelihood_learn``
   readings of raw surprise are gathered before it speaks. ``tail="record"`` additionally caps a
   non-record average at its empirical (conformal) rank.

3. Graded output and suppression: ``score = 1 - exp(-(-log10 q) / log_scale)`` (a monotone,
   never-saturating map of the tail's order of magnitude). NAB (and an operator) rewards the first
   alarm of an episode only, so after a score of at least ``alarm_level`` the next ``suppress``
   readings are scaled by ``suppress_factor``: the first alarm stands, its echoes sink below it.

``value`` is ``-log10 q`` (how many orders of magnitude rarer than usual the recent surprise is).
Defaults are the one configuration chosen on NAB (docs/detectors/ensemble.md: 62.21 / 48.01 / 69.06,
with the selection caveats stated there). Cost per reading: O(log window) comparisons plus three
sorted-list inserts/deletes (memmove in C), ~0.1 ms; state is bounded by ``3 * window + 4 * history``
floats plus one season of (ts, value). ``ts`` is used only for the seasonal lag; ``env`` is not used.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifeline.detectors.base import Detector, Params, Verdict

IQR_TO_SIGMA = 1.0 / 1.349  # inter-quartile range of a normal distribution = 1.349 sigma
LOG10_FLOOR = 1e-300  # tails smaller than this are treated as this (keeps -log10 finite)


@dataclass(frozen=True, slots=True)
class EnsembleParams(Params):
    window: int = 2048  # values (and differences) the robust level / rate statistics look back over
    min_samples: int = 16  # warm-up: no verdict before this many observations
    z_floor: float = 2.0  # robust |z| up to this is no surprise at all
    z_scale: float = 10.0  # how fast raw surprise rises past the floor
    range_tolerance: float = 0.05  # excursion outside the seen [min, max], in range units, that is free
    range_scale: float = 0.1  # how fast the range surprise rises past the tolerance
    use_rate: bool = True  # include the first-difference deviation
    use_range: bool = True  # include the outside-the-seen-range deviation
    season_s: float = 86400.0  # period of the seasonal difference x(t) - x(t - season_s); 0 = off
    short_window: int = 12  # raw surprises averaged before the likelihood step
    history: int = 4000  # readings over which the usual level of averaged surprise is estimated
    likelihood_learn: int = 200  # readings of raw surprise gathered before the likelihood speaks
    min_std: float = 0.01  # floor for the std of averaged surprise (a series that never surprises)
    tail: str = "gauss"  # "gauss" (Numenta's Gaussian tail) or "record" (no rarer than its rank unless a record)
    log_scale: float = 6.0  # score = 1 - exp(-(-log10 tail) / log_scale)
    alarm_level: float = 0.5  # a score at least this opens a suppression period
    suppress: int = 200  # readings after an alarm whose scores are scaled down
    suppress_factor: float = 0.5  # scale of scores inside the suppression period (1.0 = off)

    def check(self) -> list[tuple[str, str]]:
        out = []
        if self.window < 8:
            out.append(("window", f"must be at least 8 (got {self.window})"))
        if not 4 <= self.min_samples <= self.window:
            out.append(("min_samples", f"must be between 4 and window={self.window} (got {self.min_samples})"))
        for name in ("z_scale", "range_scale", "log_scale", "min_std"):
            if getattr(self, name) <= 0:
                out.append((name, f"must be positive (got {getattr(self, name)})"))
        for name in ("z_floor", "range_tolerance"):
            if getattr(self, name) < 0:
                out.append((name, f"must not be negative (got {getattr(self, name)})"))
        if self.short_window < 1:
            out.append(("short_window", f"must be at least 1 (got {self.short_window})"))
        if self.history < 2 * self.short_window or self.history < 10:
            out.append(("history", f"must be at least max(10, 2 * short_window) (got {self.history})"))
        if not 2 <= self.likelihood_learn <= self.history:
            out.append(("likelihood_learn", f"must be between 2 and history={self.history} "
                                            f"(got {self.likelihood_learn})"))
        if self.tail not in ("gauss", "record"):
            out.append(("tail", f"must be 'gauss' or 'record' (got {self.tail!r})"))
        if not 0.0 < self.alarm_level <= 1.0:
            out.append(("alarm_level", f"must be in (0, 1] (got {self.alarm_level})"))
        if self.suppress < 0:
            out.append(("suppress", f"must not be negative (got {self.suppress})"))
        if not 0.0 <= self.suppress_factor <= 1.0:
            out.append(("suppress_factor", f"must be in [0, 1] (got {self.suppress_factor})"))
        return out


def _surprise(dev: float, floor: float, scale: float) -> float:
    d = dev - floor
    return 0.0 if d <= 0.0 else 1.0 - math.exp(-d / scale)


class _RobustWindow:
    """The last ``size`` values in arrival order and sorted: median and IQR in O(1), update in O(log n + memmove)."""

    __slots__ = ("fifo", "size", "sorted")

    def __init__(self, size: int) -> None:
        self.size = size
        self.fifo: deque[float] = deque()
        self.sorted: list[float] = []

    def __len__(self) -> int:
        return len(self.fifo)

    def deviation(self, x: float, min_sigma: float) -> float:
        """|x - median| / (IQR / 1.349), with sigma floored (by the mean absolute deviation, then ``min_sigma``)."""
        xs = self.sorted
        n = len(xs)
        mid = n // 2
        med = xs[mid] if n % 2 else 0.5 * (xs[mid - 1] + xs[mid])
        sigma = (xs[(3 * n) // 4] - xs[n // 4]) * IQR_TO_SIGMA
        if sigma <= min_sigma:  # over half the window (nearly) equal: the mean deviation still sees the rest
            sigma = max(1.2533 * sum(abs(v - med) for v in xs) / n, min_sigma)
        return abs(x - med) / sigma

    def push(self, x: float) -> None:
        self.fifo.append(x)
        bisect.insort(self.sorted, x)
        if len(self.fifo) > self.size:
            old = self.fifo.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]

    def load(self, values: list[float]) -> None:
        self.fifo = deque(float(v) for v in values)
        self.sorted = sorted(self.fifo)


class _Tail:
    """Moving average of one feature's raw surprise and its running distribution over ``history`` readings."""

    __slots__ = ("hist", "hist_sorted", "hist_sq", "hist_sum", "raw", "raw_sum")

    def __init__(self) -> None:
        self.raw: deque[float] = deque()
        self.raw_sum = 0.0
        self.hist: deque[float] = deque()
        self.hist_sum = 0.0
        self.hist_sq = 0.0
        self.hist_sorted: list[float] = []  # only kept for tail == "record"

    def update(self, raw: float, p: EnsembleParams) -> float | None:
        """-log10 of the Gaussian upper tail of the current moving average (None while learning)."""
        self.raw.append(raw)
        self.raw_sum += raw
        if len(self.raw) > p.short_window:
            self.raw_sum -= self.raw.popleft()
        avg = self.raw_sum / len(self.raw)
        n = len(self.hist)
        out: float | None = None
        if n >= p.likelihood_learn:
            mean = self.hist_sum / n
            std = max(math.sqrt(max(self.hist_sq / n - mean * mean, 0.0)), p.min_std)
            tail = 0.5 * math.erfc((avg - mean) / (std * math.sqrt(2.0)))
            out = -math.log10(max(tail, LOG10_FLOOR))
            if p.tail == "record":
                above = n - bisect.bisect_left(self.hist_sorted, avg)
                if above:  # not a record: no rarer than its empirical rank says
                    out = min(out, -math.log10((above + 1) / (n + 1)))
        if p.tail == "record":
            bisect.insort(self.hist_sorted, avg)
        self.hist.append(avg)
        self.hist_sum += avg
        self.hist_sq += avg * avg
        if n + 1 > p.history:
            old = self.hist.popleft()
            if p.tail == "record":
                del self.hist_sorted[bisect.bisect_left(self.hist_sorted, old)]
            self.hist_sum -= old
            self.hist_sq -= old * old
        return out

    def state(self) -> list[Any]:
        return [list(self.raw), self.raw_sum, list(self.hist), self.hist_sum, self.hist_sq, bool(self.hist_sorted)]

    def load(self, state: list[Any]) -> None:
        self.raw = deque(float(v) for v in state[0])
        self.raw_sum = float(state[1])
        self.hist = deque(float(v) for v in state[2])
        self.hist_sum = float(state[3])
        self.hist_sq = float(state[4])
        self.hist_sorted = sorted(self.hist) if state[5] else []


FEATURES = ("level", "rate", "season", "range")


class EnsembleDetector(Detector):
    kind = "ensemble"
    params_type = EnsembleParams
    value_unit = "-log10 tail probability of the recent surprise"

    params: EnsembleParams

    def reset(self) -> None:
        p = self.params
        self._level = _RobustWindow(p.window)
        self._rate = _RobustWindow(p.window)
        self._season = _RobustWindow(p.window)
        self._past: deque[tuple[float, float]] = deque()  # (ts, value) of the last season_s seconds and one more
        self._last: float | None = None
        self._lo = math.inf
        self._hi = -math.inf
        self._tails = {f: _Tail() for f in FEATURES}
        self._quiet = 0  # readings left in the suppression period

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        p = self.params
        x = float(value)
        ts = float(ts)
        verdict: Verdict | None = None
        sdiff = self._seasonal_diff(ts, x)
        if len(self._level) >= p.min_samples:
            span = self._hi - self._lo
            min_sigma = 1e-9 * max(span, abs(x), 1e-300)  # relative: a flat series is not infinitely anomalous
            raws = {"level": _surprise(self._level.deviation(x, min_sigma), p.z_floor, p.z_scale)}
            if p.use_rate and self._last is not None and len(self._rate) >= p.min_samples:
                raws["rate"] = _surprise(self._rate.deviation(x - self._last, min_sigma), p.z_floor, p.z_scale)
            if sdiff is not None and len(self._season) >= p.min_samples:
                raws["season"] = _surprise(self._season.deviation(sdiff, min_sigma), p.z_floor, p.z_scale)
            if p.use_range and span > 0.0:
                out = max(x - self._hi, self._lo - x) / span
                raws["range"] = _surprise(out, p.range_tolerance, p.range_scale)
            verdict = self._combine(raws)
        if sdiff is not None:
            self._season.push(sdiff)
        if p.season_s > 0.0:
            self._past.append((ts, x))
        if self._last is not None:
            self._rate.push(x - self._last)
        self._level.push(x)
        self._last = x
        self._lo = min(self._lo, x)
        self._hi = max(self._hi, x)
        return verdict

    def _seasonal_diff(self, ts: float, x: float) -> float | None:
        """x minus the value one season ago (the last reading at or before ts - season_s, if within 5 %)."""
        p = self.params
        if p.season_s <= 0.0:
            return None
        past = self._past
        target = ts - p.season_s
        while len(past) >= 2 and past[1][0] <= target:
            past.popleft()
        if past and target - 0.05 * p.season_s <= past[0][0] <= target:
            return x - past[0][1]
        return None

    def _combine(self, raws: Mapping[str, float]) -> Verdict | None:
        p = self.params
        surprise: float | None = None
        for name, raw in raws.items():
            s = self._tails[name].update(raw, p)
            if s is not None and (surprise is None or s > surprise):
                surprise = s
        if surprise is None:
            return None
        score = 1.0 - math.exp(-surprise / p.log_scale)
        if self._quiet > 0:
            self._quiet -= 1
            score *= p.suppress_factor
        elif score >= p.alarm_level:
            self._quiet = p.suppress
        return Verdict(score, surprise)

    def snapshot(self) -> dict[str, Any]:
        return {"level": list(self._level.fifo), "rate": list(self._rate.fifo), "season": list(self._season.fifo),
                "past": [list(tv) for tv in self._past], "last": self._last,
                "lo": self._lo if math.isfinite(self._lo) else None,
                "hi": self._hi if math.isfinite(self._hi) else None,
                "tails": {name: tail.state() for name, tail in self._tails.items()}, "quiet": self._quiet}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        self._level.load(state["level"])
        self._rate.load(state["rate"])
        self._season.load(state["season"])
        self._past = deque((float(t), float(v)) for t, v in state["past"])
        self._last = None if state["last"] is None else float(state["last"])
        self._lo = math.inf if state["lo"] is None else float(state["lo"])
        self._hi = -math.inf if state["hi"] is None else float(state["hi"])
        for name, tail in self._tails.items():
            tail.load(state["tails"][name])
        self._quiet = int(state["quiet"])
