"""The four-colour risk map: each district's current risk from its open safety alerts, weighted by how
critical the asset under each alert is.

score(district) = Σ over its open safety alerts of weight(level) × criticality(asset), with weights
blue 1, yellow 2, orange 4, red 8 (each level counts as two of the one below), and criticality 1–3: the
sensor's ``criticality`` label when it has one, else by asset type (bridges, gas and water mains 3;
manholes, underpasses, sewers, venues 2; elevators, rain gauges 1). The district's colour is the level
whose weight the score reaches: one red alert makes a district red; so do two orange alerts, or one orange
on a bridge. Sensor-health and no-data alerts are about the sensors, not the city: they colour markers
(offline), never districts. Pure functions of the open alerts and the registry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from lifeline.model import Level, Sensor
from lifeline.registry import Registry
from lifeline.sinks.store import AlertRow

WEIGHT = {Level.BLUE: 1.0, Level.YELLOW: 2.0, Level.ORANGE: 4.0, Level.RED: 8.0}
CRITICALITY = {"bridge": 3.0, "gas_pipe": 3.0, "water_main": 3.0, "manhole": 2.0, "underpass": 2.0, "sewer": 2.0,
               "venue": 2.0, "elevator": 1.0, "rain_gauge": 1.0}


def criticality(sensor: Sensor | None) -> float:
    if sensor is None:
        return 1.0
    label = sensor.labels.get("criticality")
    if label is not None:
        try:
            return min(3.0, max(1.0, float(label)))
        except ValueError:
            pass
    return CRITICALITY.get(sensor.asset_type, 1.0)


def level_of(score: float) -> Level | None:
    """The colour a score reaches (None: no open safety alert)."""
    for level in sorted(WEIGHT, reverse=True):
        if score >= WEIGHT[level]:
            return level
    return None


def district_risk(alerts: Iterable[AlertRow], registry: Registry) -> dict[str, dict[str, Any]]:
    """district -> {level, score, alerts} over the open safety alerts (every registered district present)."""
    out: dict[str, dict[str, Any]] = {d: {"level": None, "score": 0.0, "alerts": 0} for d in registry.districts}
    for a in alerts:
        if a.kind != "safety" or a.state == "resolved" or not a.district:
            continue
        entry = out.setdefault(a.district, {"level": None, "score": 0.0, "alerts": 0})
        entry["score"] += WEIGHT[a.level] * criticality(registry.get(a.sensor))
        entry["alerts"] += 1
    for entry in out.values():
        level = level_of(entry["score"])
        entry["level"] = None if level is None else level.colour
    return out


def sensor_states(alerts: Iterable[AlertRow]) -> dict[str, str]:
    """sensor -> its marker state: the worst open safety level, ``offline`` (an open no-data alert), or
    ``silenced`` (its latest alert held by a silence); sensors not listed are normal."""
    out: dict[str, str] = {}
    rank = {"offline": 0, "silenced": 0, **{lv.colour: int(lv) for lv in Level}}
    for a in alerts:
        if a.state == "resolved":
            continue
        if a.suppressed and a.suppressed.startswith("silenced"):
            state = "silenced"
        elif a.kind == "nodata":
            state = "offline"
        elif a.kind == "safety":
            state = a.level.colour
        else:
            continue
        if rank[state] >= rank.get(out.get(a.sensor, ""), -1):
            out[a.sensor] = state
    return out


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (lon, lat) points (haversine, mean Earth radius)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(math.sqrt(min(1.0, h)))


def nearby(sensor: str, registry: Registry, open_alerts: Iterable[AlertRow], radius_m: float = 1000.0,
           limit: int = 20) -> list[dict[str, Any]]:
    """The sensors within ``radius_m`` of ``sensor`` (itself left out), nearest first, each with its open
    alerts: what an operator looks at to tell a local fault from a spreading incident."""
    here = registry.get(sensor)
    if here is None:
        return []
    by_sensor: dict[str, list[AlertRow]] = {}
    for a in open_alerts:
        by_sensor.setdefault(a.sensor, []).append(a)
    out = []
    for s in registry.sensors.values():
        if s.id == sensor:
            continue
        d = distance_m((here.lon, here.lat), (s.lon, s.lat))
        if d <= radius_m:
            out.append({"sensor": s.id, "domain": s.domain, "asset": s.asset, "distance_m": round(d),
                        "alerts": [{"id": a.id, "rule": a.rule, "level": a.level.colour, "state": a.state}
                                   for a in by_sensor.get(s.id, [])]})
    out.sort(key=lambda x: (not x["alerts"], x["distance_m"], x["sensor"]))
    return out[:limit]
