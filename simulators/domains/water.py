"""Water supply: node pressure and flow on distribution mains.

Demand follows the Roberts 2005 diurnal curve (REFERENCE §2.2 [W9]) damped toward 0.4-1.6 for a
city-scale DMA ([W11]); pressure is highest at night when demand is lowest ([W15]). A burst steps
the flow up (+10-50 % of average) and drops pressure by 0.02-0.1 MPa or more at the node; the
drop reaches neighbouring nodes on the same main within seconds, weaker (§2.3, [W8]).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lifeline.model import Sensor
from lifeline.registry import Registry
from simulators.base import (
    ROBERTS_2005,
    Array,
    Effect,
    Incident,
    Metrics,
    ar1,
    diurnal,
    label,
    local_hours,
    resolve,
    smoothstep,
)

DOMAIN = "water"
DEMAND_DAMP = 0.6  # multiplier range ~0.46-1.6 (⚠INF per [W11]: aggregation lowers peaks)
HEAD_LOSS_MPA = 0.05  # pressure swing per unit of demand above average (⚠INF)


def demand(ts: Array) -> Array:
    """The city demand multiplier (mean 1) at event times ``ts``."""
    return diurnal(local_hours(ts), ROBERTS_2005, damp=DEMAND_DAMP)


def simulate(
    sensor: Sensor, ts: Array, rng: np.random.Generator, effects: Sequence[Effect], seed: int = 0
) -> Metrics:
    p_normal = label(sensor, "p_normal_mpa", 0.3)
    q_avg = label(sensor, "q_normal_m3h", 40.0)
    d = demand(ts)
    pressure = p_normal - HEAD_LOSS_MPA * (d - 1.0) + ar1(rng, ts.size, 0.9, 0.003)
    pressure = pressure + rng.normal(0.0, 0.001, ts.size)
    flow = q_avg * d * (1.0 + ar1(rng, ts.size, 0.8, 0.03))
    for e in effects:
        if e.kind != "water_burst":
            continue
        rise = smoothstep((ts - e.start) / e.param("ramp", 10.0))
        recover = np.where(ts >= e.end, np.exp(-np.maximum(ts - e.end, 0.0) / e.param("recovery", 120.0)), 1.0)
        shape = rise * recover
        pressure = pressure - e.magnitude * shape
        flow = flow + e.param("flow_step", 0.4) * q_avg * shape
    out: Metrics = {}
    if "pressure_mpa" in sensor.metrics:
        out["pressure_mpa"] = np.clip(pressure, 0.0, None)
    if "flow_m3h" in sensor.metrics:
        out["flow_m3h"] = np.clip(flow, 0.0, None)
    return out


def expand_burst(incident: Incident, registry: Registry) -> list[Effect]:
    """``magnitude`` = pressure drop (MPa) at the burst node; nodes on the same main feel
    ``attenuation`` per hop of it after ``delay_per_hop`` seconds (transients travel fast, [W8])."""
    effects: list[Effect] = []
    for source in resolve(registry, incident.target, DOMAIN, "pressure_mpa")[:1]:
        nodes = sorted((s for s in registry.sensors.values() if s.domain == DOMAIN and s.asset == source.asset),
                       key=lambda s: (label(s, "node", 0.0), s.id))
        at = next(i for i, s in enumerate(nodes) if s.id == source.id)
        attenuation = incident.param("attenuation", 0.5)
        delay = incident.param("delay_per_hop", 5.0)
        flow_step = incident.param("flow_step", 0.4)
        for i, node in enumerate(nodes):
            hops = abs(i - at)
            effects.append(Effect(
                kind="water_burst", sensor=node.id, start=incident.start + hops * delay,
                end=incident.end + hops * delay, magnitude=incident.magnitude * attenuation**hops,
                params={**incident.params, "flow_step": flow_step * attenuation**hops, "hops": hops},
                incident=incident.index,
            ))
    return effects


INCIDENTS = {"water_burst": expand_burst}
