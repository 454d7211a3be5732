"""Spike: a single-sample glitch that jumps away from its neighbours and comes straight back.

A loose contact, a radio bit error or EMI gives one reading far off the series that the next reading
disowns (REFERENCE §4.3: the bridge platform cleans outliers with rolling median + MAD [B2]; §7:
data-quality rules before alerting). That is a sensor-health finding: whether a *level change* is
dangerous is for the safety rules to judge, so a genuine step (the level stays) is never a spike.

**One-sample delay.** Whether a reading is a glitch is known only when the next one arrives. The
verdict that ``update`` returns for observation t is about observation t-1 (with ``max_width`` w > 1:
about the block t-w .. t-1 that ended at t-1); a rule judges it when the sensor next reports. The
newest reading is never judged against itself, so the jump *into* a step scores like any ordinary
reading at its own update and at the next one (the level stayed: no glitch).

Measure. For a candidate block between a predecessor ``pre`` and a successor ``post`` the spike size
is how far the whole block stands beyond both ends (``min(block) - max(pre, post)`` upwards,
``min(pre, post) - max(block)`` downwards), less how far ``pre`` already stands from the median of
its ``context`` (the readings before the block, ending with ``pre``): a glitch departs from a calm
background, and a fresh level change is not one. The largest over widths 1..max_width is divided by
the noise of one reading, the largest of
* 1.4826 x MAD / sqrt 2 of the last ``window`` first differences, and of the newest third of them
  (so a noisier regime, such as a gas leak's fluctuation, is adopted within minutes; 1.2533 x the
  mean absolute deviation when over half the steps are equal). Steps enter the window only once
  they are older than the block being judged, so a glitch never widens its own yardstick;
* 1.4826 x MAD of the ``context`` readings (a glitch-like wiggle inside a wild stretch is not one);
* the sensor's resolution (smallest non-zero step seen: a one-quantum blip is at most 1 sigma);
* half a slow average of the spread, taken over the judged readings (it does not collapse during a
  flat stretch, which would make every later wiggle a "spike"), and ``min_spread``.
``value`` is the size in those robust sigmas (>= 0); ``score`` = 1 - exp(-(value - z_floor) /
z_scale): graded, 0.5 at about 6.9 sigmas by default. Measured on simulated healthy days (water and
gas pressure, sewer wells, fill ratio; 126 sensor-days of pressure) the largest value was 4.9.

Readings clipped at a floor (a telecom well at 0 %LEL) are not Gaussian near it: set ``min_spread``
to a change that is physically negligible (0.05 %LEL, the gauge's 0.5 cm).

Parameters: ``window`` (60 differences), ``min_samples`` (20 differences before the first verdict),
``z_floor`` (1.0), ``z_scale`` (8.5), ``min_spread`` (1e-6, metric unit), ``side`` ("both", "up",
"down"), ``max_width`` (1: single-sample glitches only; up to 3), ``context`` (6 readings).
Cost per reading: O(window log window) (one sorted insert and delete; for readings beyond both
neighbours, about half, sorts of the 60 and 20 newest steps' deviations and of the context, all in C;
~26 us measured, robust_zscore ~20 us); state is the last ``window`` differences and
``context + max_width + 1`` readings. Never reads the clock.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifeline.detectors.base import Detector, Params, Verdict, squash

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution * 1.4826 = its standard deviation
MEANAD_TO_SIGMA = 1.2533  # mean absolute deviation * 1.2533 = standard deviation (normal)
SQRT2 = math.sqrt(2.0)  # a step between two independent readings has sqrt(2) times their noise
SLOW_WINDOWS = 10  # the slow spread averages over this many windows
SLOW_FLOOR = 0.5  # the spread never drops below this share of the slow spread


@dataclass(frozen=True, slots=True)
class SpikeParams(Params):
    window: int = 60  # first differences in the rolling spread
    min_samples: int = 20  # warm-up: differences seen before the first verdict
    z_floor: float = 1.0  # a spike up to this many robust sigmas scores 0
    z_scale: float = 8.5  # how fast the score rises past the floor
    min_spread: float = 1e-6  # floor for the spread, in the metric's unit (set it to the sensor's resolution)
    side: str = "both"  # "both", "up" (only upward glitches) or "down"
    max_width: int = 1  # longest glitch, in samples, that still counts as a spike
    context: int = 6  # readings before the glitch (ending with its predecessor) that must be calm

    def check(self) -> list[tuple[str, str]]:
        out = []
        if self.window < 5:
            out.append(("window", f"must be at least 5 (got {self.window})"))
        if not 3 <= self.min_samples <= self.window:
            out.append(("min_samples", f"must be between 3 and window={self.window} (got {self.min_samples})"))
        if not self.z_floor >= 0:
            out.append(("z_floor", f"must not be negative (got {self.z_floor})"))
        if not self.z_scale > 0:
            out.append(("z_scale", f"must be positive (got {self.z_scale})"))
        if not self.min_spread > 0:
            out.append(("min_spread", f"must be positive (got {self.min_spread})"))
        if self.side not in ("both", "up", "down"):
            out.append(("side", f"must be 'both', 'up' or 'down' (got {self.side!r})"))
        if not 1 <= self.max_width <= 3:
            out.append(("max_width", f"must be 1, 2 or 3 samples (got {self.max_width})"))
        if not 3 <= self.context <= self.window:
            out.append(("context", f"must be between 3 and window={self.window} (got {self.context})"))
        return out


def _median(xs: list[float]) -> float:
    """The median of an already sorted list."""
    n, mid = len(xs), len(xs) // 2
    return xs[mid] if n % 2 else 0.5 * (xs[mid - 1] + xs[mid])


def _noise(diffs: list[float], resolution: float) -> float:
    """Noise of one reading from sorted first differences: 1.4826 MAD / sqrt 2, or the mean absolute
    deviation when over half of the steps are equal (a quantised or flat series)."""
    med = _median(diffs)
    i = bisect.bisect_left(diffs, med)
    # two ascending runs (below and above the median): Timsort merges them in linear time
    devs = sorted([med - x for x in reversed(diffs[:i])] + [x - med for x in diffs[i:]])
    sigma = MAD_TO_SIGMA * _median(devs) / SQRT2
    if sigma <= resolution:
        sigma = max(sigma, MEANAD_TO_SIGMA * sum(devs) / len(devs) / SQRT2)
    return sigma


class SpikeDetector(Detector):
    kind = "spike"
    params_type = SpikeParams
    health = True
    value_unit = "robust sigmas (spike size / spread of one-step changes)"

    params: SpikeParams

    def reset(self) -> None:
        self._recent: deque[float] = deque(maxlen=self.params.context + self.params.max_width + 1)
        self._fifo: deque[float] = deque()  # first differences, oldest first
        self._sorted: list[float] = []
        self._resolution = 0.0  # smallest non-zero |step| seen (0 = none yet)
        self._slow = 0.0  # slow average of the spread (0 = not started)

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        value = float(value)  # numpy scalars in, JSON-able state out
        recent = self._recent
        recent.append(value)
        lag = self.params.max_width + 2  # the newest step the spread may see ends at the widest block's predecessor
        if len(recent) > lag:
            self._learn_step(recent[-lag] - recent[-lag - 1])
        if len(self._fifo) < self.params.min_samples:
            return None
        size, context_spread = self._size()
        if size <= 0.0:  # not beyond both neighbours (about half of all readings): no spread needed
            return Verdict(0.0, 0.0)
        z = size / max(self._spread(), context_spread)
        return Verdict(squash(z - self.params.z_floor, self.params.z_scale), z)

    def _learn_step(self, d: float) -> None:
        if d != 0.0 and (self._resolution == 0.0 or abs(d) < self._resolution):
            self._resolution = abs(d)
        self._fifo.append(d)
        bisect.insort(self._sorted, d)
        if len(self._fifo) > self.params.window:
            del self._sorted[bisect.bisect_left(self._sorted, self._fifo.popleft())]

    def _size(self) -> tuple[float, float]:
        """(size, context spread) of the block ending one sample ago: how far it stands beyond both
        neighbours, less how far its predecessor has already moved from its own context (a fresh level
        change is not a calm background), and the robust spread of that context (0 = not a glitch)."""
        xs, p = list(self._recent), self.params
        best, best_spread = 0.0, 0.0
        for w in range(1, min(p.max_width, len(xs) - 2) + 1):
            pre, post, block = xs[-w - 2], xs[-1], xs[-w - 1:-1]
            size = 0.0
            if p.side != "down":
                size = min(block) - max(pre, post)
            if p.side != "up":
                size = max(size, min(pre, post) - max(block))
            if size <= best:
                continue
            ctx = sorted(xs[max(0, len(xs) - w - 2 - p.context + 1):len(xs) - w - 1])
            med = _median(ctx)
            size -= abs(pre - med)
            if size > best:
                best, best_spread = size, MAD_TO_SIGMA * _median(sorted(abs(x - med) for x in ctx))
        return best, best_spread

    def _spread(self) -> float:
        """Robust noise of one reading: from the whole window, or from its newest third when that is
        larger (a noisier regime, such as a leak's fluctuation, is adopted within minutes)."""
        sigma = _noise(self._sorted, self._resolution)
        fresh = len(self._fifo) // 3
        if fresh >= 5:
            sigma = max(sigma, _noise(sorted(itertools.islice(reversed(self._fifo), fresh)), self._resolution))
        self._slow = sigma if self._slow == 0.0 else self._slow + (sigma - self._slow) / (
            SLOW_WINDOWS * self.params.window)
        return max(sigma, self._resolution, SLOW_FLOOR * self._slow, self.params.min_spread)

    def snapshot(self) -> dict[str, Any]:
        return {"recent": list(self._recent), "diffs": list(self._fifo), "resolution": self._resolution,
                "slow": self._slow}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        self._recent.extend(float(x) for x in state["recent"])
        self._fifo.extend(float(x) for x in state["diffs"])
        self._sorted = sorted(self._fifo)
        self._resolution = float(state["resolution"])
        self._slow = float(state["slow"])
