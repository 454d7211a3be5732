"""In-control mean and sigma learned from a warm-up sample, for the control charts (EWMA, CUSUM).

Median and MAD screen the warm-up (points beyond ``CLIP`` MAD-sigmas of the median are dropped, so a
spike or a short burst in the warm-up does not set the baseline); the mean and standard deviation
of the points kept are the estimate. The clipped mean, not the median, is the centre because the
charts accumulate deviations from it: on a skewed background (a sewer well's small biogas reading,
REFERENCE §1.1 [G5]) the median would leave a bias that the sums add up. The clipped standard
deviation is far more efficient than the MAD (37 % for normal data), which matters because a
sigma estimated low is a stream of false alarms. Pure; never reads the clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lifeline.detectors.base import sorted_median
from lifeline.detectors.robust_zscore import MAD_TO_SIGMA, MEANAD_TO_SIGMA

CLIP = 3.0  # screen width, in robust sigmas
CLIPPED_SD = 0.98658  # sd of a normal truncated at +-3 sigma, in sigmas: undo the clip's shrinkage


def learn_baseline(xs: Sequence[float], min_sigma: float) -> tuple[float, float]:
    """(mean, sigma) of the warm-up values ``xs`` (at least 2): clipped around median +- 3 MAD-sigmas."""
    med = sorted_median(sorted(xs))
    devs = [abs(x - med) for x in xs]
    width = MAD_TO_SIGMA * sorted_median(sorted(devs))
    if width < min_sigma:  # over half the warm-up identical: fall back to the mean deviation
        width = max(MEANAD_TO_SIGMA * sum(devs) / len(devs), min_sigma)
    kept = [x for x, d in zip(xs, devs, strict=True) if d <= CLIP * width]
    mean = sum(kept) / len(kept)
    if len(kept) < 2:
        return mean, min_sigma
    var = sum((x - mean) ** 2 for x in kept) / (len(kept) - 1)
    return mean, max(math.sqrt(var) / CLIPPED_SD, min_sigma)


class WarmupBaseline:
    """The charts' shared warm-up: collect the first ``size`` values, then hold the learned (mean,
    sigma) until ``forget``. ``sigma == 0`` means still warming up."""

    __slots__ = ("mean", "min_sigma", "sigma", "size", "warm")

    def __init__(self, size: int, min_sigma: float) -> None:
        self.size, self.min_sigma = size, min_sigma
        self.warm: list[float] = []
        self.mean = 0.0
        self.sigma = 0.0

    @property
    def ready(self) -> bool:
        return self.sigma > 0.0

    @property
    def learned(self) -> tuple[float, float] | None:
        return (self.mean, self.sigma) if self.ready else None

    def feed(self, x: float) -> bool:
        """Add a warm-up value; True when this one completed the warm-up."""
        self.warm.append(x)
        if len(self.warm) < self.size:
            return False
        self.mean, self.sigma = learn_baseline(self.warm, self.min_sigma)
        self.warm = []
        return True

    def forget(self) -> None:
        """Warm up again (the next values set a new baseline)."""
        self.sigma = 0.0

    def state(self) -> dict[str, Any]:
        return {"warm": list(self.warm), "mean": self.mean, "sigma": self.sigma}

    def load(self, state: Mapping[str, Any]) -> None:
        self.warm = [float(x) for x in state["warm"]]
        self.mean, self.sigma = float(state["mean"]), float(state["sigma"])
