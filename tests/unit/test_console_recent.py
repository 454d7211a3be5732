"""The console's in-memory recent readings: time buckets keep each bucket's low and high, bounded per
(sensor, metric), bad readings left out, and filled from the journal's tail after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeline.console.recent import RecentReadings
from lifeline.model import Reading
from lifeline.sources.replay import reading_lines, tick_line


def gas(t: float, v: float, metric: str = "ch4_lel", sensor: str = "S1", quality: str = "good") -> Reading:
    return Reading(sensor, "gas", metric, t, v, quality=quality)


def test_one_point_per_reading_when_slower_than_a_bucket_bounded_per_series() -> None:
    r = RecentReadings(max_points=3, bucket_s=1.0)
    r.add([gas(float(t), float(t)) for t in range(10)])
    r.add([gas(5.0, 1.0, "flow"), gas(1.0, 1.0, sensor="S2"), gas(10.0, 99.0, quality="bad")])
    # 0..8 are closed buckets (the deque keeps the last 3), 9 is the open bucket
    assert r.series("S1", 0.0) == {"ch4_lel": [(6.0, 6.0), (7.0, 7.0), (8.0, 8.0), (9.0, 9.0)],
                                   "flow": [(5.0, 1.0)]}
    assert r.series("S1", 8.5) == {"ch4_lel": [(9.0, 9.0)]}
    assert r.series("nobody", 0.0) == {}
    with pytest.raises(ValueError):
        RecentReadings(1)
    with pytest.raises(ValueError):
        RecentReadings(bucket_s=0)


def test_a_fast_series_keeps_each_buckets_low_and_high_so_hours_fit_and_the_peak_stays() -> None:
    r = RecentReadings(max_points=1440, bucket_s=30.0)
    # 1 Hz for 6 hours, a spike to 80 %LEL at t=10,000 s, one low at t=20,000 s
    values = {10_000: 80.0, 20_000: -5.0}
    r.add([gas(float(t), values.get(t, 2.0 + (t % 7) / 10)) for t in range(6 * 3600)])
    pts = r.series("S1", 0.0)["ch4_lel"]
    assert len(pts) <= 1440 + 2
    assert pts[0][0] < 600  # the window reaches back (nearly) six hours ...
    assert (10_000.0, 80.0) in pts and (20_000.0, -5.0) in pts  # ... and keeps the extremes
    assert r.window_s == 6 * 3600
    assert [p[0] for p in pts] == sorted(p[0] for p in pts)


def test_late_reading_for_a_closed_bucket_is_kept() -> None:
    r = RecentReadings(bucket_s=10.0)
    r.add([gas(100.0, 1.0), gas(200.0, 2.0), gas(105.0, 7.0)])
    assert r.series("S1", 0.0)["ch4_lel"] == [(100.0, 1.0), (105.0, 7.0), (200.0, 2.0)]


def test_backfill_reads_the_journals_tail_up_to_the_committed_offset(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    lines = reading_lines([gas(float(t), float(t % 50)) for t in range(0, 3000, 10)]) + tick_line(3000.0)
    committed = len(lines)
    journal.write_bytes(lines + reading_lines([gas(9999.0, 1.0)]))  # past the commit: not shown
    full = RecentReadings(bucket_s=10.0)
    assert full.backfill(journal, end=committed) == 300
    assert len(full.series("S1", 0.0)["ch4_lel"]) == 300
    tail = RecentReadings(bucket_s=10.0)
    n = tail.backfill(journal, end=committed, max_bytes=len(lines) // 3, chunk=1000)
    pts = tail.series("S1", 0.0)["ch4_lel"]
    assert 80 < n < 120 and len(pts) == n and pts[-1] == (2990.0, 40.0)  # whole lines only, newest kept
    assert RecentReadings().backfill(tmp_path / "absent.jsonl", end=100) == 0
    # the window bounds how far back it reads: 600 s of a 3,000-s journal (chunks of 1,000 bytes)
    short = RecentReadings(max_points=60, bucket_s=20.0)
    assert short.window_s == 600 and short.backfill(journal, end=committed, chunk=1000) < 150
    assert min(p[0] for p in short.series("S1", 0.0)["ch4_lel"]) <= 3000 - 600


def test_backfill_goes_before_live_readings_that_arrived_first(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_bytes(reading_lines([gas(float(t), 1.0) for t in range(0, 100, 10)]))
    r = RecentReadings(max_points=12, bucket_s=10.0)
    r.add([gas(200.0, 5.0), gas(210.0, 6.0), gas(220.0, 7.0)])  # live, before the backfill thread is done
    assert r.backfill(journal, end=journal.stat().st_size) == 10
    pts = r.series("S1", 0.0)["ch4_lel"]
    assert pts[-3:] == [(200.0, 5.0), (210.0, 6.0), (220.0, 7.0)]  # the newest are never pushed out
    assert len(pts) == 13 and pts[0] == (0.0, 1.0)  # 12 closed buckets (10 from the journal) + the open one
