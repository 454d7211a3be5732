"""The console's in-memory recent readings: bounded per (sensor, metric), bad readings left out."""

from __future__ import annotations

import pytest

from lifeline.console.recent import RecentReadings
from lifeline.model import Reading


def test_bounded_per_series_and_filtered_by_time() -> None:
    r = RecentReadings(max_points=3)
    r.add([Reading("S1", "gas", "ch4_lel", float(t), float(t)) for t in range(10)])
    r.add([Reading("S1", "gas", "flow", 5.0, 1.0), Reading("S2", "gas", "ch4_lel", 1.0, 1.0),
           Reading("S1", "gas", "ch4_lel", 10.0, 99.0, quality="bad")])
    assert r.series("S1", 0.0) == {"ch4_lel": [(7.0, 7.0), (8.0, 8.0), (9.0, 9.0)], "flow": [(5.0, 1.0)]}
    assert r.series("S1", 8.5) == {"ch4_lel": [(9.0, 9.0)]}
    assert r.series("nobody", 0.0) == {}
    with pytest.raises(ValueError):
        RecentReadings(1)
