"""Crowds: venue and metro-station zones reporting density (persons/m²) and occupancy (% of rated
capacity).

Normal days follow a diurnal profile (metro: commuter peaks and a train-headway sawtooth of 2-5 min,
REFERENCE §6.4) and stay below 40 % of capacity. An event day ramps ingress up before the event
(non-homogeneous arrivals, §6.4) to ``magnitude`` of capacity, then an egress surge packs the exit
zone for a few minutes as everyone leaves at once. A surge (blocked exit, inflow x3, §6.4) drives
density to ``magnitude`` persons/m². Levels: density 1/2/4/5 p/m² [C4][C5]; occupancy 50/60/80/100 %
(Badaling [C9], LB/T 034-2014 [C8]).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lifeline.model import Sensor
from lifeline.registry import Registry
from simulators.base import Array, Effect, Incident, Metrics, ar1, diurnal, label, local_hours, resolve, smoothstep

DOMAIN = "crowd"

#: Zone occupancy by hour ending 01:00..24:00, relative (⚠INF).
METRO: tuple[float, ...] = (
    2, 1, 1, 1, 2, 10, 45, 100, 80, 40, 30, 30, 32, 30, 30, 38, 60, 95, 70, 40, 30, 22, 12, 5,
)
VENUE: tuple[float, ...] = (
    2, 1, 1, 1, 1, 2, 5, 15, 30, 45, 55, 65, 70, 72, 75, 78, 80, 85, 90, 85, 70, 45, 20, 8,
)


def simulate(
    sensor: Sensor, ts: Array, rng: np.random.Generator, effects: Sequence[Effect], seed: int = 0
) -> Metrics:
    capacity = label(sensor, "capacity", 2000.0)
    area = label(sensor, "area_m2", capacity / 2.0)
    peak = label(sensor, "peak_occupancy", 0.32)  # quiet-day peak share of capacity (⚠INF)
    metro = sensor.labels.get("kind") == "metro"
    profile = np.asarray(diurnal(local_hours(ts), METRO if metro else VENUE))
    profile = profile / (max(METRO if metro else VENUE) / (sum(METRO if metro else VENUE) / 24))
    share = peak * profile * (1.0 + ar1(rng, ts.size, 0.9, 0.04))
    if metro:
        headway = label(sensor, "headway_s", 180.0)
        share = share * (0.85 + 0.3 * ((ts % headway) / headway))  # platform fills, train clears it
    density_factor = np.ones_like(ts)
    for e in effects:
        if e.kind == "crowd_event":
            share, density_factor = _event(ts, e, share, density_factor)
        elif e.kind == "crowd_surge":
            bump = smoothstep((ts - e.start) / e.param("ramp", 180.0)) * (ts < e.end)
            target = e.magnitude * area / capacity  # share giving magnitude p/m²
            share = np.maximum(share, target * bump)
    share = np.clip(share, 0.0, None)
    count = np.round(share * capacity)
    return {
        "density_ppm2": count / area * density_factor,
        "occupancy_pct": 100.0 * count / capacity,
    }


def _event(ts: Array, e: Effect, share: Array, factor: Array) -> tuple[Array, Array]:
    """Ingress ramp over ``ramp`` s from ``start`` to ``magnitude``, hold to ``end``, then egress:
    the crowd leaves with time constant ``egress``/3 while the exit zone packs ``surge`` x denser."""
    ramp = e.param("ramp", 3600.0)
    egress = e.param("egress", 900.0)
    surge = e.param("surge", 1.4)
    rise = smoothstep((ts - e.start) / ramp) * (ts < e.end)
    since = np.maximum(ts - e.end, 0.0)
    leave = np.where(ts >= e.end, np.exp(-since / (egress / 3.0)), 0.0)
    level = e.magnitude * np.maximum(rise, leave)
    pulse = np.where(ts >= e.end, (surge - 1.0) * np.exp(-since / (egress / 4.0)), 0.0)
    return np.maximum(share, level), factor * (1.0 + pulse)


def expand_event(incident: Incident, registry: Registry) -> list[Effect]:
    """An event day at a venue (asset) or zone (sensor): ``magnitude`` = peak share of capacity."""
    return [Effect(kind="crowd_event", sensor=s.id, start=incident.start, end=incident.end,
                   magnitude=incident.magnitude, params=dict(incident.params), incident=incident.index)
            for s in resolve(registry, incident.target, DOMAIN)]


def expand_surge(incident: Incident, registry: Registry) -> list[Effect]:
    """A surge or blocked exit: density rises to ``magnitude`` p/m² over ``ramp`` s and holds."""
    return [Effect(kind="crowd_surge", sensor=s.id, start=incident.start, end=incident.end,
                   magnitude=incident.magnitude, params=dict(incident.params), incident=incident.index)
            for s in resolve(registry, incident.target, DOMAIN)]


INCIDENTS = {"crowd_event": expand_event, "crowd_surge": expand_surge}
