"""The wire format: every accepted shape decodes; every bad input becomes a dead letter with its reason."""

from __future__ import annotations

import orjson
import pytest

from lifeline.codec import REASONS, Limits, decode, decode_line
from lifeline.model import Sensor
from lifeline.registry import Registry

NOW = 1_764_403_200.0
REG = Registry([Sensor("g1", "gas", "LY", 117.2, 31.8), Sensor("w1", "water", "LY", 117.2, 31.8)])
TOPIC = "lifeline/readings/gas/g1"


def _d(payload: bytes, topic: str = TOPIC, **kw: object) -> tuple[list[tuple[str, str, float, float]], list[str]]:
    out = decode(topic, payload, registry=REG, received_at=NOW, **kw)  # type: ignore[arg-type]
    return [(r.sensor, r.metric, r.ts, r.value) for r in out.readings], [d.reason for d in out.dead]


def test_codec_single_metric() -> None:
    """{"ts", "metric", "value"} gives one reading."""
    assert _d(b'{"ts": 1764403200.25, "metric": "ch4_lel", "value": 12.5}') == (
        [("g1", "ch4_lel", 1764403200.25, 12.5)], [])


def test_codec_multi_metric_rfc3339_and_booleans() -> None:
    """"metrics" with an RFC 3339 ts (offset honoured); booleans count as 0/1."""
    readings, dead = _d(b'{"ts": "2025-11-29T16:00:00.250+08:00", "metrics": {"p": 0.28, "open": true}}')
    assert dead == [] and readings == [("g1", "p", 1764403200.25, 0.28), ("g1", "open", 1764403200.25, 1.0)]


def test_codec_batch_and_sensor_override() -> None:
    """An array is a batch; "sensor" overrides the topic's sensor id."""
    readings, dead = _d(b'[{"ts": 1, "metric": "a", "value": 1}, {"ts": 2, "metric": "a", "value": 2, "sensor": "g1"}]')
    assert dead == [] and [r[2] for r in readings] == [1.0, 2.0]


def test_codec_missing_ts_takes_receive_time_and_is_marked() -> None:
    """No ts: the receive time, with ts_assumed set."""
    out = decode(TOPIC, b'{"metric": "a", "value": 3}', registry=REG, received_at=NOW)
    assert [(r.ts, r.ts_assumed) for r in out.readings] == [(NOW, True)]


BAD = [
    (b"", "empty"),
    (b"\xff\xfe", "not_utf8"),
    (b"{not json", "not_json"),
    (b'"a string"', "bad_shape"),
    (b"[]", "bad_shape"),
    (b'{"ts": 1, "value": 1}', "bad_shape"),
    (b'{"ts": 1, "metrics": {}}', "bad_shape"),
    (b'{"ts": 1, "metric": "a", "value": "12.5"}', "bad_type"),
    (b'{"ts": 1, "metric": "a", "value": [1]}', "bad_type"),
    (b'{"ts": 1, "metric": 5, "value": 1}', "bad_type"),
    (b'{"ts": 1, "metric": "a", "value": 1, "seq": 1.5}', "bad_type"),
    (b'{"ts": 1, "metric": "a", "value": 1, "quality": "great"}', "bad_type"),
    (b'{"ts": 1, "metric": "a", "value": 1, "quality": ["good"]}', "bad_type"),  # unhashable: once a TypeError
    (b'{"ts": 1, "metric": "a", "value": 1, "quality": {"q": 1}}', "bad_type"),
    (b'{"ts": 1, "metric": "a", "value": NaN}', "non_finite"),
    (b'{"ts": 1, "metric": "a", "value": Infinity}', "non_finite"),
    (b'{"ts": 1, "metric": "a", "value": 1e400}', "non_finite"),
    (b'{"ts": "yesterday", "metric": "a", "value": 1}', "bad_ts"),
    (b'{"ts": "2026-11-29T08:00:00", "metric": "a", "value": 1}', "bad_ts"),
    (b'{"ts": true, "metric": "a", "value": 1}', "bad_ts"),
    (orjson.dumps({"ts": NOW + 365 * 86400, "metric": "a", "value": 1}), "future_ts"),
    (b"[" + b",".join([b'{"metric":"a","value":1}'] * 10_001) + b"]", "batch_too_large"),
    (b'{"ts": 1, "metric": "a", "value": 1, "pad": "' + b"x" * (1 << 20) + b'"}', "oversize"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD, ids=[r for _, r in BAD])
def test_codec_bad_input_is_dead_lettered_with_reason(payload: bytes, reason: str) -> None:
    """Each bad payload yields no reading and exactly one dead letter with the right reason."""
    readings, dead = _d(payload, limits=Limits())
    assert (readings, dead) == ([], [reason])
    assert reason in REASONS


@pytest.mark.parametrize(("topic", "reason"), [
    ("lifeline/readings/sewage/g1", "unknown_domain"),
    ("lifeline/readings/gas/nope", "unknown_sensor"),
    ("lifeline/readings/water/g1", "domain_mismatch"),
    ("lifeline/readings/gas", "bad_topic"),
    ("other/gas/g1", "bad_topic"),
])
def test_codec_bad_topic_is_dead_lettered(topic: str, reason: str) -> None:
    """Topics outside the contract or naming unknown things are rejected with a reason."""
    assert _d(b'{"ts": 1, "metric": "a", "value": 1}', topic=topic) == ([], [reason])


def test_codec_batch_of_non_objects_rejects_each_item() -> None:
    """A batch of numbers: one bad_shape dead letter per item."""
    assert _d(b"[1, 2]") == ([], ["bad_shape", "bad_shape"])


def test_codec_batch_keeps_good_items_and_rejects_bad_ones() -> None:
    """One bad item in a batch is dead-lettered alone, naming its index; the others decode."""
    readings, dead = _d(b'[{"ts": 1, "metric": "a", "value": 1}, {"ts": 2, "metric": "a", "value": "x"}]')
    assert [r[2] for r in readings] == [1.0] and dead == ["bad_type"]
    out = decode(TOPIC, b'[{"ts": 1, "metric": "a", "value": 1}, {"ts": 2, "metric": "a", "value": "x"}]',
                 registry=REG, received_at=NOW)
    assert out.dead[0].detail.startswith("item 1: ")


def test_codec_replay_line_and_tick() -> None:
    """Replay lines carry "sensor"; {"tick": ts} lines advance time."""
    decoded, tick = decode_line(b'{"sensor": "w1", "ts": 5, "metric": "p", "value": 0.3}', registry=REG)
    assert tick is None and [(r.domain, r.value) for r in decoded.readings] == [("water", 0.3)]
    decoded, tick = decode_line(b'{"tick": 1764403200}', registry=REG)
    assert tick == 1764403200.0 and decoded.readings == []


def test_codec_replay_line_domain_of_the_wrong_type() -> None:
    """A registered sensor with a non-string domain is a type error, not "not in the registry"."""
    decoded, _ = decode_line(b'{"sensor": "w1", "domain": [1], "ts": 5, "metric": "p", "value": 0.3}', registry=REG)
    assert [(d.reason, d.detail) for d in decoded.dead] == [
        ("bad_type", "replay line's 'domain' must be a string (got [1])")]
