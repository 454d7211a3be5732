"""Silences and maintenance windows: who, why, until when; by matchers, by map polygon, by time.

A **silence** is made by a person for one stretch of time (``starts`` .. ``ends``): "roadworks on
Changjiang Road, gas readings there are not incidents until Friday 18:00, by li.wei". It lives in the
alert store (``AlertStore.silence_add`` / ``silence_expire``, audited) and is made with
``lifeline silence add``.

A **maintenance window** recurs: "every Tuesday 02:00–04:00 Asia/Shanghai, elevators of building B12".
It lives in the routing file (reviewed like any other configuration) under ``maintenance:``.

Both select alerts by the routing tree's matchers (``Match``) and, for construction works, optionally by
a polygon on the map (the sensor's registered position must lie inside). An alert transition under one
is still stored; its notifications are recorded in the outbox as ``silenced`` with the window's id, who
made it and why, and never sent. Times are the alert event's own time, so a backtest and a restarted
engine decide exactly as the live one did.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from lifeline.alerting.matchers import Match
from lifeline.model import AlertEvent
from lifeline.registry.core import Ring, in_ring
from lifeline.timefmt import rfc3339

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Weekly:
    """A weekly recurrence: on ``days`` (0 = Monday) from ``start_s`` after local midnight, for ``duration_s``."""

    days: frozenset[int]
    start_s: float
    duration_s: float
    tz: str = "Asia/Shanghai"

    def active(self, ts: float) -> bool:
        zone = ZoneInfo(self.tz)
        local = dt.datetime.fromtimestamp(ts, zone)
        span = int(self.duration_s // 86_400) + 1  # a window may run past midnight, or last days
        for back in range(span + 1):
            day = (local - dt.timedelta(days=back)).date()
            if day.weekday() not in self.days:
                continue
            midnight = dt.datetime.combine(day, dt.time(), zone)
            start = midnight.timestamp() + self.start_s
            if start <= ts < start + self.duration_s:
                return True
        return False

    def describe(self) -> str:
        days = ",".join(DAYS[d] for d in sorted(self.days))
        h, m = divmod(int(self.start_s) // 60, 60)
        return f"every {days} {h:02d}:{m:02d} {self.tz} for {self.duration_s / 3600:g} h"


@dataclass(frozen=True, slots=True)
class Window:
    """A silence (``starts`` .. ``ends``) or a maintenance window (``weekly``, within ``starts`` .. ``ends``)."""

    id: str
    match: Match
    created_by: str
    reason: str
    starts: float = float("-inf")
    ends: float = float("inf")
    polygon: Ring | None = None
    weekly: Weekly | None = None
    created_at: float = 0.0
    kind: str = "silence"  # silence | maintenance
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def active(self, ts: float) -> bool:
        if not self.starts <= ts < self.ends:
            return False
        return self.weekly is None or self.weekly.active(ts)

    def covers(self, e: AlertEvent, labels: Mapping[str, str], position: tuple[float, float] | None) -> bool:
        """Does it silence ``e`` (at the event's own time)?"""
        if not self.active(e.ts) or not self.match(e, labels):
            return False
        if self.polygon is not None:
            return position is not None and in_ring(self.polygon, *position)
        return True

    def describe(self) -> str:
        """For the outbox and the console: which window, by whom, why, until when."""
        if self.weekly is not None:
            when = self.weekly.describe()
        else:
            when = f"until {rfc3339(self.ends)}" if self.ends != float("inf") else "with no end"
        return f"{self.kind} {self.id} by {self.created_by} ({when}): {self.reason}"


def first_covering(windows: Sequence[Window], e: AlertEvent, labels: Mapping[str, str],
                   position: tuple[float, float] | None) -> Window | None:
    for w in windows:
        if w.covers(e, labels, position):
            return w
    return None
