"""Seasonal baseline: how far is this value from what this time of day usually brings, in sigmas?

For series driven by a daily rhythm (DMA inflow, minimum night flow, crowd counts) a fixed
threshold either misses the night or fires every morning: the baseline must be "the same hour on
previous days" (water: flow above the same-hour baseline by >2 sigma = blue, >3 sigma = yellow,
REFERENCE §2.1 [W10][W11] ⚠INF; MNF is taken 02:00-04:00 [W4][W5]).

The local day (a fixed ``utc_offset_h``, no tz database) is cut into ``bins`` slots, optionally
per weekday (``weekly``). Each slot keeps an exponentially weighted level and spread over the days
it was seen: readings are gathered while the slot is open and folded in once when it closes, so
the baseline a reading is judged against comes from earlier days only. While learning, a reading
of a known slot is clipped to level ± ``cap_z`` spreads, so an incident (a burst, a leak) moves
the baseline by at most a bounded amount per day instead of poisoning it; a lasting change is
still absorbed, slowly. A slot gives verdicts once it has ``min_days`` days of level and a spread
(sampled once per slot per day, that takes one more day: the spread comes from day-to-day error).

``value`` is the signed deviation (x - level) / spread; ``score`` grows with it beyond
``z_floor`` (1 - exp(-(|z| - z_floor) / z_scale)), on the ``side`` asked for. With ``window``
('02:00-04:00', local) it learns all day but judges only inside the window.
Cost per reading: O(1) (one slot lookup, a Welford step; a fold when the slot changes).
Memory: 4 floats per slot, ``bins`` slots (x 7 when weekly).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifeline.detectors.base import Detector, Params, Verdict, check_side, squash

DAY_S = 86400.0
MEANAD_TO_SIGMA = 1.2533  # mean absolute deviation * 1.2533 = standard deviation (normal)
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def parse_window(text: str) -> tuple[float, float] | None:
    """'02:00-04:00' -> (7200.0, 14400.0) seconds of the local day; '' -> None (all day)."""
    if not text.strip():
        return None
    parts = text.split("-")
    if len(parts) != 2:
        raise ValueError(text)
    out = []
    for part in parts:
        hh, sep, mm = part.strip().partition(":")
        if not sep or not (hh.isdigit() and mm.isdigit() and len(mm) == 2):
            raise ValueError(text)
        h, m = int(hh), int(mm)
        if h > 24 or m > 59 or (h == 24 and m):
            raise ValueError(text)
        out.append(h * 3600.0 + m * 60.0)
    if out[0] == out[1]:
        raise ValueError(text)
    return out[0], out[1]


@dataclass(frozen=True, slots=True)
class SeasonalParams(Params):
    bins: int = 96  # slots per local day (96 = 15 min)
    weekly: bool = False  # a separate profile per weekday (bins x 7 slots)
    utc_offset_h: float = 8.0  # local time = UTC + this (China: 8); no DST
    min_days: int = 1  # warm-up: days of history a slot needs before it judges
    memory_s: float = 7 * DAY_S  # the EW baseline averages over about this much history ('7d')
    cap_z: float = 3.0  # learning clips readings to level +- cap_z spreads
    z_floor: float = 2.0  # |z| up to this scores 0 (blue at 2 sigma, [W10][W11] ⚠INF)
    z_scale: float = 3.0  # how fast the score rises past the floor
    min_spread: float = 1e-6  # floor for the spread, in the metric's unit
    side: str = "both"  # "both", "up" (only rises) or "down"
    window: str = ""  # judge only inside this local window, e.g. '02:00-04:00' ('' = all day)

    def check(self) -> list[tuple[str, str]]:
        out = []
        if not 1 <= self.bins <= 1440:
            out.append(("bins", f"must be between 1 and 1440 (got {self.bins})"))
        if not -12.0 <= self.utc_offset_h <= 14.0:
            out.append(("utc_offset_h", f"must be between -12 and 14 (got {self.utc_offset_h})"))
        if self.min_days < 1:
            out.append(("min_days", f"must be at least 1 (got {self.min_days})"))
        period = DAY_S * (7 if self.weekly else 1)
        if not self.memory_s >= period:
            out.append(("memory_s", f"must be at least one period ({period:g} s) (got {self.memory_s:g})"))
        for name in ("cap_z", "z_scale", "min_spread"):
            if not getattr(self, name) > 0:
                out.append((name, f"must be positive (got {getattr(self, name)})"))
        if self.z_floor < 0:
            out.append(("z_floor", f"must not be negative (got {self.z_floor})"))
        out.extend(check_side(self.side))
        try:
            parse_window(self.window)
        except ValueError:
            out.append(("window", f"expected local 'HH:MM-HH:MM' like '02:00-04:00' (got {self.window!r})"))
        return out


@dataclass(slots=True)
class _Slot:
    level: float = 0.0
    spread: float = 0.0
    days: int = 0  # days folded into level
    sdays: int = 0  # days folded into spread


class SeasonalDetector(Detector):
    kind = "seasonal"
    params_type = SeasonalParams
    value_unit = "sigmas from the time-of-day baseline"

    params: SeasonalParams

    def reset(self) -> None:
        self._slots: dict[int, _Slot] = {}
        # the open (day, slot) and its readings so far: count, Welford mean and M2, sum |x - level|
        self._open: tuple[int, int] | None = None
        self._n, self._mean, self._m2, self._absdev = 0, 0.0, 0.0, 0.0
        self._window = parse_window(self.params.window)

    def _locate(self, ts: float) -> tuple[int, int, float]:
        """(local day number, slot index, seconds into the local day) of ``ts``."""
        local = ts + self.params.utc_offset_h * 3600.0
        day = math.floor(local / DAY_S)
        sod = local - day * DAY_S
        slot = min(int(sod * self.params.bins / DAY_S), self.params.bins - 1)
        if self.params.weekly:
            slot += ((day + EPOCH_WEEKDAY) % 7) * self.params.bins
        return day, slot, sod

    def _in_window(self, sod: float) -> bool:
        if self._window is None:
            return True
        start, end = self._window
        return start <= sod < end if start < end else (sod >= start or sod < end)

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        value = float(value)  # numpy scalars would leak into the JSON snapshot
        day, index, sod = self._locate(float(ts))
        if self._open != (day, index):
            self._fold()
            self._open = (day, index)
        slot = self._slots.get(index)
        verdict = None
        if slot is not None and slot.days >= self.params.min_days and slot.sdays and self._in_window(sod):
            verdict = self._judge(value, slot, index)
        self._gather(value, slot)
        return verdict

    def _sigma(self, index: int) -> float:
        """The spread at ``index``, pooled with its two neighbours (same weekday, wrapping at midnight).

        A slot sees few readings a day; the spread changes slowly with the hour, so pooling three
        slots triples the evidence behind the one number every z is divided by."""
        bins = self.params.bins
        base = index - index % bins
        total, count = 0.0, 0
        for k in dict.fromkeys((index, base + (index - 1) % bins, base + (index + 1) % bins)):
            s = self._slots.get(k)
            if s is not None and s.sdays:
                total, count = total + s.spread, count + 1
        return max(total / count, self.params.min_spread)

    def _judge(self, x: float, slot: _Slot, index: int) -> Verdict:
        p = self.params
        z = (x - slot.level) / self._sigma(index)
        dev = abs(z) if p.side == "both" else max(z if p.side == "up" else -z, 0.0)
        return Verdict(squash(dev - p.z_floor, p.z_scale), z)

    def _gather(self, x: float, slot: _Slot | None) -> None:
        if slot is not None and slot.sdays:
            cap = self.params.cap_z * max(slot.spread, self.params.min_spread)
            x = min(max(x, slot.level - cap), slot.level + cap)
        if slot is not None and slot.days:
            self._absdev += abs(x - slot.level)
        self._n += 1
        delta = x - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (x - self._mean)

    def _fold(self) -> None:
        """Fold the open slot's readings of one day into its baseline."""
        if self._open is None or self._n == 0:
            return
        slot = self._slots.setdefault(self._open[1], _Slot())
        floor = DAY_S * (7 if self.params.weekly else 1) / self.params.memory_s
        if slot.days == 0:
            slot.level = self._mean
            if self._n >= 2:  # first day: only the spread within the slot is known
                slot.spread, slot.sdays = math.sqrt(self._m2 / (self._n - 1)), 1
        else:
            err = MEANAD_TO_SIGMA * self._absdev / self._n  # error of yesterday's baseline on today
            slot.level += max(1.0 / (slot.days + 1), floor) * (self._mean - slot.level)
            rate = max(1.0 / (slot.sdays + 1), floor) if slot.sdays else 1.0  # no spread yet: take err
            slot.spread += rate * (err - slot.spread)
            slot.sdays += 1
        slot.days += 1
        self._n, self._mean, self._m2, self._absdev = 0, 0.0, 0.0, 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "slots": [[i, s.level, s.spread, s.days, s.sdays] for i, s in sorted(self._slots.items())],
            "open": list(self._open) if self._open is not None else None,
            "acc": [self._n, self._mean, self._m2, self._absdev],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        for i, level, spread, days, sdays in state["slots"]:
            self._slots[int(i)] = _Slot(float(level), float(spread), int(days), int(sdays))
        self._open = (int(state["open"][0]), int(state["open"][1])) if state["open"] is not None else None
        n, mean, m2, absdev = state["acc"]
        self._n, self._mean, self._m2, self._absdev = int(n), float(mean), float(m2), float(absdev)
