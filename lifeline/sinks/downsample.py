"""Downsampling of the readings written to the time-series store, per domain or per domain and metric.

A dashboard of 85,000 sensors rarely needs every 10-second crowd count; the alert store and the engine
still see every reading. ``crowd=1m`` keeps, per sensor and metric, the first reading of each aligned
minute (windows start at multiples of the interval in epoch time, so every worker and every restart cuts
them alike); ``elevator.speed_ms=30s`` sets one metric; ``*=5m`` everything not named. The most specific
key wins; ``0`` keeps every reading. A restart may write one extra point in the window it was in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from lifeline.errors import ConfigError
from lifeline.model import Reading
from lifeline.timefmt import parse_duration


def parse_downsample(items: Sequence[str]) -> dict[str, float]:
    """``KEY=INTERVAL`` flags (KEY: ``*``, a domain, or ``domain.metric``) as a mapping; ConfigError names every
    bad one."""
    out: dict[str, float] = {}
    problems = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            problems.append(f"{item!r}: expected KEY=INTERVAL (crowd=1m, elevator.speed_ms=30s, *=5m)")
            continue
        try:
            seconds = parse_duration(value) if value.strip() != "0" else 0.0
        except ValueError as exc:
            problems.append(f"{item!r}: {exc}")
            continue
        if key in out:
            problems.append(f"{item!r}: {key!r} is given twice")
        out[key] = seconds
    if problems:
        raise ConfigError("--influxdb-downsample: " + "; ".join(problems))
    return out


class Downsampler:
    """Keeps the readings to write; state: the last window written per (sensor, metric)."""

    def __init__(self, intervals: Mapping[str, float]) -> None:
        self.intervals = dict(intervals)
        self._interval: dict[tuple[str, str], float] = {}
        self._last: dict[tuple[str, str], int] = {}
        self.kept = self.dropped = 0

    def interval(self, domain: str, metric: str) -> float:
        key = (domain, metric)
        iv = self._interval.get(key)
        if iv is None:
            iv = self.intervals.get(f"{domain}.{metric}", self.intervals.get(domain, self.intervals.get("*", 0.0)))
            self._interval[key] = iv
        return iv

    def keep(self, readings: Iterable[Reading]) -> list[Reading]:
        out = []
        for r in readings:
            iv = self.interval(r.domain, r.metric)
            if iv > 0:
                window = int(r.ts // iv)
                k = (r.sensor, r.metric)
                if self._last.get(k) == window:
                    self.dropped += 1
                    continue
                self._last[k] = window
            out.append(r)
        self.kept += len(out)
        return out
