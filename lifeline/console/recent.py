"""The last hours of readings per sensor, in memory, for the console's alert detail chart.

The runner feeds every committed reading in (``add``); the console reads one sensor's series
(``series``). Time-bucketed so the window is hours whatever a sensor's rate: each ``bucket_s`` bucket keeps
its lowest and its highest reading (a chart of a threshold crossing keeps the peak), and a series keeps at
most ``max_points`` points, older ones dropped. Memory is sensors × metrics × max_points points whatever the
uptime, 16 bytes a point: the demo city (345 sensors, ~2 metrics, 1,440 points) takes about 16 MB; a full
city's console should chart from the time-series store instead (docs/console.md).

On start the runner fills it from the journal's tail (``backfill``), so a restart keeps the chart's last
hours: the journal holds exactly the readings the engine committed.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from lifeline.model import Reading

Point = tuple[float, float]


class _Ring:
    """At most ``cap`` points in two arrays of doubles (16 bytes a point; a deque of tuples takes ~110)."""

    __slots__ = ("cap", "head", "ts", "vs")

    def __init__(self, cap: int) -> None:
        self.cap, self.head = cap, 0  # head: where the oldest point is, once full
        self.ts, self.vs = array("d"), array("d")

    def __len__(self) -> int:
        return len(self.ts)

    def append(self, ts: float, value: float) -> None:
        if len(self.ts) < self.cap:
            self.ts.append(ts)
            self.vs.append(value)
        else:
            self.ts[self.head], self.vs[self.head] = ts, value
            self.head = (self.head + 1) % self.cap

    def points(self) -> list[Point]:
        h = self.head
        return list(zip(self.ts[h:] + self.ts[:h], self.vs[h:] + self.vs[:h], strict=True))

    def prepend(self, older: list[Point]) -> None:
        """``older`` before these, as many as there is room for (the newest of them); the rest dropped."""
        room = self.cap - len(self.ts)
        if room <= 0 or not older:
            return
        merged = older[-room:] + self.points()
        self.ts, self.vs, self.head = array("d", (p[0] for p in merged)), array("d", (p[1] for p in merged)), 0


@dataclass(slots=True)
class _Series:
    ring: _Ring
    bucket: float = float("-inf")  # the open bucket's index ...
    low: Point | None = None  # ... and its lowest and highest readings, not yet in ``ring``
    high: Point | None = None

    def add(self, ts: float, value: float, bucket_s: float) -> None:
        b = ts // bucket_s
        if b == self.bucket:
            assert self.low is not None and self.high is not None
            if value < self.low[1]:
                self.low = (ts, value)
            if value > self.high[1]:
                self.high = (ts, value)
            return
        if b < self.bucket:  # a late reading for a closed bucket: kept as it is
            self.ring.append(ts, value)
            return
        self._close()
        self.bucket, self.low, self.high = b, (ts, value), (ts, value)

    def _close(self) -> None:
        if self.low is None or self.high is None:
            return
        for p in (self.low,) if self.low == self.high else sorted((self.low, self.high)):
            self.ring.append(*p)

    def first_ts(self) -> float:
        if len(self.ring):
            return self.ring.ts[self.ring.head]
        return self.low[0] if self.low is not None else float("inf")

    def since(self, t0: float) -> list[Point]:
        out = [p for p in self.ring.points() if p[0] >= t0]
        if self.low is not None and self.high is not None:
            out.extend(p for p in {self.low, self.high} if p[0] >= t0)
        return sorted(set(out))


class RecentReadings:
    def __init__(self, max_points: int = 1440, bucket_s: float = 30.0) -> None:
        if max_points < 2:
            raise ValueError(f"max_points must be at least 2 (got {max_points})")
        if bucket_s <= 0:
            raise ValueError(f"bucket_s must be positive (got {bucket_s})")
        self.max_points = max_points
        self.bucket_s = bucket_s
        self._series: dict[tuple[str, str], _Series] = {}
        self._lock = threading.Lock()

    @property
    def window_s(self) -> float:
        """How far back a steady series reaches at least (two points per bucket)."""
        return self.max_points / 2 * self.bucket_s

    def add(self, readings: Iterable[Reading]) -> None:
        with self._lock:
            for r in readings:
                if r.quality == "bad":
                    continue
                s = self._series.get((r.sensor, r.metric))
                if s is None:
                    s = self._series[(r.sensor, r.metric)] = _Series(_Ring(self.max_points))
                s.add(r.ts, r.value, self.bucket_s)

    def series(self, sensor: str, since: float) -> dict[str, list[Point]]:
        """metric -> [(ts, value)] of ``sensor`` from ``since`` on, in time order."""
        with self._lock:
            out = {metric: s.since(since) for (name, metric), s in self._series.items() if name == sensor}
        return {m: points for m, points in out.items() if points}

    def backfill(self, journal: str | Path, *, end: int, max_bytes: int = 256 << 20, chunk: int = 8 << 20) -> int:
        """Add the journal's readings of the last ``window_s`` before byte ``end`` (its committed length),
        reading at most ``max_bytes`` back; returns how many. Safe while live readings arrive: the journal's
        points go in before the live ones (``merge_older``)."""
        path = Path(journal)
        if end <= 0 or not path.exists():
            return 0
        start, data = end, b""
        with open(path, "rb") as f:
            while start > 0 and end - start < max_bytes:
                start = max(0, start - chunk, end - max_bytes)
                f.seek(start)
                data = f.read(end - start)
                first = _first_ts(data if start == 0 else data[data.find(b"\n") + 1:])
                last = _first_ts(data[data.rfind(b"\n", 0, len(data) - 1) + 1:])
                if first is not None and last is not None and last - first >= self.window_s:
                    break
        if start > 0:  # a cut line: start at the next whole one
            cut = data.find(b"\n")
            data = data[cut + 1:] if cut >= 0 else b""
        older = RecentReadings(self.max_points, self.bucket_s)
        n = 0
        for sensor, domain, ts, metrics in _journal_lines(data):
            older.add(Reading(sensor, domain, metric, ts, value) for metric, value in metrics.items())
            n += len(metrics)
        self.merge_older(older)
        return n

    def merge_older(self, older: RecentReadings) -> None:
        """Put ``older``'s points before this one's, series by series (the bound still holds)."""
        with older._lock:
            theirs = {k: s.since(float("-inf")) for k, s in older._series.items()}
        with self._lock:
            for key, points in theirs.items():
                mine = self._series.get(key)
                if mine is None:
                    mine = self._series[key] = _Series(_Ring(self.max_points))
                    # the newest journal bucket stays open: a live reading in it updates its low and high
                    for ts, value in points:
                        mine.add(ts, value, self.bucket_s)
                    continue
                first = mine.first_ts()
                mine.ring.prepend([p for p in points if p[0] < first])


def _first_ts(line: bytes) -> float | None:
    """The ``ts`` of the first whole journal line in ``line`` (ticks count too); None when there is none."""
    end = line.find(b"\n")
    try:
        obj = orjson.loads(line if end < 0 else line[:end])
    except orjson.JSONDecodeError:
        return None
    ts = obj.get("ts", obj.get("tick")) if isinstance(obj, dict) else None
    return float(ts) if isinstance(ts, int | float) else None


def _journal_lines(data: bytes) -> Iterator[tuple[str, str, float, dict[str, float]]]:
    """(sensor, domain, ts, metrics) of each reading line. The journal holds only input the engine already
    accepted, in its own writer's shape (lifeline/sources/replay.py), so this reads it directly instead of
    through the codec (about 7x faster); a line of another shape is skipped, ``bad`` readings too."""
    for line in data.splitlines():
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or obj.get("quality") == "bad":
            continue
        sensor, domain, ts, metrics = obj.get("sensor"), obj.get("domain"), obj.get("ts"), obj.get("metrics")
        if isinstance(sensor, str) and isinstance(domain, str) and isinstance(ts, int | float) \
                and isinstance(metrics, dict):
            yield sensor, domain, float(ts), {m: float(v) for m, v in metrics.items() if isinstance(v, int | float)}
