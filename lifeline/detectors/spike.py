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
Cost per reading: the new step goes into the window and the reading into the latest readings, both
``array``s of doubles (one block of memory each: in the engine nearly every update starts out of the
caches); readings not beyond both neighbours (most) stop there. For the others the context is sorted,
and when the block still stands out the window is sorted (cheaper than keeping it sorted on every
reading) and the MADs of the window and of its newest third are read off the sorted steps by a window
search that starts where the answer usually is (O(log n) probes; the deviations are sorted only for the
mean-deviation fallback). Per update, replaying what the demo city's spike detectors see in the engine's
order (demo 6h, process time, best of 3): 3.3 us (8.1 with the window kept sorted and deques). State is
the last ``window`` differences and ``context + max_width + 1`` readings. Never reads the clock.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from lifeline.detectors.base import Detector, Params, Verdict, check_side, sorted_median

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

    The c smallest deviations (c = half of n, rounded up) are those of c consecutive items
    xs[s:s + c], the window around the median whose ends are nearest to it; the median's order
    statistics are read off its ends: the very float that sorting all the deviations would give.
    The search starts where the window usually is (below the median, the same share of the window as
    of the list: the deviations are about symmetric; right or one off for about 2 in 3 windows of
    the demo city). The window must move down while the item just below it is nearer than its top,
    and up while the item just above it is nearer than its bottom: each test turns once, and having
    moved one way it never has to move back, so one test a step; two steps, then bisection."""
    n = len(xs)
    c = (n + 1) // 2
    c1 = c - 1
    lo = i - c if i > c else 0  # where the window may start: max(0, i - c) .. min(i, n - c)
    hi = i if i < n - c else n - c
    s = i - c * i // n  # in [lo, hi]: c*i/n <= i, <= c, and >= i - (n - c) since (n - c) >= (n - c)*i/n
    if s > lo and xs[s + c1] - med > med - xs[s - 1]:
        hi, probes = s - 1, 0  # move down: the highest start in [lo, hi] where it need not
        while lo < hi:
            m = hi if probes < 2 else (lo + hi + 1) // 2
            if xs[m + c1] - med > med - xs[m - 1]:
                hi = m - 1
            else:
                lo = m
            probes += 1
        s = lo
    elif s < hi and med - xs[s] > xs[s + c] - med:
        lo, probes = s + 1, 0  # move up: the lowest start in [lo, hi] where it need not
        while lo < hi:
            m = lo if probes < 2 else (lo + hi) // 2
            if med - xs[m] > xs[m + c] - med:
                lo = m + 1
            else:
                hi = m
            probes += 1
        s = lo
    # the c-th smallest deviation: the farther end (one end only when the window ends at the median);
    # max(a, b) and min(a, b) written out as b if b > a (b < a) else a: the same winner on ties
    if s == i:
        last = xs[s + c1] - med
    elif s + c == i:
        last = med - xs[s]
    else:
        last = med - xs[s]
        top = xs[s + c1] - med
        if top > last:
            last = top
    if n % 2:
        return last
    # and the (c+1)-th: the nearer of the items just outside the window
    if s == 0:
        nxt = xs[s + c] - med
    elif s + c == n:
        nxt = med - xs[s - 1]
    else:
        nxt = med - xs[s - 1]
        above = xs[s + c] - med
        if above < nxt:
            nxt = above
    return 0.5 * (last + nxt)


def _noise(diffs: list[float], resolution: float) -> float:
    """Noise of one reading from sorted first differences: 1.4826 MAD / sqrt 2, or the mean absolute
    deviation when over half of the steps are equal (a quantised or flat series)."""
    n = len(diffs)
    mid = n // 2
    med = diffs[mid] if n % 2 else 0.5 * (diffs[mid - 1] + diffs[mid])  # sorted_median, without the call
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

    __slots__ = ("_context", "_down", "_fifo", "_fifo_len", "_full", "_lag", "_max_width", "_min_samples",
                 "_min_spread", "_n_recent", "_recent", "_resolution", "_slow", "_slow_steps", "_sorted", "_up",
                 "_window", "_z_floor", "_z_scale")

    def reset(self) -> None:
        p = cast(SpikeParams, self.params)
        # the latest readings, oldest first: doubles in one block, as the window (the deque of float objects
        # it replaces cost a cache miss per reading read)
        self._recent = array("d")
        self._n_recent = p.context + p.max_width + 1
        # first differences, oldest first: doubles in one block, not float objects all over the heap (the
        # window is read only when a verdict needs the spread, and then all of it: one cache line per 8)
        self._fifo = array("d")
        self._fifo_len = p.window  # the longest the window gets (longer only after a restore, see there)
        # The sorted window is built only when a verdict needs the spread (about 1 reading in 7): keeping
        # it sorted on every reading cost more (an insert, a delete and their cache misses) than sorting
        # it then. While no step has been -0.0 the sorted steps are one list whatever the order they came
        # in, so sorting them gives the very list that inserting and deleting one at a time gave. From the
        # first -0.0 step on (the order of equal zeros could then differ) the window is kept sorted as
        # before: ``_sorted`` (None = sort when needed).
        self._sorted: list[float] | None = None
        self._resolution = 0.0  # smallest non-zero |step| seen (0 = none yet)
        self._slow = 0.0  # slow average of the spread (0 = not started)
        # derived, not state: a pure function of the above (rebuilt by restore). Params read on every
        # update are plain attributes: a frozen dataclass lookup costs as much as the arithmetic.
        self._lag = p.max_width + 2  # the newest step the spread may see ends at the widest block's predecessor
        self._window, self._min_samples = p.window, p.min_samples
        self._up, self._down = p.side != "down", p.side != "up"
        self._max_width, self._context = p.max_width, p.context
        self._z_floor, self._z_scale, self._min_spread = p.z_floor, p.z_scale, p.min_spread
        self._slow_steps = SLOW_WINDOWS * p.window  # an int, as the slow average always divided by
        self._full = False  # the window holds ``window`` steps and the readings more than ``lag``

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        value = float(value)  # numpy scalars in, JSON-able state out
        recent = self._recent
        recent.append(value)
        if len(recent) > self._n_recent:
            del recent[0]
        lag = self._lag
        fifo = self._fifo
        # self._full: the window is full (so are the readings): it spares two len() a reading
        if self._full or len(recent) > lag:  # learn the step that ends at the widest block's predecessor
            # inline, not a method: this runs on every reading
            d = recent[-lag] - recent[-lag - 1]
            if d != 0.0:
                if self._resolution == 0.0 or abs(d) < self._resolution:
                    self._resolution = abs(d)
            elif self._sorted is None and math.copysign(1.0, d) < 0.0:
                self._sorted = sorted(fifo)  # a -0.0 step: keep the window sorted from now on (see reset)
            fifo.append(d)
            srt = self._sorted
            if self._full:
                if srt is None:
                    del fifo[0]
                else:
                    old = fifo[0]
                    del fifo[0]
                    if old != d:  # an equal step in and out leaves the sorted window as it was
                        bisect.insort(srt, d)
                        del srt[bisect.bisect_left(srt, old)]
            else:
                if len(fifo) > self._fifo_len:
                    old = fifo[0]
                    del fifo[0]
                    if srt is not None and old != d:
                        bisect.insort(srt, d)
                        del srt[bisect.bisect_left(srt, old)]
                elif srt is not None:
                    bisect.insort(srt, d)
                self._full = len(fifo) == self._fifo_len
        if not self._full and len(fifo) < self._min_samples:  # (min_samples <= window)
            return None
        if lag == 3:  # max_width 1: the block is the one reading between pre and post (= value)
            pre, block = recent[-3], recent[-2]
            # _size for one width, inline (about half of all readings get here). Past these tests the
            # block stands out on one side only, so the other side's (negative) size never wins the max
            if self._up and block > pre and block > value:
                size = block - (value if value > pre else pre)  # block - max(pre, post): > 0
            elif self._down and block < pre and block < value:
                size = (value if value < pre else pre) - block  # min(pre, post) - block: > 0
            else:
                return _CALM  # not beyond both neighbours (most readings): nothing to judge
            ctx = list(recent)  # the readings before the block, ending with pre
            del ctx[-2:]
            ctx.sort()
            n, mid = len(ctx), len(ctx) // 2
            med = ctx[mid] if n % 2 else 0.5 * (ctx[mid - 1] + ctx[mid])
            size -= abs(pre - med)
            if size <= 0.0:  # a fresh level change, not a glitch: no spread needed
                return _CALM
            devs = [abs(x - med) for x in ctx]
            devs.sort()
            context_spread = MAD_TO_SIGMA * (devs[mid] if n % 2 else 0.5 * (devs[mid - 1] + devs[mid]))
        elif lag == 4 and len(recent) >= 4:  # max_width 2: blocks b1 (after b2) and b2, b1 (after p2)
            b1, b2, p2 = recent[-2], recent[-3], recent[-4]
            # _size's sizes before the context, inline: how far each block stands beyond both neighbours
            # (its min() and max() written out: the same element wins on ties)
            lo, hi = (b1 if b1 < b2 else b2), (b1 if b1 > b2 else b2)
            s1 = s2 = 0.0
            if self._up:
                s1 = b1 - (value if value > b2 else b2)
                s2 = lo - (value if value > p2 else p2)
            if self._down:
                x = (value if value < b2 else b2) - b1
                if x > s1:
                    s1 = x
                x = (value if value < p2 else p2) - hi
                if x > s2:
                    s2 = x
            if s1 <= 0.0 and s2 <= 0.0:
                return _CALM  # neither block beyond both neighbours (most readings): nothing to judge
            size, context_spread = self._size2(s1, s2, b2, p2)
            if size <= 0.0:
                return _CALM
        else:
            size, context_spread = self._size()
            if size <= 0.0:
                return _CALM
        spread = self._spread()
        z = size / (context_spread if context_spread > spread else spread)  # max(spread, context_spread)
        x = z - self._z_floor  # squash(z - z_floor, z_scale), without the call
        return Verdict(0.0 if x <= 0.0 else 1.0 - math.exp(-x / self._z_scale), z)

    def _size(self) -> tuple[float, float]:
        """(size, context spread) of the block ending one sample ago: how far it stands beyond both
        neighbours, less how far its predecessor has already moved from its own context (a fresh level
        change is not a calm background), and the robust spread of that context (0 = not a glitch)."""
        # First the width-1 branch's test for every width, before anything is copied or sorted: a block
        # that stands beyond neither neighbour on any side has size <= 0 at every width (most readings)
        recent, up, down = self._recent, self._up, self._down
        post = recent[-1]
        lo = hi = recent[-2]
        for w in range(1, min(self._max_width, len(recent) - 2) + 1):
            b = recent[-w - 1]
            if b < lo:
                lo = b
            elif b > hi:
                hi = b
            pre = recent[-w - 2]
            if (up and lo > pre and lo > post) or (down and hi < pre and hi < post):
                break
        else:
            return 0.0, 0.0
        xs, p = list(recent), cast(SpikeParams, self.params)
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

    def _size2(self, s1: float, s2: float, pre1: float, pre2: float) -> tuple[float, float]:
        """``_size`` for max_width 2 given the blocks' sizes before the context (``s1``: the one-reading
        block after ``pre1``, ``s2``: the two-reading block after ``pre2``): the same floats, without
        the generic loop's slices, min() and max()."""
        xs = list(self._recent)
        n_xs, c = len(xs), self._context
        best, best_spread = 0.0, 0.0
        if s1 > 0.0:
            ctx = xs[max(0, n_xs - 2 - c):n_xs - 2]  # the readings before the block, ending with pre1
            ctx.sort()
            n, mid = len(ctx), len(ctx) // 2
            med = ctx[mid] if n % 2 else 0.5 * (ctx[mid - 1] + ctx[mid])
            s1 -= abs(pre1 - med)
            if s1 > 0.0:
                devs = [abs(x - med) for x in ctx]
                devs.sort()
                best, best_spread = s1, MAD_TO_SIGMA * (devs[mid] if n % 2 else 0.5 * (devs[mid - 1] + devs[mid]))
        if s2 > best:
            ctx = xs[max(0, n_xs - 3 - c):n_xs - 3]  # ending with pre2
            ctx.sort()
            n, mid = len(ctx), len(ctx) // 2
            med = ctx[mid] if n % 2 else 0.5 * (ctx[mid - 1] + ctx[mid])
            s2 -= abs(pre2 - med)
            if s2 > best:
                devs = [abs(x - med) for x in ctx]
                devs.sort()
                best, best_spread = s2, MAD_TO_SIGMA * (devs[mid] if n % 2 else 0.5 * (devs[mid - 1] + devs[mid]))
        return best, best_spread

    def _spread(self) -> float:
        """Robust noise of one reading: from the whole window, or from its newest third when that is
        larger (a noisier regime, such as a leak's fluctuation, is adopted within minutes)."""
        fifo, resolution = self._fifo, self._resolution
        srt = self._sorted
        if srt is None:
            srt = fifo.tolist()
            srt.sort()
        sigma = _noise(srt, resolution)
        fresh = len(fifo) // 3
        if fresh >= 5:
            newest = fifo[-fresh:].tolist()
            newest.reverse()  # newest first, as always: the sort is stable, and -0.0 == 0.0
            newest.sort()
            fs = _noise(newest, resolution)
            if fs > sigma:  # max(sigma, fs)
                sigma = fs
        slow = self._slow
        slow = self._slow = sigma if slow == 0.0 else slow + (sigma - slow) / self._slow_steps
        # max(sigma, resolution, SLOW_FLOOR * slow, min_spread), written out: the first of equals wins
        spread = sigma
        x = resolution
        if x > spread:
            spread = x
        x = SLOW_FLOOR * slow
        if x > spread:
            spread = x
        x = self._min_spread
        if x > spread:
            spread = x
        return spread

    def snapshot(self) -> dict[str, Any]:
        return {"recent": list(self._recent), "diffs": list(self._fifo), "resolution": self._resolution,
                "slow": self._slow}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        self._recent.extend(float(x) for x in state["recent"])
        del self._recent[:-self._n_recent]  # the newest ones, as a deque of that length kept
        diffs = [float(x) for x in state["diffs"]]
        self._fifo.extend(diffs)
        # a longer window than ``window`` (the parameter changed since) stays as long, as it always did
        self._fifo_len = max(self._window, len(diffs))
        if any(d == 0.0 and math.copysign(1.0, d) < 0.0 for d in diffs):
            self._sorted = sorted(diffs)
        self._resolution = float(state["resolution"])
        self._slow = float(state["slow"])
        self._full = len(self._fifo) == self._fifo_len and len(self._recent) > self._lag
