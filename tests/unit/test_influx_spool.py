"""The time-series sink's on-disk spool: oldest first, bounded in bytes, picked up again by a new process,
and its memory the same however many batches wait on disk (a long store outage must not grow RAM)."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest

from lifeline.sinks.influxdb import _Spool


def _batch(i: int, n: int = 3) -> list[str]:
    return [f"lifeline_reading,sensor=S{i} v={k}.5 {1784044800000 + i * 1000 + k}" for k in range(n)]


def _drain(spool: _Spool) -> list[list[str]]:
    out = []
    while (got := spool.oldest()) is not None:
        path, lines = got
        out.append(lines)
        spool.done(path)
    return out


def test_memory_does_not_grow_with_the_batches_waiting_on_disk(tmp_path: Path) -> None:
    """The writer spools one batch per flush interval while the store is down, so the number of batches is the
    length of the outage. The spool keeps a range of file numbers, not a list of paths (~390 bytes a batch)."""
    spool = _Spool(tmp_path, 1 << 40)
    lines = _batch(0)
    for _ in range(300):  # warm-up: pathlib's and the interpreter's own caches reach their size
        spool.put(lines)
    grown = []
    tracemalloc.start()
    try:
        for _ in range(2):  # two stretches, the smaller growth counts: a one-off resize of a cache is not a leak
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(600):
                spool.put(lines)
            gc.collect()
            grown.append(tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()
    assert len(spool) == 1500
    assert min(grown) < 16 * 1024, f"{grown} bytes more for 600 more batches (~{min(grown) / 600:.0f} per batch)"


def test_oldest_first_across_a_restart_with_a_file_removed_by_hand(tmp_path: Path) -> None:
    spool = _Spool(tmp_path, 1 << 20)
    for i in range(6):
        spool.put(_batch(i))
    size = spool.bytes
    assert len(spool) == 6 and size == sum(p.stat().st_size for p in tmp_path.glob("batch-*.lp"))
    for want in range(2):
        got = spool.oldest()
        assert got is not None and got[1] == _batch(want)
        spool.done(got[0])
    first = spool.reject(_batch(99), "HTTP 400: bad")
    again = _Spool(tmp_path, 1 << 20)  # a new process finds the files, oldest first
    assert len(again) == 4 and again.bytes == size * 4 // 6
    (tmp_path / "batch-000000000003.lp").unlink()  # removed by hand: skipped, no longer counted
    got = again.oldest()
    assert got is not None and got[1] == _batch(2)
    with pytest.raises(ValueError, match="not the oldest"):
        again.done(tmp_path / "batch-000000000004.lp")
    again.done(got[0])
    again.put(_batch(6))
    assert _drain(again) == [_batch(4), _batch(5), _batch(6)]
    assert len(again) == 0 and again.bytes == 0 and not list(tmp_path.glob("batch-*"))
    second = again.reject(_batch(98), "HTTP 400: bad")  # rejected batches are numbered on their own ...
    assert second != first and first.read_text().startswith("# HTTP 400")  # ... and never overwritten


def test_a_full_spool_drops_its_oldest_batches(tmp_path: Path) -> None:
    one = len(("\n".join(_batch(0)) + "\n").encode())
    spool = _Spool(tmp_path, 2 * one + 10)
    for i in range(5):
        spool.put(_batch(i))
    assert len(spool) == 2 and spool.bytes <= 2 * one + 10 and spool.dropped_lines == 3 * 3
    assert _drain(spool) == [_batch(3), _batch(4)]


def test_a_gap_in_the_numbers_is_skipped_and_nothing_after_it_is_lost(tmp_path: Path) -> None:
    """An older version numbered rejected batches in the same sequence: a spool it left has gaps."""
    for n in (4, 5, 7, 10):
        (tmp_path / f"batch-{n:012d}.lp").write_text("\n".join(_batch(n)) + "\n")
    spool = _Spool(tmp_path, 1 << 20)
    assert len(spool) == 4
    spool.put(_batch(11))
    assert _drain(spool) == [_batch(4), _batch(5), _batch(7), _batch(10), _batch(11)]
    assert len(spool) == 0 and spool.bytes == 0
