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
Cost per reading: O(log window) for the sorted window (an insert and a delete, skipped when the step
in equals the step out); readings not beyond both neighbours (most) stop there. For the others, the
MADs of the window and of its newest third are read off the sorted steps by binary search (no sort;
the sorted absolute deviations are built only for the mean-deviation fallback) and kept while the
steps and the resolution stay the same. ~3 us per update on the demo city's streams (~7 us before;
0.5 us on a constant series); state is the last ``window`` differences and
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

from lifeline.detectors.base import Detector, Params, Verdict, check_side, sorted_median, squash

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
        out.extend(check_side(self.side))
        if not 1 <= self.max_width <= 3:
            out.append(("max_width", f"must be 1, 2 or 3 samples (got {self.max_width})"))
        if not 3 <= self.context <= self.window:
            out.append(("context", f"must be between 3 and window={self.window} (got {self.context})"))
        return out


_CALM = Verdict(0.0, 0.0)  # frozen: the verdict for a reading that is not beyond both neighbours


def _mad(xs: list[float], med: float, i: int) -> float:
    """Median of |x - med| over the sorted list ``xs`` whose first ``i`` items are < med, in O(log n).

    The deviations form two ascending runs, a_j = med - xs[i-1-j] and b_j = xs[i+j] - med; the median's
    order statistics are read off the split of the k smallest between the runs (binary search), so
    the result is the very float that sorting all the deviations would give."""
    n = len(xs)
    na, nb = i, n - i
    c = n // 2 if n % 2 == 0 else n // 2 + 1  # how many of the smallest deviations the split covers
    lo, hi = max(0, c - nb), min(na, c)
    while True:
        a = (lo + hi) // 2
        b = c - a
        if a < na and b > 0 and xs[i + b - 1] - med > med - xs[i - 1 - a]:
            lo = a + 1  # B[b-1] > A[a]: take more from the a run
        elif a > 0 and b < nb and med - xs[i - a] > xs[i + b] - med:
            hi = a - 1  # A[a-1] > B[b]: take fewer
        else:
            break
    if a == 0:
        last = xs[i + b - 1] - med
    elif b == 0:
        last = med - xs[i - a]
    else:
        last = max(med - xs[i - a], xs[i + b - 1] - med)
    if n % 2:
        return last
    if a == na:
        nxt = xs[i + b] - med
    elif b == nb:
        nxt = med - xs[i - 1 - a]
    else:
        nxt = min(med - xs[i - 1 - a], xs[i + b] - med)
    return 0.5 * (last + nxt)


def _noise(diffs: list[float], resolution: float) -> float:
    """Noise of one reading from sorted first differences: 1.4826 MAD / sqrt 2, or the mean absolute
    deviation when over half of the steps are equal (a quantised or flat series)."""
    med = sorted_median(diffs)
    i = bisect.bisect_left(diffs, med)
    sigma = MAD_TO_SIGMA * _mad(diffs, med, i) / SQRT2
    if sigma <= resolution:
        # two ascending runs (below and above the median): Timsort merges them in linear time; summed
        # in ascending order, as always
        devs = sorted([med - x for x in reversed(diffs[:i])] + [x - med for x in diffs[i:]])
        sigma = max(sigma, MEANAD_TO_SIGMA * sum(devs) / len(devs) / SQRT2)
    return sigma


class SpikeDetector(Detector):
    kind = "spike"
    params_type = SpikeParams
    health = True
    value_unit = "robust sigmas (spike size / spread of one-step changes)"

    params: SpikeParams

    def reset(self) -> None:
        p = self.params
        self._recent: deque[float] = deque(maxlen=p.context + p.max_width + 1)
        self._fifo: deque[float] = deque()  # first differences, oldest first
        self._sorted: list[float] = []
        self._resolution = 0.0  # smallest non-zero |step| seen (0 = none yet)
        self._slow = 0.0  # slow average of the spread (0 = not started)
        # derived, not state: a pure function of the above (rebuilt by restore)
        self._lag = p.max_width + 2  # the newest step the spread may see ends at the widest block's predecessor
        self._window, self._min_samples = p.window, p.min_samples
        self._n_fresh = p.window // 3  # newest steps in the "fresh" spread once the window is full
        self._up, self._down = p.side != "down", p.side != "up"
        self._sigma_all: float | None = None  # noise of the whole window, while neither it nor the resolution changed
        self._sigma_fresh: float | None = None  # the same for the newest third

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        value = float(value)  # numpy scalars in, JSON-able state out
        recent = self._recent
        recent.append(value)
        lag = self._lag
        fifo = self._fifo
        if len(recent) > lag:  # learn the step that ends at the widest block's predecessor
            d = recent[-lag] - recent[-lag - 1]
            if d != 0.0 and (self._resolution == 0.0 or abs(d) < self._resolution):
                self._resolution = abs(d)
                self._sigma_all = self._sigma_fresh = None
            fifo.append(d)
            if len(fifo) > self._window:
                if fifo[-self._n_fresh - 1] != d:  # the step leaving the newest third differs from the new one
                    self._sigma_fresh = None
                old = fifo.popleft()
                if old != d:  # an equal step in and out leaves the sorted window as it was
                    srt = self._sorted
                    bisect.insort(srt, d)
                    del srt[bisect.bisect_left(srt, old)]
                    self._sigma_all = None
            else:
                bisect.insort(self._sorted, d)
                self._sigma_all = self._sigma_fresh = None
        if len(fifo) < self._min_samples:
            return None
        if lag == 3:  # max_width 1: the block is the one reading between pre and post
            pre, block, post = recent[-3], recent[-2], recent[-1]
            if not ((self._up and block > pre and block > post) or (self._down and block < pre and block < post)):
                return _CALM  # not beyond both neighbours (most readings): nothing to judge
            size, context_spread = self._size1(pre, block, post)
        else:
            size, context_spread = self._size()
        if size <= 0.0:  # a fresh level change, not a glitch: no spread needed
            return _CALM
        z = size / max(self._spread(), context_spread)
        return Verdict(squash(z - self.params.z_floor, self.params.z_scale), z)

    def _size(self) -> tuple[float, float]:
        """(size, context spread) of the block ending one sample ago: how far it stands beyond both
        neighbours, less how far its predecessor has already moved from its own context (a fresh level
        change is not a calm background), and the robust spread of that context (0 = not a glitch)."""
        xs, p = list(self._recent), self.params
        best, best_spread = 0.0, 0.0
        for w in range(1, min(p.max_width, len(xs) - 2) + 1):
            pre, post, block = xs[-w - 2], xs[-1], xs[-w - 1:-1]
            size = 0.0
            if self._up:
                size = min(block) - max(pre, post)
            if self._down:
                size = max(size, min(pre, post) - max(block))
            if size <= best:
                continue
            ctx = xs[max(0, len(xs) - w - 2 - p.context + 1):len(xs) - w - 1]
            ctx.sort()
            med = sorted_median(ctx)
            size -= abs(pre - med)
            if size > best:
                devs = [abs(x - med) for x in ctx]
                devs.sort()
                best, best_spread = size, MAD_TO_SIGMA * sorted_median(devs)
        return best, best_spread

    def _size1(self, pre: float, block: float, post: float) -> tuple[float, float]:
        """``_size`` for max_width 1 (the default), without the loop over widths and the list copies."""
        size = 0.0
        if self._up:
            size = block - max(pre, post)
        if self._down:
            size = max(size, min(pre, post) - block)
        if size <= 0.0:
            return 0.0, 0.0
        ctx = list(self._recent)  # the readings before the block, ending with pre
        del ctx[-2:]
        ctx.sort()
        n, mid = len(ctx), len(ctx) // 2
        med = ctx[mid] if n % 2 else 0.5 * (ctx[mid - 1] + ctx[mid])
        size -= abs(pre - med)
        if size <= 0.0:
            return 0.0, 0.0
        devs = [abs(x - med) for x in ctx]
        devs.sort()
        return size, MAD_TO_SIGMA * (devs[mid] if n % 2 else 0.5 * (devs[mid - 1] + devs[mid]))

    def _spread(self) -> float:
        """Robust noise of one reading: from the whole window, or from its newest third when that is
        larger (a noisier regime, such as a leak's fluctuation, is adopted within minutes)."""
        sigma = self._sigma_all
        if sigma is None:
            sigma = self._sigma_all = _noise(self._sorted, self._resolution)
        fifo = self._fifo
        fresh = len(fifo) // 3
        if fresh >= 5:
            fs = self._sigma_fresh
            if fs is None:
                fs = _noise(sorted(itertools.islice(reversed(fifo), fresh)), self._resolution)
                if fresh == self._n_fresh and len(fifo) == self.params.window:
                    self._sigma_fresh = fs  # kept only while the newest third's steps stay the same
            sigma = max(sigma, fs)
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
