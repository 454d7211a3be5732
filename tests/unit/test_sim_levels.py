"""Test helper: the default rule thresholds from the brief, applied to simulated rows (max level per
(rule, sensor), ignoring persistence). An oracle for simulator tests, not the engine."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lifeline.registry import Registry

LEVELS = ("none", "blue", "yellow", "orange", "red")


def _above(value: float, bounds: tuple[float, float, float, float]) -> int:
    return sum(value >= b for b in bounds)


def _below(value: float, bounds: tuple[float, float, float, float]) -> int:
    return sum(value < b for b in bounds)


Rows = Iterable[tuple[float, str, str, int, dict[str, Any]]]


def levels(rows: Rows, registry: Registry) -> dict[tuple[str, str], str]:
    """{(rule, sensor): max level name} for every rule that reached at least blue."""
    worst: dict[tuple[str, str], int] = {}

    def see(rule: str, sensor: str, level: int) -> None:
        if level > worst.get((rule, sensor), 0):
            worst[(rule, sensor)] = level

    for _ts, sid, domain, _seq, m in rows:
        labels = registry.numeric_labels(sid)
        if "ch4_lel" in m:
            see("gas.methane.high", sid, _above(m["ch4_lel"], (5, 10, 20, 50)))
        if domain == "gas" and "pressure_mpa" in m:
            dev = abs(m["pressure_mpa"] / labels["p_set_mpa"] - 1)
            see("gas.pressure.deviation", sid, _above(dev, (0.10, 0.15, 0.20, 0.30)))
        if domain == "water" and "pressure_mpa" in m:
            see("water.pressure.low", sid, _below(m["pressure_mpa"], (0.20, 0.16, 0.14, 0.10)))
        if "depth_cm" in m:
            see("drainage.ponding.depth", sid, _above(m["depth_cm"], (5, 15, 25, 30)))
        if "fill_ratio" in m:
            see("drainage.sewer.fill", sid, _above(m["fill_ratio"], (0.8, 0.9, 1.0, 99)))
        if "freq1_hz" in m:
            expected = labels["f1_ref_hz"] * (1 - 0.002 * (m["temp_c"] - 20))
            see("bridge.frequency.drop", sid, _above(1 - m["freq1_hz"] / expected, (0.03, 0.05, 0.10, 0.15)))
        if "speed_ratio" in m:
            see("elevator.overspeed", sid, 4 * (m["speed_ratio"] >= 1.15))
            trapped = m["passenger"] == 1 and m["moving"] == 0 and m["door_closed"] == 1
            see("elevator.trapped.candidate", sid, 1 * trapped)
        if "density_ppm2" in m:
            see("crowd.density.high", sid, _above(m["density_ppm2"], (1, 2, 4, 5)))
            see("crowd.occupancy.high", sid, _above(m["occupancy_pct"], (50, 60, 80, 100)))
    return {k: LEVELS[v] for k, v in worst.items() if v > 0}


def trapped_runs(rows: Rows) -> dict[str, float]:
    """Longest run (s) per elevator of passenger=1, moving=0, door_closed=1 (consecutive samples)."""
    start: dict[str, float] = {}
    longest: dict[str, float] = {}
    for ts, sid, _domain, _seq, m in rows:
        if "passenger" not in m:
            continue
        if m["passenger"] == 1 and m["moving"] == 0 and m["door_closed"] == 1:
            start.setdefault(sid, ts)
            longest[sid] = max(longest.get(sid, 0.0), ts - start[sid])
        else:
            start.pop(sid, None)
    return longest
