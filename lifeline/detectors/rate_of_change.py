"""Rate of change: the least-squares slope of the value over the last ``window_s`` of event time.

For signals whose danger is how fast they move, not where they are: road ponding "≥15 cm and rising
faster than 1 cm/min" is red (REFERENCE §3.2 [D1]–[D5], ⚠INF pack), gas in a well "rise ≥5 %LEL/h"
is yellow (REFERENCE §1.2, ⚠INF), a pipeline pressure "falling ≥5 %/5 min" is orange (§1.2).
The slope is fitted over every observation whose ``ts`` lies in (now - window_s, now], so irregular
sampling (a detector that uploads immediately on exceedance, §1.2 [G12]) weighs each reading by
where it sits in time, not by its index; a lone spike moves the slope far less than a two-point
difference would.

``value`` is the signed slope in unit per ``per`` ("s", "min" or "h"); ``score`` is
1 - 2^(-r / rate_scale), where r is the rate in the watched direction (``side``): 0.5 exactly at
``rate_scale``, 0.75 at twice it, 0 for a rate in the other direction.
No verdict until the window holds ``min_samples`` observations spanning at least ``min_span_s``
(also after a silence longer than the window: an old level says nothing about the present rate).
A reading whose ``ts`` is not after the previous one is ignored (the engine drops those as late).
Cost per reading: O(1) amortised: running sums of time and value (anchored at a recent reading, so no
cancellation) are updated as readings enter and leave, and recomputed exactly, re-anchored, once the
window has turned over; the sums are part of the snapshot, so a restore is invisible. The slope agrees
with a fresh two-pass fit to ~1e-17 absolute (a value printed to 4 decimals can flip on a tie).

``fit: theil_sen`` takes the median of the pairwise slopes instead (Theil 1950, Sen 1968): a lone
glitch still moves a least-squares slope for the whole window it passes through — a pressure spike
leaving a 5-reading window reads as a fall of 0.2·d, then 0.1·d per minute on two readings in a row —
while it touches fewer than half of the pairs from four readings on. For a step it gives about what least
squares gives (0.29·d per minute for a step d two readings into a 5-reading window). Cost O(n² log n)
per reading for n readings in the window: for short windows (the 5-reading burst slope), not hours.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from lifeline.detectors.base import Detector, Params, Verdict, check_side, squash

PER_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0}
LN2 = math.log(2.0)


@dataclass(frozen=True, slots=True)
class RateOfChangeParams(Params):
    window_s: float = 600.0  # the slope is fitted over the observations of the last window_s of event time
    min_samples: int = 3  # no verdict with fewer observations in the window
    min_span_s: float = 120.0  # nor while they span less than this (two readings 1 s apart are no trend)
    per: str = "min"  # time unit of the rate: "s", "min" or "h"
    rate_scale: float = 1.0  # rate (unit per `per`) that scores 0.5; 1 cm/min is the ponding red trend (§3.2)
    side: str = "both"  # "both", "up" (only rises score) or "down"
    max_samples: int = 1000  # memory bound: beyond this many observations in the window the oldest go
    fit: str = "least_squares"  # or "theil_sen": the median of the pairwise slopes, robust to a glitch

    def check(self) -> list[tuple[str, str]]:
        out = []
        if self.window_s <= 0:
            out.append(("window_s", f"must be positive (got {self.window_s})"))
        if self.max_samples < 2:
            out.append(("max_samples", f"must be at least 2 (got {self.max_samples})"))
        if not 2 <= self.min_samples <= max(self.max_samples, 2):
            out.append(("min_samples", f"must be between 2 and max_samples={self.max_samples} "
                                       f"(got {self.min_samples})"))
        if not 0 <= self.min_span_s < self.window_s:
            out.append(("min_span_s", f"must be at least 0 and less than window_s={self.window_s} "
                                      f"(got {self.min_span_s})"))
        if self.per not in PER_SECONDS:
            out.append(("per", f"must be 's', 'min' or 'h' (got {self.per!r})"))
        if self.rate_scale <= 0:
            out.append(("rate_scale", f"must be positive (got {self.rate_scale})"))
        out.extend(check_side(self.side))
        if self.fit not in FITS:
            out.append(("fit", f"must be 'least_squares' or 'theil_sen' (got {self.fit!r})"))
        return out


FITS = ("least_squares", "theil_sen")


def theil_sen(ts: Sequence[float], xs: Sequence[float]) -> float:
    """Median of the slopes between every pair of observations (per second; times strictly increasing).
    One glitch among n readings touches n - 1 of the n(n-1)/2 pairs: fewer than half from n = 4 on."""
    n = len(ts)
    slopes = [(xs[j] - xs[i]) / (ts[j] - ts[i]) for i in range(n - 1) for j in range(i + 1, n)]
    slopes.sort()
    k = len(slopes)
    return slopes[k // 2] if k % 2 else 0.5 * (slopes[k // 2 - 1] + slopes[k // 2])


def slope(ts: Sequence[float], xs: Sequence[float]) -> float:
    """Least-squares slope of xs over ts (per second); needs two distinct times."""
    n = len(ts)
    t_ref = ts[-1]  # epoch seconds are ~1.7e9: centre on recent time before squaring
    tbar = sum(t - t_ref for t in ts) / n
    xbar = sum(xs) / n
    sxx = sxy = 0.0
    for t, x in zip(ts, xs, strict=True):
        dt = t - t_ref - tbar
        sxx += dt * dt
        sxy += dt * (x - xbar)
    return sxy / sxx


class RateOfChangeDetector(Detector):
    kind = "rate_of_change"
    params_type = RateOfChangeParams
    value_unit = "unit per `per` (least-squares slope over window_s)"

    __slots__ = ("_age", "_su", "_suu", "_suv", "_sv", "_t0", "_ts", "_x0", "_xs")

    def reset(self) -> None:
        # times and values in the window, oldest first: doubles in one block each (inside the engine a deque of
        # float objects cost a cache miss per reading the update or a re-anchoring reads)
        self._ts = array("d")
        self._xs = array("d")
        # running sums of u = t - t0 and v = x - x0 over the window, re-anchored and recomputed exactly
        # once the window has turned over (``age`` updates since): O(1) per reading, amortised
        self._t0 = self._x0 = 0.0
        self._su = self._sv = self._suu = self._suv = 0.0
        self._age = 0

    def _anchor(self) -> None:
        """Recompute the sums exactly, anchored at the newest observation (near the data: no cancellation)."""
        t0, x0 = self._ts[-1], self._xs[-1]
        su = sv = suu = suv = 0.0
        for t, x in zip(self._ts, self._xs, strict=True):
            u, v = t - t0, x - x0
            su += u
            sv += v
            suu += u * u
            suv += u * v
        self._t0, self._x0, self._su, self._sv, self._suu, self._suv, self._age = t0, x0, su, sv, suu, suv, 0

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        tq, xq = self._ts, self._xs
        if tq and ts <= tq[-1]:
            return None
        p = cast(RateOfChangeParams, self.params)
        t, x = float(ts), float(value)  # numpy scalars in, JSON-able state out
        tq.append(t)
        xq.append(x)
        t0, x0 = self._t0, self._x0
        u, v = t - t0, x - x0
        su, sv, suu, suv = self._su + u, self._sv + v, self._suu + u * u, self._suv + u * v
        while t - tq[0] >= p.window_s or len(tq) > p.max_samples:
            u, v = tq[0] - t0, xq[0] - x0
            del tq[0], xq[0]
            su, sv, suu, suv = su - u, sv - v, suu - u * u, suv - u * v
        self._su, self._sv, self._suu, self._suv = su, sv, suu, suv
        n = len(tq)
        self._age += 1
        if self._age >= n:  # the window has turned over since the last exact sums (or holds one reading)
            self._anchor()
        if n < p.min_samples or t - tq[0] < p.min_span_s:
            return None
        su = self._su
        sxx = self._suu - su * su / n
        if p.fit == "theil_sen":
            rate = theil_sen(tq, xq) * PER_SECONDS[p.per]
        elif sxx > 0.0:
            rate = (self._suv - su * self._sv / n) / sxx * PER_SECONDS[p.per]
        else:  # times too close together for the running sums: fit exactly
            rate = slope(tq, xq) * PER_SECONDS[p.per]
        r = abs(rate) if p.side == "both" else max(rate if p.side == "up" else -rate, 0.0)
        return Verdict(squash(r, p.rate_scale / LN2), rate)

    def snapshot(self) -> dict[str, Any]:
        return {"ts": list(self._ts), "xs": list(self._xs), "anchor": [self._t0, self._x0],
                "sums": [self._su, self._sv, self._suu, self._suv], "age": self._age}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        self._ts.extend(float(t) for t in state["ts"])
        self._xs.extend(float(x) for x in state["xs"])
        if "sums" in state:  # the running sums as they were, so the verdicts that follow are identical
            self._t0, self._x0 = (float(a) for a in state["anchor"])
            self._su, self._sv, self._suu, self._suv = (float(s) for s in state["sums"])
            self._age = int(state["age"])
        elif self._ts:  # a snapshot from before the running sums: recompute them
            self._anchor()
