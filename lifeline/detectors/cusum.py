"""Two-sided tabular CUSUM (Page 1954): a persistent step of known size, found fast.

For series that sit at a level and may step away from it and stay: a DMA inflow stepping up after
a burst (REFERENCE §2.1/§2.3: +10–50 % of average flow, [W10][W11] ⚠INF), a node pressure settling
0.02–0.1 MPa lower (§2.3), a night flow that jumps when a new leak opens (MNF "steps up", §2.1 [W4]).
In sigmas of the in-control series, with z = (x - mean) / sigma:

    S+ = max(0, S+ + z - k)        S- = max(0, S- - z - k)

``k`` is half the shift worth catching (k = 0.5 targets a 1-sigma step); the chart signals when a
sum reaches ``h``. Mean and sigma are learned from the first ``warmup`` observations (median/MAD
screen, then clipped mean and standard deviation: ``_baseline``).

``value`` is max(S+, S-) in sigmas (S+ alone for ``side: up``, S- for ``down``); ``score`` is
1 - 2^(-value / h): 0.5 exactly at the decision interval h. ``after_signal`` says what happens once
value reaches h: ``hold`` keeps summing (an alert stays open while the shift lasts) with each sum
capped at ``cap`` * h, so the score stays graded and drains within (cap - 1) * h / k readings after
the shift ends; ``zero`` restarts both sums at 0 (Page's chart: one signal per change, re-signalling
every ~h / (shift - k) readings while it lasts); ``relearn`` also forgets the baseline and warms up
again, so a step to a new normal (a changed set point) signals once and then goes quiet.
Cost per reading: O(1) after the warm-up; the observation that ends it costs O(warmup log warmup).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifeline.detectors._baseline import WarmupBaseline
from lifeline.detectors.base import Detector, Params, Verdict, check_side, squash

LN2 = math.log(2.0)


@dataclass(frozen=True, slots=True)
class CUSUMParams(Params):
    k: float = 0.5  # reference value, in sigmas: half the step worth detecting
    h: float = 12.0  # decision interval, in sigmas; scores 0.5 there (see docs/detectors/cusum.md)
    warmup: int = 200  # observations that set the in-control mean and sigma
    after_signal: str = "hold"  # "hold" (keep summing, capped), "zero" (Page's reset) or "relearn"
    cap: float = 3.0  # with after_signal "hold": each sum stops at cap * h
    min_sigma: float = 1e-6  # floor for the learned sigma, in the metric's unit (a flat warm-up)
    side: str = "both"  # "both", "up" (S+ only) or "down" (S- only)

    def check(self) -> list[tuple[str, str]]:
        out = []
        if self.k < 0:
            out.append(("k", f"must not be negative (got {self.k})"))
        if self.h <= 0:
            out.append(("h", f"must be positive (got {self.h})"))
        if self.warmup < 10:
            out.append(("warmup", f"must be at least 10 (got {self.warmup})"))
        if self.after_signal not in ("hold", "zero", "relearn"):
            out.append(("after_signal", f"must be 'hold', 'zero' or 'relearn' (got {self.after_signal!r})"))
        if self.cap < 1:
            out.append(("cap", f"must be at least 1 (got {self.cap})"))
        if self.min_sigma <= 0:
            out.append(("min_sigma", f"must be positive (got {self.min_sigma})"))
        out.extend(check_side(self.side))
        return out


class CUSUMDetector(Detector):
    kind = "cusum"
    params_type = CUSUMParams
    value_unit = "cumulative sum (sigmas)"

    params: CUSUMParams

    def reset(self) -> None:
        self._base = WarmupBaseline(self.params.warmup, self.params.min_sigma)
        self._hi = 0.0  # S+
        self._lo = 0.0  # S-

    @property
    def baseline(self) -> tuple[float, float] | None:
        """The learned (mean, sigma), or None during the warm-up."""
        return self._base.learned

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        x = float(value)  # numpy scalars in, JSON-able state out
        p = self.params
        base = self._base
        if not base.ready:
            base.feed(x)
            return None
        z = (x - base.mean) / base.sigma
        top = p.cap * p.h if p.after_signal == "hold" else math.inf
        self._hi = min(max(0.0, self._hi + z - p.k), top)
        self._lo = min(max(0.0, self._lo - z - p.k), top)
        s = max(self._hi, self._lo) if p.side == "both" else (self._hi if p.side == "up" else self._lo)
        if s >= p.h and p.after_signal != "hold":
            self._hi = self._lo = 0.0
            if p.after_signal == "relearn":
                base.forget()
        return Verdict(squash(s, p.h / LN2), s)

    def snapshot(self) -> dict[str, Any]:
        return {**self._base.state(), "hi": self._hi, "lo": self._lo}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        self._base.load(state)
        self._hi, self._lo = float(state["hi"]), float(state["lo"])
