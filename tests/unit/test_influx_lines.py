"""Line protocol from lifeline's points: the same text influxdb-client's own Point gives, escaping included."""

from __future__ import annotations

import math

import pytest
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level, Reading
from lifeline.sinks.influxdb import (
    ALERT,
    ALERT_FIELDS,
    ALERT_TAGS,
    READING,
    READING_TAGS,
    InfluxDBSettings,
    alert_lines,
    line,
    reading_lines,
)

T = 1784044800.0


def _reference(measurement: str, tags: dict[str, str], fields: dict[str, object], ts_ms: int) -> str:
    p = Point(measurement)
    for k, v in sorted(tags.items()):
        p = p.tag(k, v)
    for k, v in sorted(fields.items()):
        p = p.field(k, v)
    return str(p.time(ts_ms, WritePrecision.MS).to_line_protocol())


def test_escaping_matches_influxdb_client() -> None:
    tags = {"sensor": "LY GAS,C1=W04", "district": "蜀山 区", "rule": 'a"b\\c'}
    fields: dict[str, object] = {"value": 0.1 + 0.2, "seq": 3, "alert": 'id "x", y=z', "ok": True}
    assert line("m x,y", tags, fields, 1784044800123) == _reference("m x,y", tags, fields, 1784044800123)  # type: ignore[arg-type]


def test_empty_tags_and_non_finite_fields_are_left_out() -> None:
    assert line("m", {"a": "", "b": "1"}, {"x": 1.5, "y": math.nan, "z": math.inf}, 5) == "m,b=1 x=1.5 5"
    assert line("m", {"a": "1"}, {"y": math.nan}, 5) is None  # no field left: no point


def test_one_point_per_payload_and_bad_quality_left_out() -> None:
    rs = [Reading("S1", "water", "flow_m3h", T, 40.0), Reading("S1", "water", "pressure_mpa", T, 0.31),
          Reading("S1", "water", "flow_m3h", T + 60, 41.0, quality="bad"),
          Reading("S2", "water", "flow_m3h", T + 60, 12.0)]
    out = reading_lines(rs, {"S1": "LY", "S2": "SS"}.get)  # type: ignore[arg-type]
    assert out == [f"{READING},district=LY,domain=water,sensor=S1 flow_m3h=40.0,pressure_mpa=0.31 {int(T * 1000)}",
                   f"{READING},district=SS,domain=water,sensor=S2 flow_m3h=12.0 {int((T + 60) * 1000)}"]


def test_alert_point_carries_level_rule_and_id() -> None:
    e = AlertEvent(id="abc123", seq=2, rule="gas.methane.high", kind=AlertKind.SAFETY, subject="S1", sensor="S1",
                   domain="gas", district="LY", level=Level.RED, state=AlertState.FIRING, event=EventKind.ESCALATED,
                   started=T, ts=T + 30.5, value=52.0, message="m")
    (lp,) = alert_lines([e])
    assert lp == (f'{ALERT},district=LY,domain=gas,event=escalated,kind=safety,level=red,rule=gas.methane.high,'
                  f'sensor=S1,state=firing,subject=S1 alert="abc123",level_num=4i,seq=2i,value=52.0 '
                  f'{int(T * 1000) + 30500}')


def _keys(lp: str) -> tuple[str, set[str], set[str]]:
    """(measurement, tag keys, field keys) of one line without escaped characters."""
    series, fields, _ = lp.split(" ")
    measurement, *tags = series.split(",")
    return measurement, {t.split("=")[0] for t in tags}, {f.split("=")[0] for f in fields.split(",")}


def test_declared_names_are_the_ones_written() -> None:
    """READING_TAGS, ALERT_TAGS and ALERT_FIELDS (what the Grafana dashboards may query) are exactly what is written."""
    (rl,) = reading_lines([Reading("S1", "water", "flow_m3h", T, 40.0)], lambda s: "LY")
    assert _keys(rl) == (READING, set(READING_TAGS), {"flow_m3h"})
    e = AlertEvent(id="a1", seq=1, rule="gas.methane.high", kind=AlertKind.SAFETY, subject="S1", sensor="S1",
                   domain="gas", district="LY", level=Level.RED, state=AlertState.FIRING, event=EventKind.FIRED,
                   started=T, ts=T, value=52.0, message="m")
    (al,) = alert_lines([e])
    assert _keys(al) == (ALERT, set(ALERT_TAGS), set(ALERT_FIELDS))


def test_settings_problems_are_named() -> None:
    s = InfluxDBSettings(url="127.0.0.1:8086", batch_size=0, retry_max_s=0.0)
    assert s.problems() == ["url: expected http(s)://host:port (got '127.0.0.1:8086')",
                            "batch_size: must be at least 1 (got 0)", "retry_max_s: must be positive (got 0.0)"]


def test_downsampling_keeps_the_first_reading_of_each_aligned_window_per_sensor_and_metric() -> None:
    from lifeline.sinks.downsample import Downsampler, parse_downsample

    d = Downsampler(parse_downsample(["crowd=1m", "elevator.speed_ms=30s", "*=0"]))
    rs = [Reading("C1", "crowd", "count", 60.0 * 10 + t, float(t)) for t in range(0, 180, 10)]
    rs += [Reading("C2", "crowd", "count", 600.0, 1.0), Reading("E1", "elevator", "speed_ms", 600.0, 1.0),
           Reading("E1", "elevator", "speed_ms", 615.0, 1.0), Reading("E1", "elevator", "speed_ms", 630.0, 1.0),
           Reading("E1", "elevator", "load_kg", 615.0, 1.0), Reading("G1", "gas", "ch4_lel", 601.0, 1.0),
           Reading("G1", "gas", "ch4_lel", 602.0, 1.0)]
    kept = [(r.sensor, r.metric, r.ts) for r in d.keep(rs)]
    assert kept == [("C1", "count", 600.0), ("C1", "count", 660.0), ("C1", "count", 720.0), ("C2", "count", 600.0),
                    ("E1", "speed_ms", 600.0), ("E1", "speed_ms", 630.0), ("E1", "load_kg", 615.0),
                    ("G1", "ch4_lel", 601.0), ("G1", "ch4_lel", 602.0)]
    assert (d.kept, d.dropped) == (9, 16)
    # a late reading in a window already written is not written again
    assert d.keep([Reading("C1", "crowd", "count", 725.0, 1.0)]) == []


def test_downsample_flags_are_checked() -> None:
    from lifeline.errors import ConfigError
    from lifeline.sinks.downsample import parse_downsample

    with pytest.raises(ConfigError) as exc:
        parse_downsample(["crowd", "gas=soon", "crowd=1m", "crowd=2m"])
    text = str(exc.value)
    assert "'crowd': expected KEY=INTERVAL" in text and "'gas=soon'" in text and "given twice" in text
