"""Flatline: a stuck sensor whose reading has stopped changing (a sensor-health finding, never safety).

A fouled staff gauge, a frozen pressure transmitter or a gas head that lost its cell keeps sending the
same number (REFERENCE §3.3 "sensor fouling = a stuck constant", §7 data-quality rules). This
detector follows the current *flat run*: the readings since the last one that moved the band
(max - min) past ``tolerance``. It calls the run when all three hold:

* it has lasted ``min_duration_s`` of event time,
* it holds at least ``min_samples`` observations (a sensor that reports every 15 min is not stuck
  because two readings agree; a long gap between two equal readings is not a flat run either),
* a healthy sensor would rarely do it: with ``p`` the chance that one step stays inside the band,
  ``k`` steps in a row happen with chance ``p**k``, and that must be below ``max_chance``. ``p`` is
  learned from the sensor's own history (the share of steps that stayed flat, counted only on runs
  that were not called, so a stuck period never teaches that being stuck is normal), or derived from
  ``expected_change`` when that is set. A quantised sensor (0.1 cm gauge, 0/1 door contact) repeats
  itself often, so it needs a much longer run before it is called.

``value`` is how long the run has been flat, in seconds. ``score`` is r / (1 + r) where r is the
progress of the slowest of the three criteria (1 = just met): 0.5 exactly when the run is called,
rising towards 1 as it goes on (2x = 0.67, 4x = 0.8), so it never piles up at 1.0.

Legitimately constant values are excluded with ``ignore_values`` (readings within ``tolerance`` of
one of them) or ``ignore_below`` (readings strictly below it): a dry underpass reads 0 cm for days,
a telecom well 0 %LEL, a lift door ``door_closed = 1`` for hours. Such a reading ends the current run,
is not learned from, and gets score 0 (value 0) so that an open health alert can clear. Its cost is
that a sensor stuck *at* an ignored value is not seen by this detector.

Parameters: ``tolerance`` (1e-9, metric unit), ``min_duration_s`` (1800), ``min_samples`` (5),
``max_chance`` (1e-4), ``expected_change`` (0 = learn ``p``), ``learn_steps`` (500, memory of the
learned ``p`` in steps), ``ignore_values`` (none), ``ignore_below`` (none).
Cost per reading: O(1) (plus one comparison per ``ignore_values`` entry); a ``log`` when a run ends,
a ``pow`` too only when it held more than one reading. ~0.9 us per update on what the demo city's
detectors see in the engine (demo 6h; thread CPU time, best of 11, shared 2-core host; 3.3 us
before); state is eight numbers.
Never reads the clock: durations are event time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from lifeline.detectors.base import Detector, Params, Verdict

MEANAD_TO_SIGMA = 1.2533  # mean absolute deviation * 1.2533 = standard deviation (normal)
P_FLOOR = 1e-12  # keeps log(p) finite when ``expected_change`` says a repeat is all but impossible


@dataclass(frozen=True, slots=True)
class FlatlineParams(Params):
    tolerance: float = 1e-9  # a change up to this (metric unit) is "no change"; quantised: half the resolution
    min_duration_s: float = 1800.0  # event time a run must last before it is called
    min_samples: int = 5  # observations a run must hold before it is called
    max_chance: float = 1e-4  # call a run only if a healthy sensor would produce it less often than this
    expected_change: float = 0.0  # typical |step| of a healthy sensor (metric unit); 0 = learn from the data
    learn_steps: int = 500  # memory of the learned chance of a flat step, in steps
    ignore_values: tuple[float, ...] = ()  # legitimately constant values (a dry 0 cm, door_closed 1)
    ignore_below: float | None = None  # readings strictly below this are legitimately flat

    def __post_init__(self) -> None:
        raw: Any = self.ignore_values
        if isinstance(raw, list | tuple) and all(_is_number(v) for v in raw):
            object.__setattr__(self, "ignore_values", tuple(float(v) for v in raw))

    def check(self) -> list[tuple[str, str]]:
        out = []
        if not self.tolerance >= 0:
            out.append(("tolerance", f"must not be negative (got {self.tolerance})"))
        if not self.min_duration_s > 0:
            out.append(("min_duration_s", f"must be positive (got {self.min_duration_s})"))
        if self.min_samples < 2:
            out.append(("min_samples", f"must be at least 2 (got {self.min_samples})"))
        if not 0 < self.max_chance < 1:
            out.append(("max_chance", f"must be between 0 and 1, exclusive (got {self.max_chance})"))
        if not self.expected_change >= 0:
            out.append(("expected_change", f"must not be negative; 0 = learn (got {self.expected_change})"))
        if self.learn_steps < 10:
            out.append(("learn_steps", f"must be at least 10 (got {self.learn_steps})"))
        raw: Any = self.ignore_values
        if not isinstance(raw, tuple) or not all(_is_number(v) and math.isfinite(v) for v in raw):
            out.append(("ignore_values", f"expected a list of numbers like [0] (got {raw!r})"))
        below: Any = self.ignore_below
        if below is not None and not (_is_number(below) and math.isfinite(below)):
            out.append(("ignore_below", f"expected a number or null (got {below!r})"))
        return out


_ZERO = Verdict(0.0, 0.0)  # immutable, so shared: an ignored reading, or a run just begun


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


class FlatlineDetector(Detector):
    kind = "flatline"
    params_type = FlatlineParams
    health = True
    value_unit = "s flat"

    __slots__ = ("_all_w", "_decay", "_flat_w", "_given", "_hi", "_ignore_below", "_ignore_values", "_lo",
                 "_log_max_chance", "_min_duration_s", "_run_last", "_run_n", "_run_start", "_screen", "_seen",
                 "_steps_needed", "_surprise_step", "_tolerance")

    def reset(self) -> None:
        p = cast(FlatlineParams, self.params)
        # Params read on every update, copied into plain attributes: a frozen dataclass lookup per use
        # costs as much as the arithmetic it feeds. Derived, not state.
        self._tolerance = p.tolerance
        self._min_duration_s = p.min_duration_s
        self._steps_needed = p.min_samples - 1  # flat steps the sample criterion asks for
        self._given = p.expected_change > 0  # the chance of a flat step is given, not learned
        self._ignore_below = p.ignore_below
        self._ignore_values = p.ignore_values
        self._log_max_chance = math.log(p.max_chance)
        self._screen = p.ignore_below is not None or bool(p.ignore_values)
        self._decay = 1.0 - 1.0 / p.learn_steps
        self._seen = False  # any observation yet (the first one gets no verdict)
        self._run_n = 0  # observations in the current run (0 = no run: after an ignored value)
        self._run_start = 0.0
        self._run_last = 0.0  # event time of the run's latest observation
        self._lo = 0.0
        self._hi = 0.0
        self._flat_w = 0.0  # exponentially weighted count of steps that stayed flat ...
        self._all_w = 0.0  # ... and of all steps learned from
        self._surprise_step = self._surprise_per_step()

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        ts, value = float(ts), float(value)  # numpy scalars in, JSON-able state out
        first = not self._seen
        self._seen = True
        if self._screen and self._ignored(value):
            self._run_n = 0  # not learned from: the step into an ignored value says nothing about flatness
            return None if first else _ZERO
        run_n = self._run_n
        lo, hi = self._lo, self._hi
        if run_n and (hi if hi > value else value) - (lo if lo < value else value) <= self._tolerance:
            run_n = self._run_n = run_n + 1
            # min(lo, value) and max(hi, value), without the calls: the same element wins on ties
            if value < lo:
                self._lo = value
            if value > hi:
                self._hi = value
            self._run_last = ts
            return None if first else self._verdict(ts - self._run_start, run_n)
        if run_n == 1:
            self._learn_step()  # a noisy series: every step breaks a run of one reading
        elif run_n:
            self._learn_run()
        self._run_n, self._run_start, self._lo, self._hi = 1, ts, value, value
        self._run_last = ts
        if first:
            return None
        flat_s = ts - ts
        # a run of one reading, zero seconds long: every criterion's progress is 0, so the verdict is
        # the shared (0, 0) one (ts - ts is not 0 only for an infinite or NaN ts: computed as always)
        return _ZERO if flat_s == 0.0 else self._verdict(flat_s, 1)

    def _verdict(self, flat_s: float, n: int) -> Verdict:
        r = self._progress(flat_s, n)
        return Verdict(r / (1.0 + r), flat_s)

    def _ignored(self, x: float) -> bool:
        below = self._ignore_below
        if below is not None and x < below:
            return True
        tolerance = self._tolerance
        # a loop, not any(<generator>): called on every reading of a screened series, and the
        # generator costs more than the one or two comparisons it makes
        for v in self._ignore_values:  # noqa: SIM110
            if abs(x - v) <= tolerance:
                return True
        return False

    def _surprise_per_step(self) -> float:
        """-log(chance that one healthy step stays flat) / -log(max_chance): the share of the
        improbability criterion that one flat step fulfils. Changes only when a run is learned."""
        p = cast(FlatlineParams, self.params)
        if p.expected_change > 0:
            sigma = MEANAD_TO_SIGMA * p.expected_change  # steps ~ normal with this mean |step|
            chance = max(math.erf(p.tolerance / (sigma * math.sqrt(2.0))), P_FLOOR)
        else:
            chance = (self._flat_w + 1.0) / (self._all_w + 2.0)  # Laplace: 1/2 before any history
        return math.log(min(chance, 1.0 - 1e-12)) / self._log_max_chance

    def _progress(self, flat_s: float, n: int) -> float:
        """How far the run is towards being called: the slowest of the three criteria (1 = met)."""
        steps = n - 1
        # min() of the three, written out (min keeps the earlier item unless a later one is smaller:
        # so do these, NaN included)
        r = flat_s / self._min_duration_s
        x = steps / self._steps_needed
        if x < r:
            r = x
        x = steps * self._surprise_step
        if x < r:
            r = x
        return r

    def _learn_run(self) -> None:
        """Learn from the run that just broke (its flat steps, then the breaking one), unless it was called."""
        if self._progress(self._run_last - self._run_start, self._run_n) >= 1.0:
            return  # a called run is a fault: learning from it would blind the detector
        if self._given:
            return  # nothing to learn: the chance of a flat step is given
        d = self._decay
        keep = d ** (self._run_n - 1)
        # run_n - 1 flat steps (each w <- d*w + 1), then the breaking step (flat_w <- d*w, all_w <- d*w + 1)
        grown = (1.0 - keep) / (1.0 - d)
        self._flat_w = d * (self._flat_w * keep + grown)
        self._all_w = d * (self._all_w * keep + grown) + 1.0
        self._surprise_step = self._surprise_per_step()

    def _learn_step(self) -> None:
        """``_learn_run`` for a run of one reading, the same floats with less work: such a run has no flat
        step, so it is never called (progress <= 0), keep = d**0 = 1.0 and grown = 0.0 (x * 1.0 is x;
        the + 0.0 stays: it turns a -0.0 into 0.0 as before)."""
        if self._given:
            return
        d = self._decay
        flat_w = self._flat_w = d * (self._flat_w + 0.0)
        all_w = self._all_w = d * (self._all_w + 0.0) + 1.0
        chance = (flat_w + 1.0) / (all_w + 2.0)
        if chance > 1.0 - 1e-12:  # min(chance, 1 - 1e-12), as _surprise_per_step takes it
            chance = 1.0 - 1e-12
        self._surprise_step = math.log(chance) / self._log_max_chance

    def snapshot(self) -> dict[str, Any]:
        return {"seen": self._seen, "run_n": self._run_n, "run_start": self._run_start,
                "run_last": self._run_last, "lo": self._lo,
                "hi": self._hi, "flat_w": self._flat_w, "all_w": self._all_w}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        self._seen = bool(state["seen"])
        self._run_n = int(state["run_n"])
        self._run_start = float(state["run_start"])
        self._run_last = float(state["run_last"])
        self._lo, self._hi = float(state["lo"]), float(state["hi"])
        self._flat_w, self._all_w = float(state["flat_w"]), float(state["all_w"])
        self._surprise_step = self._surprise_per_step()
