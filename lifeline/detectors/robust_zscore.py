"""Rolling robust z-score: how far is this value from the recent median, in MADs?

For sensors whose normal level is unknown or drifts slowly (a sewer well's biogas background), a
value far from the median of the last ``window`` observations is suspicious; median and MAD are
not dragged by the outliers they are meant to flag (the bridge platform cleans data with rolling
median + MAD, thresh 3, window 24: REFERENCE §4.3 [B2]). ``value`` is the signed robust z;
``score`` grows with |z| beyond ``z_floor`` (1 - exp(-(|z| - z_floor) / z_scale)).
Cost per reading: O(window) (one sorted-list insert and delete, both memmove in C).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifeline.detectors.base import Detector, Params, Verdict, check_side, sorted_median, squash

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution * 1.4826 = its standard deviation
MEANAD_TO_SIGMA = 1.2533  # mean absolute deviation * 1.2533 = standard deviation (normal)


@dataclass(frozen=True, slots=True)
class RobustZScoreParams(Params):
    window: int = 60  # observations in the rolling window
    min_samples: int = 20  # warm-up: no verdict before this many observations
    z_floor: float = 3.0  # |z| up to this scores 0
    z_scale: float = 3.0  # how fast the score rises past the floor
    min_mad: float = 1e-6  # floor for the scale, in the metric's unit (a flat series is not infinitely anomalous)
    side: str = "both"  # "both", "up" (only rises) or "down"

    def check(self) -> list[tuple[str, str]]:
        out = []
        if self.window < 3:
            out.append(("window", f"must be at least 3 (got {self.window})"))
        if not 2 <= self.min_samples <= self.window:
            out.append(("min_samples", f"must be between 2 and window={self.window} (got {self.min_samples})"))
        if self.z_scale <= 0:
            out.append(("z_scale", f"must be positive (got {self.z_scale})"))
        if self.z_floor < 0:
            out.append(("z_floor", f"must not be negative (got {self.z_floor})"))
        if self.min_mad <= 0:
            out.append(("min_mad", f"must be positive (got {self.min_mad})"))
        out.extend(check_side(self.side))
        return out


class RobustZScoreDetector(Detector):
    kind = "robust_zscore"
    params_type = RobustZScoreParams
    value_unit = "robust z (MADs x 1.4826)"

    params: RobustZScoreParams

    def reset(self) -> None:
        self._fifo: deque[float] = deque()
        self._sorted: list[float] = []

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        p = self.params
        verdict: Verdict | None = None
        xs = self._sorted
        if len(xs) >= p.min_samples:
            med = sorted_median(xs)
            devs = [abs(x - med) for x in xs]
            sigma = MAD_TO_SIGMA * sorted_median(sorted(devs))
            if sigma < p.min_mad:  # over half the window identical: fall back to the mean deviation
                sigma = max(MEANAD_TO_SIGMA * sum(devs) / len(devs), p.min_mad)
            z = (value - med) / sigma
            signed = z if p.side != "down" else -z
            dev = abs(z) if p.side == "both" else max(signed, 0.0)
            verdict = Verdict(squash(dev - p.z_floor, p.z_scale), z)
        self._fifo.append(value)
        bisect.insort(xs, value)
        if len(self._fifo) > p.window:
            old = self._fifo.popleft()
            del xs[bisect.bisect_left(xs, old)]
        return verdict

    def snapshot(self) -> dict[str, Any]:
        return {"fifo": list(self._fifo)}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        for x in state["fifo"]:
            self._fifo.append(float(x))
        self._sorted = sorted(self._fifo)
