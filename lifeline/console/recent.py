"""The last hours of readings per sensor, in memory, for the console's alert detail chart.

The runner feeds every committed reading in (``add``); the console reads one sensor's series
(``series``). Bounded: at most ``max_points`` values per (sensor, metric), older ones dropped, so memory is
sensors × metrics × max_points floats whatever the uptime (345 sensors × ~2 metrics × 1,440 points: a few
MB). A console started without a runner (or after a restart) shows what arrived since; the time-series store
holds the long history.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from lifeline.model import Reading


class RecentReadings:
    def __init__(self, max_points: int = 1440) -> None:
        if max_points < 2:
            raise ValueError(f"max_points must be at least 2 (got {max_points})")
        self.max_points = max_points
        self._series: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def add(self, readings: Iterable[Reading]) -> None:
        with self._lock:
            for r in readings:
                if r.quality == "bad":
                    continue
                q = self._series.get((r.sensor, r.metric))
                if q is None:
                    q = self._series[(r.sensor, r.metric)] = deque(maxlen=self.max_points)
                q.append((r.ts, r.value))

    def series(self, sensor: str, since: float) -> dict[str, list[tuple[float, float]]]:
        """metric -> [(ts, value)] of ``sensor`` from ``since`` on, in time order."""
        with self._lock:
            out = {metric: [p for p in q if p[0] >= since] for (s, metric), q in self._series.items() if s == sensor}
        return {m: sorted(points) for m, points in out.items() if points}
