"""EWMA control chart (Roberts 1959; Lucas & Saccucci 1990): small persistent shifts and slow drift.

For series whose normal level is steady and whose danger is a small change that persists: a water
main's minimum night flow creeping up as a leak grows (REFERENCE §2.1, §2.3 [W4][W5]: MNF ramps a few %
per week), a gas well's background drifting up, a pressure that settles a little lower after a
fitting starts to weep. One reading off by 3 sigma means little; twenty readings off by 0.7 sigma
mean a lot, and the EWMA z_t = lam*x_t + (1 - lam)*z_(t-1) accumulates exactly that.

The in-control mean and sigma are learned from the first ``warmup`` observations (median/MAD screen,
then clipped mean and standard deviation: ``_baseline``) and then **frozen**. A baseline that keeps
learning follows a slow drift and so hides the very thing this chart is for; the price is that a
legitimate change of regime (a new set point) keeps the chart out of control until the detector is
rebuilt. Use ``cusum`` with ``after_signal: relearn`` for series that step to new normals.

``value`` is the standardised statistic (z_t - mean) / sigma_z(t), with the exact time-varying
sigma_z(t) = sigma * sqrt(lam / (2 - lam) * (1 - (1 - lam)^(2t))) so the first readings after the
warm-up are judged fairly. ``score`` is 1 - 2^(-d / L), d = |value| (or its signed part for
``side`` up/down): 0.5 exactly at the control limit L, 0.75 at 2L. No verdict during the warm-up.
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
class EWMAParams(Params):
    lam: float = 0.1  # smoothing weight of the newest reading; small lam = small shifts, slower response
    L: float = 4.5  # control limit, in sigma_z; scores 0.5 there (see docs/detectors/ewma.md for the choice)
    warmup: int = 200  # observations that set the in-control mean and sigma (then frozen)
    min_sigma: float = 1e-6  # floor for the learned sigma, in the metric's unit (a flat warm-up)
    side: str = "both"  # "both", "up" (only rises score) or "down"

    def check(self) -> list[tuple[str, str]]:
        out = []
        if not 0 < self.lam <= 1:
            out.append(("lam", f"must be in (0, 1] (got {self.lam})"))
        if self.L <= 0:
            out.append(("L", f"must be positive (got {self.L})"))
        if self.warmup < 10:
            out.append(("warmup", f"must be at least 10 (got {self.warmup})"))
        if self.min_sigma <= 0:
            out.append(("min_sigma", f"must be positive (got {self.min_sigma})"))
        out.extend(check_side(self.side))
        return out


class EWMADetector(Detector):
    kind = "ewma"
    params_type = EWMAParams
    value_unit = "standardised EWMA (sigma_z)"

    params: EWMAParams

    def reset(self) -> None:
        self._base = WarmupBaseline(self.params.warmup, self.params.min_sigma)
        self._z = 0.0
        self._decay = 1.0  # (1 - lam)^(2t), t = readings since the warm-up

    @property
    def baseline(self) -> tuple[float, float] | None:
        """The frozen (mean, sigma), or None during the warm-up."""
        return self._base.learned

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        x = float(value)  # numpy scalars in, JSON-able state out
        p = self.params
        base = self._base
        if not base.ready:
            if base.feed(x):
                self._z, self._decay = base.mean, 1.0
            return None
        self._z = p.lam * x + (1.0 - p.lam) * self._z
        self._decay *= (1.0 - p.lam) ** 2
        sigma_z = base.sigma * math.sqrt(p.lam / (2.0 - p.lam) * (1.0 - self._decay))
        stat = (self._z - base.mean) / sigma_z
        d = abs(stat) if p.side == "both" else max(stat if p.side == "up" else -stat, 0.0)
        return Verdict(squash(d, p.L / LN2), stat)

    def snapshot(self) -> dict[str, Any]:
        return {**self._base.state(), "z": self._z, "decay": self._decay}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        self._base.load(state)
        self._z, self._decay = float(state["z"]), float(state["decay"])
