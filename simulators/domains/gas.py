"""Gas: methane in adjacent underground spaces (manholes) and pipeline pressure.

Normal sewer wells carry a small, stable biogas background, 0-3 %LEL with a slow daily cycle
driven by temperature (REFERENCE §1.4, [G5]); valve and telecom wells sit near 0. A pipeline leak
ramps up over minutes and then gives large, strongly fluctuating values ([G5]: "a leak gives a
large and strongly fluctuating CH4 fraction; biogas a small and stable one"), and reaches the
neighbouring wells on the same utility corridor later and weaker ([G5], [G15]). Pipe pressure
sits within a few % of its set point and follows demand (pressure classes GB 50028 [G8]).

Each corridor has two pressure transmitters: P1 at the regulator end (chainage 0) and P2 at the far
end (label ``chainage_m``). Both follow the same set point and demand, each with its own noise; the
far end reads a little lower by the head loss along the main, which grows with flow. A regulator
failure or an upstream loss (``gas_pressure``) moves the whole corridor: both transmitters, the far
end a few seconds later.
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

DOMAIN = "gas"

#: Background ranges in %LEL by well type (⚠INF, REFERENCE §1.4: normal sewer well 0-3 %LEL).
_BACKGROUND = {"sewer": (0.8, 1.8), "valve": (0.1, 0.5), "telecom": (0.0, 0.3)}

#: Head loss along a medium-pressure main, as a fraction of the set point per km at mean demand (⚠INF: REFERENCE
#: §1.2 gives the pressure classes only; 0.3 %/km is a lightly loaded distribution main), growing with flow as
#: Q^1.82 (⚠INF: the exponent of Renouard-type medium-pressure formulas). With the damped demand cycle (0.47-1.72
#: of the mean) the 1050-m far end reads 0.1-0.8 % below the regulator end.
HEAD_LOSS_PER_KM = 0.003
HEAD_LOSS_EXPONENT = 1.82
#: A pressure change at the regulator reaches a point ``chainage_m`` down the main after chainage / this speed
#: (⚠INF: about the speed of sound in natural gas, ~430 m/s, rounded down; line pack makes the real far end
#: slower and smoother, which a 60-s transmitter does not resolve). 1050 m: ~3 s.
PRESSURE_WAVE_MPS = 400.0


def simulate(
    sensor: Sensor, ts: Array, rng: np.random.Generator, effects: Sequence[Effect], seed: int = 0
) -> Metrics:
    out: Metrics = {}
    if "ch4_lel" in sensor.metrics:
        out["ch4_lel"] = _methane(sensor, ts, rng, effects)
    if "pressure_mpa" in sensor.metrics:
        out["pressure_mpa"] = _pressure(sensor, ts, rng, effects)
    return out


def _methane(sensor: Sensor, ts: Array, rng: np.random.Generator, effects: Sequence[Effect]) -> Array:
    low, high = _BACKGROUND.get(sensor.labels.get("well_type", "sewer"), _BACKGROUND["sewer"])
    base = rng.uniform(low, high)
    # biogas follows temperature: peak mid-afternoon, +-30 % (⚠INF shape, driver per [G5])
    daily = 1.0 + 0.3 * np.sin(2 * np.pi * (local_hours(ts) - 9.0) / 24.0)
    slow = ar1(rng, ts.size, 0.95, 0.04 * (1 + base))
    fluct = np.clip(1.0 + ar1(rng, ts.size, 0.8, 0.22), 0.75, 1.35)  # ventilation, cover gaps, wind
    value = base * daily + slow + rng.normal(0.0, 0.03, ts.size)
    for e in effects:
        if e.kind == "gas_leak":
            value = value + e.magnitude * _envelope(ts, e) * fluct
    return np.clip(value, 0.0, 100.0)


def _envelope(ts: Array, e: Effect) -> Array:
    """0 before the onset, a smooth ramp over ``ramp`` seconds, 1 until repaired, then ventilates out."""
    ramp = e.param("ramp", 180.0)
    decay = e.param("decay", 300.0)
    rise = smoothstep((ts - e.start) / ramp)
    after = np.where(ts >= e.end, np.exp(-np.maximum(ts - e.end, 0.0) / decay), 1.0)
    return np.asarray(rise * after, dtype=np.float64)


def _pressure(sensor: Sensor, ts: Array, rng: np.random.Generator, effects: Sequence[Effect]) -> Array:
    p_set = label(sensor, "p_set_mpa", 0.3)
    demand = diurnal(local_hours(ts), ROBERTS_2005, damp=0.6)
    # regulators hold the set point; demand pulls it down by a few % (⚠INF: quiet stays inside +-10 %)
    value = p_set * (1.0 - 0.025 * (demand - 1.0)) + ar1(rng, ts.size, 0.9, 0.004 * p_set)
    chainage = label(sensor, "chainage_m", 0.0)
    if chainage > 0.0:  # downstream of the regulator: the head loss along the main
        value = value - p_set * HEAD_LOSS_PER_KM * (chainage / 1000.0) * demand**HEAD_LOSS_EXPONENT
    for e in effects:
        if e.kind == "gas_pressure":
            ramp = e.param("ramp", 60.0)
            shape = smoothstep((ts - e.start) / ramp) * (ts < e.end)
            value = value * (1.0 + e.magnitude * shape)
    return np.clip(value, 0.0, None)


def corridor_of(sensor: Sensor) -> str:
    return sensor.labels.get("corridor", sensor.asset)


def expand_leak(incident: Incident, registry: Registry) -> list[Effect]:
    """The leak at the target well, plus delayed, attenuated plumes at wells up to ``reach`` hops away
    along the same corridor (``delay_per_hop`` s, ``attenuation`` per hop)."""
    sources = resolve(registry, incident.target, DOMAIN, "ch4_lel")
    effects: list[Effect] = []
    for source in sources:
        corridor = corridor_of(source)
        wells = sorted(
            (s for s in registry.sensors.values()
             if s.domain == DOMAIN and "ch4_lel" in s.metrics and corridor_of(s) == corridor),
            key=lambda s: (label(s, "chainage_m", 0.0), s.id),
        )
        at = next(i for i, s in enumerate(wells) if s.id == source.id)
        reach = int(incident.param("reach", 2))
        delay = incident.param("delay_per_hop", 180.0)
        attenuation = incident.param("attenuation", 0.2)
        ramp = incident.param("ramp", 180.0)
        for i, well in enumerate(wells):
            hops = abs(i - at)
            if hops > reach:
                continue
            effects.append(Effect(
                kind="gas_leak", sensor=well.id, start=incident.start + hops * delay,
                end=incident.end + hops * delay, magnitude=incident.magnitude * attenuation**hops,
                params={**incident.params, "ramp": ramp * (1 + hops), "hops": hops}, incident=incident.index,
            ))
    return effects


def expand_pressure(incident: Incident, registry: Registry) -> list[Effect]:
    """A regulator failure or upstream loss on a pipe: ``magnitude`` is the fractional change (-0.3). It is
    corridor-wide: every pressure transmitter of the target's corridor (whether the target names one transmitter
    or the corridor) sees it, ``chainage_m`` / ``PRESSURE_WAVE_MPS`` seconds after the regulator end."""
    corridors = {corridor_of(s) or s.id for s in resolve(registry, incident.target, DOMAIN, "pressure_mpa")}
    pipes = sorted((s for s in registry.sensors.values()
                    if s.domain == DOMAIN and "pressure_mpa" in s.metrics and (corridor_of(s) or s.id) in corridors),
                   key=lambda s: s.id)
    effects = []
    for s in pipes:
        lag = label(s, "chainage_m", 0.0) / PRESSURE_WAVE_MPS
        effects.append(Effect(kind="gas_pressure", sensor=s.id, start=incident.start + lag, end=incident.end + lag,
                              magnitude=incident.magnitude, params=dict(incident.params), incident=incident.index))
    return effects


INCIDENTS = {"gas_leak": expand_leak, "gas_pressure": expand_pressure}
