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
from collections.abc import Sequence

from lifeline.detectors.robust_zscore import MAD_TO_SIGMA, MEANAD_TO_SIGMA

CLIP = 3.0  # screen width, in robust sigmas
CLIPPED_SD = 0.98658  # sd of a normal truncated at +-3 sigma, in sigmas: undo the clip's shrinkage


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n, mid = len(s), len(s) // 2
    return s[mid] if n % 2 else 0.5 * (s[mid - 1] + s[mid])


def learn_baseline(xs: Sequence[float], min_sigma: float) -> tuple[float, float]:
    """(mean, sigma) of the warm-up values ``xs`` (at least 2): clipped around median +- 3 MAD-sigmas."""
    med = _median(xs)
    devs = [abs(x - med) for x in xs]
    width = MAD_TO_SIGMA * _median(devs)
    if width < min_sigma:  # over half the warm-up identical: fall back to the mean deviation
        width = max(MEANAD_TO_SIGMA * sum(devs) / len(devs), min_sigma)
    kept = [x for x, d in zip(xs, devs, strict=True) if d <= CLIP * width]
    mean = sum(kept) / len(kept)
    if len(kept) < 2:
        return mean, min_sigma
    var = sum((x - mean) ** 2 for x in kept) / (len(kept) - 1)
    return mean, max(math.sqrt(var) / CLIPPED_SD, min_sigma)
