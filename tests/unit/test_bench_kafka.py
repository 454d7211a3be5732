"""benchmarks.kafka_throughput: the sizing rule, and the drain read from the workers' status lines (the group
forming, records done before it left out, each worker's end, a rebalance during the drain seen)."""

from __future__ import annotations

import pytest

from benchmarks.kafka_throughput import Status, analyse, parse_status, reading_rate, size
from lifeline.model import Sensor
from lifeline.registry import Registry


def test_status_line_parsed_as_the_worker_prints_it() -> None:
    line = ("[2026-11-29 21:40:01,123] [9] [WARNING] worker: 1053 records, 4 alert events, 0 dead letters, "
            "0 skipped (replayed), 2 checkpoints; partitions 0@1053, 2@?, 5@-1\n")
    s = parse_status(1.5, 0, line)
    assert s is not None and s.records == 1053 and dict(s.offsets) == {0: 1053, 2: None, 5: -1}
    none = parse_status(2.0, 1, "worker: 0 records, 0 alert events, 0 dead letters, 0 skipped (replayed), "
                                "0 checkpoints; partitions none")
    assert none is not None and not none.offsets
    assert parse_status(0.0, 0, "lifeline worker: 69 rules (abc), 345 sensors") is None


def test_sizing_rule() -> None:
    s = size(2500.0, 2000.0, headroom=0.5, largest_share=0.03)
    assert (s.workers, s.partitions, s.fits) == (3, 6, True)  # 2500 / 1000 -> 3 workers, 2 partitions each
    assert s.largest_shard_rate == pytest.approx(75.0)
    assert size(10.0, 2000.0).workers == 1 and size(0.0, 2000.0).workers == 1  # never fewer than one
    assert size(2500.0, 2000.0, plan_workers=8).partitions == 16  # partitions for the most workers planned
    assert size(2500.0, 2000.0, shards=4).partitions == 4  # no more partitions than shards
    assert not size(2500.0, 2000.0, largest_share=0.5).fits  # one shard of 1,250/s > half a worker
    with pytest.raises(ValueError, match="headroom"):
        size(1.0, 1.0, headroom=0.0)


def test_reading_rate_is_the_sum_of_one_over_the_intervals() -> None:
    reg = Registry([Sensor("A", "gas", "BH", 117.3, 31.8, interval_s=60.0),
                    Sensor("B", "elevator", "BH", 117.3, 31.8, interval_s=10.0)])
    assert reading_rate(reg) == pytest.approx(1 / 60 + 1 / 10)


def _st(t: float, w: int, **offsets: int | None) -> Status:
    return Status(t, w, 0, {int(p[1:]): o for p, o in offsets.items()})


LAST = {0: 99, 1: 99, 2: 199, 3: 199}  # 600 records in 4 partitions


def test_drain_of_two_workers_from_the_group_forming_to_the_last_worker_done() -> None:
    events = [
        _st(0.0, 0),  # started, no partitions yet
        _st(1.0, 0, p0=None, p2=None),
        _st(1.1, 1, p1=9, p3=9),  # the group formed here: 20 records already done (left out)
        _st(2.0, 0, p0=49, p2=49),
        _st(2.1, 1, p1=59, p3=59),  # worker 1: 100 records in 1 s
        _st(2.9, 0, p0=99, p2=149),
        _st(3.1, 1, p1=99, p3=199),  # worker 1 done (its busy rate: 200 / 2 s = 100/s from 1.1 to 2.1)
        _st(3.8, 0, p0=99, p2=199),  # worker 0 done, seen at 3.8
    ]
    d = analyse(events, 2, LAST)
    assert d.finished and d.start == 1.1 and d.done_at_start == 20 and not d.moved
    assert d.owners == {0: [0, 2], 1: [1, 3]}
    # worker 0: 0 done at 1.1, 250 at 2.9 (its last busy line) -> 138.9/s; 50 left -> its end 2.9 + 0.36 s,
    # before the line that shows it done (3.8, from the worker's 1 s timer)
    assert d.worker_rate[0] == pytest.approx(250 / 1.8)
    assert d.worker_end[0] == pytest.approx(2.9 + 50 / (250 / 1.8))
    # worker 1: 100/s while busy, 180 left at 2.1 would take it to 3.9, but it showed done at 3.1
    assert d.worker_rate[1] == pytest.approx(100.0) and d.worker_end[1] == pytest.approx(3.1)
    assert d.end == pytest.approx(3.26) and d.end_bound == 3.8
    assert d.rate == pytest.approx((600 - 20) / (3.26 - 1.1))


def test_drain_not_finished_and_a_rebalance_seen() -> None:
    forming = [_st(0.5, 0, p0=5, p1=None, p2=None, p3=None), _st(0.6, 1)]  # worker 1 has nothing yet
    assert analyse(forming, 2, LAST).start is None
    events = [_st(1.0, 0, p0=5, p1=None), _st(1.1, 1, p2=None, p3=None), _st(2.0, 0, p0=50, p1=50),
              _st(2.5, 1, p2=150)]  # partition 3 left worker 1
    d = analyse(events, 2, LAST)
    assert d.start == 1.1 and d.done_at_start == 6 and d.moved and not d.finished
