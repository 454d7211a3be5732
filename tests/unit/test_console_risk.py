"""The four-colour risk map's arithmetic: district colour from open safety alerts weighted by asset
criticality; sensor marker states."""

from __future__ import annotations

from lifeline.console.risk import criticality, district_risk, level_of, sensor_states
from lifeline.model import Level, Sensor
from lifeline.registry import Registry
from lifeline.registry.core import District
from lifeline.sinks.store import AlertRow

SQUARE = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def _row(i: int, sensor: str, level: Level, district: str = "LY", kind: str = "safety", state: str = "firing",
         suppressed: str | None = None) -> AlertRow:
    return AlertRow(f"A{i}", 1, "r", kind, sensor, sensor, "gas", district, level, state, "fired", 0.0, 0.0, 1.0, "m",
                    "t", "o", "", None, None, None, None, None, suppressed)


def _registry() -> Registry:
    return Registry([Sensor("BR1", "bridge", "LY", 0.5, 0.5, asset_type="bridge"),
                     Sensor("EL1", "elevator", "LY", 0.5, 0.5, asset_type="elevator"),
                     Sensor("MH1", "gas", "SS", 0.5, 0.5, asset_type="manhole", labels={"criticality": "3"})],
                    [District("LY", "Luyang", SQUARE), District("SS", "Shushan", SQUARE), District("BH", "Binhu",
                                                                                                  SQUARE)])


def test_colour_from_weighted_alerts() -> None:
    reg = _registry()
    assert (criticality(reg.get("BR1")), criticality(reg.get("EL1")), criticality(reg.get("MH1"))) == (3, 1, 3)
    assert criticality(None) == 1 and level_of(0) is None and level_of(3.9) == Level.YELLOW
    # an orange on a bridge (4 x 3) is red; a yellow in an elevator (2 x 1) stays yellow; health alerts never count
    risk = district_risk([_row(1, "BR1", Level.ORANGE), _row(2, "MH1", Level.YELLOW, "SS"),
                          _row(3, "EL1", Level.RED, kind="health")], reg)
    assert risk["LY"] == {"level": "red", "score": 12.0, "alerts": 1}
    assert risk["SS"] == {"level": "orange", "score": 6.0, "alerts": 1}  # a yellow on a critical (3) manhole
    assert risk["BH"] == {"level": None, "score": 0.0, "alerts": 0}
    assert district_risk([_row(4, "EL1", Level.YELLOW), _row(5, "EL1", Level.YELLOW)], reg)["LY"]["level"] == "orange"
    assert district_risk([_row(6, "BR1", Level.RED, state="resolved")], reg)["LY"]["level"] is None


def test_marker_states() -> None:
    states = sensor_states([_row(1, "BR1", Level.YELLOW), _row(2, "BR1", Level.RED), _row(3, "EL1", Level.BLUE,
                                                                                          kind="nodata"),
                            _row(4, "MH1", Level.ORANGE, suppressed="silenced: silence S-1 by li.wei"),
                            _row(5, "X", Level.RED, state="resolved")])
    assert states == {"BR1": "red", "EL1": "offline", "MH1": "silenced"}


def test_distance_and_nearby_sensors_with_their_alerts() -> None:
    from lifeline.console.risk import distance_m, nearby

    assert abs(distance_m((117.0, 31.0), (117.0, 31.01)) - 1112) < 2  # 0.01° of latitude is about 1.11 km
    reg = Registry([Sensor("A", "gas", "LY", 117.0, 31.0), Sensor("B", "gas", "LY", 117.0, 31.005),
                    Sensor("C", "water", "LY", 117.0, 31.002), Sensor("FAR", "gas", "LY", 117.1, 31.0)])
    got = nearby("A", reg, [_row(1, "B", Level.ORANGE), _row(2, "A", Level.RED)])
    assert [(n["sensor"], n["distance_m"], [x["level"] for x in n["alerts"]]) for n in got] == [
        ("B", 556, ["orange"]), ("C", 222, [])]  # sensors with alerts first, then by distance; itself and FAR out
    assert nearby("nobody", reg, []) == []
