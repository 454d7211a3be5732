"""The worker's pure core, without Kafka: a partition engine skips what its checkpoint already holds, ticks move
event time, a checkpoint survives its round trip through table entries (and a torn one is refused), and a
restore under changed rules keeps the state of the rules that stayed."""

from __future__ import annotations

import orjson
import pytest

from lifeline.engine import Engine
from lifeline.kafka import checkpoint as ckpt
from lifeline.kafka.records import TICK_TOPIC, parse_alert_record, tick_value, watermark_record
from lifeline.kafka.worker import PartitionEngine
from lifeline.model import Level
from lifeline.rules.model import RuleSet
from lifeline.testing import nodata_rule, registry_of, sensors, threshold_rule

T0 = 1_764_403_200.0
REG = registry_of(sensors("gas", 3, interval_s=15))
RULES = RuleSet((threshold_rule(), nodata_rule(intervals=2)))


def reading(sensor: int, ts: float, value: float, seq: int) -> tuple[str, bytes]:
    return (f"lifeline/readings/gas/gas-{sensor:04d}",
            orjson.dumps({"ts": ts, "metric": "ch4_lel", "value": value, "seq": seq}))


def feed(pe: PartitionEngine, records: list[tuple[str, bytes]], start: int = 0) -> list[tuple[str, int, str]]:
    out = []
    for i, (topic, payload) in enumerate(records, start):
        applied = pe.apply(i, topic, payload, None)
        out += [(e.id, e.seq, e.event.value) for e in applied.events]
    return out


RECORDS = [reading(1, T0, 1.0, 1), reading(2, T0 + 1, 2.0, 1), reading(1, T0 + 15, 30.0, 2),
           reading(1, T0 + 30, 60.0, 3), reading(2, T0 + 16, 2.0, 2), (TICK_TOPIC, tick_value(T0 + 200)),
           reading(1, T0 + 210, 3.0, 4)]


def test_a_checkpoint_round_trip_gives_the_same_output_and_skips_what_it_holds() -> None:
    whole = PartitionEngine(0, Engine(RULES, REG))
    expected = feed(whole, RECORDS)
    assert ("fired" in {e for _, _, e in expected}) and any(e == "resolved" for _, _, e in expected)

    first = PartitionEngine(0, Engine(RULES, REG))
    got = feed(first, RECORDS[:4])
    entries, manifest = first.checkpoint("rules-a")
    table = dict(entries)
    table[ckpt.manifest_key(0)] = manifest.to_bytes()
    restored = PartitionEngine.restore(0, RULES, REG, table.get, fingerprint="rules-a")
    assert restored.done == 3 and restored.generation == 1
    # a takeover re-reads from an older committed offset: what the checkpoint holds is skipped, not re-applied
    redelivered = [restored.apply(i, t, p, None) for i, (t, p) in enumerate(RECORDS[:4])]
    assert all(a.skipped and not a.events for a in redelivered)
    got += feed(restored, RECORDS[4:], start=4)
    assert got == expected
    assert restored.engine.snapshot() == whole.engine.snapshot()


def test_no_checkpoint_starts_empty_and_a_torn_or_foreign_one_is_refused() -> None:
    empty = PartitionEngine.restore(5, RULES, REG, {}.get, fingerprint="x")
    assert empty.done == -1 and empty.engine.watermark is None
    pe = PartitionEngine(2, Engine(RULES, REG))
    feed(pe, RECORDS)
    entries_small, manifest_small = ckpt.encode(2, 9, 6, pe.engine.snapshot(), "x", None, chunk_bytes=64)
    assert len(entries_small) > 3 and manifest_small.chunks == len(entries_small)
    table = dict(entries_small)
    table[ckpt.manifest_key(2)] = manifest_small.to_bytes()
    back = PartitionEngine.restore(2, RULES, REG, table.get, fingerprint="x")
    assert back.engine.snapshot() == pe.engine.snapshot() and back.done == 6
    torn = dict(table)
    del torn[ckpt.chunk_key(2, 9, 1)]
    with pytest.raises(ckpt.CheckpointError, match="chunk 1 of"):
        PartitionEngine.restore(2, RULES, REG, torn.get, fingerprint="x")
    bad = dict(table)
    first = bad[ckpt.chunk_key(2, 9, 0)]
    bad[ckpt.chunk_key(2, 9, 0)] = first[:5] + bytes([first[5] ^ 0xFF]) + first[6:]
    with pytest.raises(ckpt.CheckpointError, match="checksum"):
        PartitionEngine.restore(2, RULES, REG, bad.get, fingerprint="x")
    with pytest.raises(ckpt.CheckpointError, match="partition 2's"):
        PartitionEngine.restore(3, RULES, REG, {ckpt.manifest_key(3): manifest_small.to_bytes()}.get,
                                fingerprint="x")
    with pytest.raises(ckpt.CheckpointError, match="unreadable"):
        ckpt.Manifest.from_bytes(b"{")


def test_a_rule_roll_out_keeps_the_state_of_the_rules_that_stayed(caplog: pytest.LogCaptureFixture) -> None:
    pe = PartitionEngine(0, Engine(RULES, REG))
    feed(pe, RECORDS[:4])  # gas-0001 red under the threshold rule
    entries, manifest = pe.checkpoint("old")
    table = dict(entries)
    table[ckpt.manifest_key(0)] = manifest.to_bytes()
    new_rules = RuleSet((threshold_rule(),))  # the nodata rule is gone
    with caplog.at_level("WARNING", logger="lifeline.worker"):
        restored = PartitionEngine.restore(0, new_rules, REG, table.get, fingerprint="new")
    assert "rules old" in caplog.text and "these are new" in caplog.text
    assert [(r, s, lv) for r, s, lv in restored.engine.open_alerts()] == [("gas.methane.high", "gas-0001", Level.RED)]


def test_bad_ticks_are_dead_letters_and_records_parse_back() -> None:
    pe = PartitionEngine(0, Engine(RULES, REG))
    applied = pe.apply(0, TICK_TOPIC, b'{"tick": "soon"}', None)
    assert [d.reason for d in applied.dead] == ["bad_tick"] and not applied.events
    assert pe.apply(1, "lifeline/readings/gas", b"{}", None).dead[0].reason  # a topic without a sensor
    k, v = watermark_record(3, T0)
    assert parse_alert_record(k, v) == T0
    with pytest.raises(ValueError, match="not an alert event"):
        parse_alert_record(b"abc", b'{"id": 1}')
    with pytest.raises(ValueError, match="not JSON"):
        parse_alert_record(b"abc", b"{")
