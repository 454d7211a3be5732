"""The decode fast path keeps the exact contract: dead-letter details, Reading values and journal lines."""

from __future__ import annotations

import pytest

from lifeline.codec import decode
from lifeline.model import Reading, Sensor
from lifeline.registry import Registry
from lifeline.sources.replay import reading_lines

NOW = 1_764_403_200.0
REG = Registry([Sensor("g1", "gas", "LY", 117.2, 31.8)])
TOPIC = "lifeline/readings/gas/g1"


def _dead(payload: bytes) -> list[tuple[str, str]]:
    out = decode(TOPIC, payload, registry=REG, received_at=NOW)
    assert out.readings == []
    return [(d.reason, d.detail) for d in out.dead]


@pytest.mark.parametrize(("payload", "detail"), [
    (b"\xff\xfe", "payload is not UTF-8 (byte 0: 0xff)"),
    (b'{"ts": 1, "metric": "a", "value": 1, "unit": "\xc3"}', "payload is not UTF-8 (byte 46: 0xc3)"),
    (b'{"ts": 1, "metric": "a", "value": 1, "unit": "\xed\xa0\x80"}', "payload is not UTF-8 (byte 46: 0xed)"),
    (b'{"ts": 1, "metric": "a", "value": 1}  \x80', "payload is not UTF-8 (byte 38: 0x80)"),
])
def test_codec_invalid_utf8_anywhere_is_not_utf8_with_the_byte(payload: bytes, detail: str) -> None:
    """Bad UTF-8 (also a surrogate, or after a complete JSON value) is not_utf8 naming the first bad byte."""
    assert _dead(payload) == [("not_utf8", detail)]


@pytest.mark.parametrize(("payload", "reason", "detail"), [
    (b'{"ts": 1, "metric": "a", "value": NaN}', "non_finite", "NaN and Infinity are not valid values"),
    (b'{"ts": 1, "metric": "a", "value": 1e400}', "non_finite", "NaN and Infinity are not valid values"),
    (b'{"ts": 1, "metrics": {"a": 1, "b": "x", "": 2}}', "bad_type",
     "metric 'b': expected a number or boolean (got str \"x\")"),
    (b'{"ts": 1, "metrics": {"a": 1, "": "x"}}', "bad_type",
     'metric name must be a string of 1-64 characters (got "")'),
    (b'{"ts": "x", "metrics": {"a": "x"}, "seq": 1.5}', "bad_type",
     "metric 'a': expected a number or boolean (got str \"x\")"),
    (b'{"ts": "x", "metrics": {"a": 1}, "seq": 1.5}', "bad_ts", "ts is not RFC 3339: 'x'"),
    (b'{"ts": 1, "metrics": {"a": 1, "b": [1]}, "sensor": "g1"}', "bad_type",
     "metric 'b': expected a number or boolean (got list [1])"),
    (b'{"ts": 1, "metrics": {"a": 1}, "seq": true}', "bad_type", "'seq' must be an integer (got true)"),
    (b'{"ts": 1, "metrics": {"a": 1}, "unit": 5}', "bad_type", "'unit' must be a string (got 5)"),
    (b'{"ts": 1864403200, "metrics": {"a": 1}}', "future_ts",
     "ts is 100000000 s ahead of the receive time (limit 300 s)"),
])
def test_codec_rejects_name_the_first_failing_check(payload: bytes, reason: str, detail: str) -> None:
    """Metrics are checked (name, then value, in order) before ts, seq, quality and unit; the first failure wins."""
    assert _dead(payload) == [(reason, detail)]


def test_codec_readings_keep_types_and_order() -> None:
    """Ints and booleans become floats, floats are kept as they are, in the payload's order, all fields set."""
    out = decode(TOPIC, b'{"ts": 1764403200.25, "seq": 7, "quality": "suspect", "unit": "u",'
                 b' "metrics": {"b": 1, "a": 0.1, "c": false}}', registry=REG, received_at=NOW)
    assert out.dead == []
    assert out.readings == [
        Reading("g1", "gas", "b", 1764403200.25, 1.0, 7, "suspect", "u", False),
        Reading("g1", "gas", "a", 1764403200.25, 0.1, 7, "suspect", "u", False),
        Reading("g1", "gas", "c", 1764403200.25, 0.0, 7, "suspect", "u", False),
    ]
    assert all(type(r) is Reading and type(r.value) is float for r in out.readings)


def test_reading_api_keyword_positional_defaults_immutable() -> None:
    """Reading: same fields and defaults by keyword or position, immutable, equal and hashed by value."""
    a = Reading("s", "gas", "m", 1.0, 2.0)
    b = Reading(sensor="s", domain="gas", metric="m", ts=1.0, value=2.0, seq=None, quality="good", unit=None,
                ts_assumed=False)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert (a.seq, a.quality, a.unit, a.ts_assumed) == (None, "good", None, False)
    assert repr(a) == ("Reading(sensor='s', domain='gas', metric='m', ts=1.0, value=2.0, seq=None, "
                       "quality='good', unit=None, ts_assumed=False)")
    with pytest.raises(AttributeError):
        a.value = 3.0  # type: ignore[misc]


def test_reading_lines_group_one_wire_item_per_line() -> None:
    """One line per run of readings sharing sensor, ts, seq, quality and unit; a repeated metric starts a line."""
    r = [Reading("s", "gas", "a", 1.5, 1.0, 3), Reading("s", "gas", "b", 1.5, 2.0, 3),
         Reading("s", "gas", "a", 1.5, 4.0, 3), Reading("s", "gas", "a", 2.5, 0.1, None, "bad", "u", True),
         Reading("t", "water", "a", 2.5, -0.0)]
    assert reading_lines(r) == (
        b'{"sensor":"s","domain":"gas","ts":1.5,"metrics":{"a":1.0,"b":2.0},"seq":3}\n'
        b'{"sensor":"s","domain":"gas","ts":1.5,"metrics":{"a":4.0},"seq":3}\n'
        b'{"sensor":"s","domain":"gas","ts":2.5,"metrics":{"a":0.1},"quality":"bad","unit":"u"}\n'
        b'{"sensor":"t","domain":"water","ts":2.5,"metrics":{"a":-0.0}}\n'
    )
    assert reading_lines([]) == b""
