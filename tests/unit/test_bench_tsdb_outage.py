"""benchmarks.tsdb_outage counts what the store holds against what was published: a point missing, written
twice, unexpected or with another value is seen, and a payload's metrics make one point."""

from __future__ import annotations

import dataclasses

import orjson

from benchmarks.common import demo_registry
from benchmarks.tsdb_outage import expected_alerts, expected_readings
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level

T = 1784107800.25


def _payload(sensor: str, domain: str, ts: float, **metrics: float) -> tuple[str, bytes]:
    return f"lifeline/readings/{domain}/{sensor}", orjson.dumps({"ts": ts, "metrics": metrics})


def test_readings_one_point_per_payload_and_every_kind_of_error_seen() -> None:
    reg = demo_registry()
    gas, water = "BH-GAS-C2-W01", "BH-WAT-M1-N1"  # sensors of the demo city
    t = expected_readings([_payload(gas, "gas", T, ch4_lel=1.5), _payload(water, "water", T, flow_m3h=40.0,
                                                                          pressure_mpa=0.3),
                           _payload(gas, "gas", T + 1, ch4_lel=2.0)], reg)
    ms = round(T * 1000)
    assert t.summary()["points_expected"] == 3 and t.summary()["samples_expected"] == 4
    t.see((gas, "lifeline_reading_ch4_lel", ms), 1.5)
    t.see((water, "lifeline_reading_flow_m3h", ms), 40.0)
    t.see((water, "lifeline_reading_pressure_mpa", ms), 0.3)
    t.see((water, "lifeline_reading_pressure_mpa", ms), 0.3)  # twice
    t.see((gas, "lifeline_reading_ch4_lel", ms + 1000), 2.5)  # another value
    t.see((gas, "lifeline_reading_ch4_lel", ms + 2000), 2.0)  # never published
    s = t.summary()
    assert s["points_exactly_once"] == 1 and s["points_missing"] == 0  # only the first gas point is right
    assert s["samples_duplicated"] == 1 and s["samples_wrong_value"] == 1 and s["samples_unexpected"] == 1
    assert s["samples_found"] == 6 and len(t.examples()) == 3


def test_alerts_one_point_per_event_the_id_present_but_not_compared() -> None:
    e = AlertEvent(id="a1", seq=1, rule="gas.methane.high", kind=AlertKind.SAFETY, subject="S1", sensor="S1",
                   domain="gas", district="LY", level=Level(2), state=AlertState.FIRING, event=EventKind.FIRED,
                   started=T, ts=T, value=12.5, message="m")
    t = expected_alerts([e, dataclasses.replace(e, seq=2, ts=T + 60, value=None, event=EventKind.RESOLVED,
                                                state=AlertState.RESOLVED)])
    labels = {"rule": "gas.methane.high", "subject": "S1", "sensor": "S1", "kind": "safety", "event": "fired",
              "level": "yellow", "state": "firing"}
    point = tuple(labels[k] for k in ("rule", "subject", "sensor", "kind", "event", "level", "state"))
    for field, value in (("seq", 1.0), ("level_num", 2.0), ("value", 12.5), ("alert", 0.0)):
        t.see((*point, round(T * 1000), field), value)
    s = t.summary()
    assert s["points_expected"] == 2 and s["samples_expected"] == 4 + 3  # the resolution has no value
    assert s["points_exactly_once"] == 1 and s["points_missing"] == 1  # the first in full, the resolution not
    assert s["samples_wrong_value"] == 0 and s["samples_unexpected"] == 0
