"""Bridges: first modal frequency with temperature, traffic-driven acceleration RMS, crack
breathing, mid-span deflection.

f1 falls ~0.2 %/°C as the deck warms (REFERENCE §4.3, [B6]; the coefficient is ⚠INF within
-0.1..-0.3 %/°C): f1 = f1_ref * (1 - 0.002 * (T - 20)), with 0.2 % identification scatter. A
stiffness loss is a persistent drop after temperature correction (5 / 10-14 / >=16 % map to the
three Chinese warning grades, [B2]). Acceleration RMS follows traffic with heavy-truck bursts
([B3], [B7]). Cracks breathe with temperature (they close as concrete warms; [B2]: breathing is
normal, monotonic growth is not). Summary metrics are reported every 60 s (real platforms: 50 Hz
raw, modes identified hourly [B2]).

Each span has two accelerometers: S1 at mid-span and S2 at quarter span (label ``position_m``, the
distance from a support). f1 is a property of the span: both see the same temperature-dependent f1
and the same stiffness loss, each with its own identification scatter. The acceleration RMS scales
with the first mode shape at the sensor, sin(pi x / L): 0.71 of mid-span at quarter span. The twins
share the traffic profile but draw their own truck bursts (each sensor owns its generator, so S1's
series stays what it was): minute by minute their RMS agree less than one truck on one span would make
them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lifeline.model import Sensor
from lifeline.registry import Registry
from simulators.base import (
    Array,
    Effect,
    Incident,
    Metrics,
    ar1,
    diurnal,
    label,
    local_hours,
    resolve,
    sensor_rng,
    smoothstep,
)

DOMAIN = "bridge"
F1_PER_DEGC = 0.002  # the brief's -0.2 %/°C (REFERENCE §4.3 [B6], ⚠INF)

#: Urban traffic by hour ending 01:00..24:00 (⚠INF: commuter peaks 08:00 and 18:00, quiet 03:00).
TRAFFIC: tuple[float, ...] = (
    20, 12, 8, 8, 12, 30, 70, 100, 90, 70, 65, 65, 65, 65, 70, 80, 95, 100, 85, 65, 50, 40, 35, 28,
)


def deck_temperature(sensor: Sensor, ts: Array, seed: int) -> Array:
    """Deck temperature (°C): one climate per bridge (seeded by the asset), diurnal +-6 °C peaking
    at 15:00 (⚠INF: REFERENCE §4.3 suggests +-5-10 °C)."""
    climate = sensor_rng(seed, sensor.asset or sensor.id, "climate")
    mean = 20.0 + climate.uniform(-3.0, 3.0)
    return np.asarray(mean + 6.0 * np.sin(2 * np.pi * (local_hours(ts) - 9.0) / 24.0), dtype=np.float64)


def simulate(
    sensor: Sensor, ts: Array, rng: np.random.Generator, effects: Sequence[Effect], seed: int = 0
) -> Metrics:
    temp = deck_temperature(sensor, ts, seed) + ar1(rng, ts.size, 0.95, 0.3)
    traffic = diurnal(local_hours(ts), TRAFFIC, damp=1.0)
    out: Metrics = {}
    if "temp_c" in sensor.metrics:
        out["temp_c"] = temp + rng.normal(0.0, 0.05, ts.size)
    if "freq1_hz" in sensor.metrics:
        f1_ref = label(sensor, "f1_ref_hz", 4.0)
        loss = np.zeros_like(ts)
        for e in effects:
            if e.kind == "stiffness_loss":
                loss = loss + e.magnitude * smoothstep((ts - e.start) / e.param("ramp", 60.0)) * (ts < e.end)
        f1 = f1_ref * (1.0 - F1_PER_DEGC * (temp - 20.0)) * (1.0 - loss)
        out["freq1_hz"] = f1 * (1.0 + rng.normal(0.0, 0.002, ts.size))
    if "accel_rms_mg" in sensor.metrics:
        trucks = np.where(rng.random(ts.size) < 0.03 * traffic, rng.uniform(1.5, 3.0, ts.size), 1.0)
        out["accel_rms_mg"] = (0.4 + 1.6 * traffic * rng.lognormal(0.0, 0.25, ts.size)) * trucks
        if "position_m" in sensor.labels:  # off mid-span (S1 has no label: mid-span, factor 1)
            out["accel_rms_mg"] = out["accel_rms_mg"] * mode_shape(sensor)
    if "crack_mm" in sensor.metrics:
        width = label(sensor, "crack_w0_mm", 0.12) - 0.002 * (temp - 20.0)
        for e in effects:
            if e.kind == "crack_growth":
                progress = np.clip((ts - e.start) / max(e.end - e.start, 1.0), 0.0, 1.0)
                width = width + e.magnitude * progress
        out["crack_mm"] = np.clip(width + rng.normal(0.0, 0.001, ts.size), 0.0, None)
    if "deflection_mm" in sensor.metrics:
        live = -1.5 * traffic * rng.random(ts.size)  # per-vehicle -3..+1.5 mm for PSC spans [B3]
        thermal = label(sensor, "thermal_mm_per_degc", -0.15) * (temp - 20.0)  # deck camber with temperature ⚠INF
        out["deflection_mm"] = thermal + live + rng.normal(0.0, 0.05, ts.size)
    return out


def mode_shape(sensor: Sensor) -> float:
    """The first bending mode of a simply supported span at the sensor, sin(pi x / L), 1 at mid-span: the
    acceleration RMS factor of an off-centre accelerometer (⚠INF: the first mode dominates the RMS; higher modes
    and the local wheel impact add a little at quarter span, where this gives 0.71)."""
    span = label(sensor, "span_m", 0.0)
    if span <= 0.0:
        return 1.0
    x = min(max(label(sensor, "position_m", span / 2), 0.0), span)
    return math.sin(math.pi * x / span)


def expand_stiffness(incident: Incident, registry: Registry) -> list[Effect]:
    """A stiffness loss on a bridge: ``magnitude`` = fractional f1 drop (0.12 = 12 %). f1 is a property of the
    span, so every f1 sensor of the target's bridge sees it, whether the target names the bridge or one sensor."""
    bridges = {s.asset or s.id for s in resolve(registry, incident.target, DOMAIN, "freq1_hz")}
    return [Effect(kind="stiffness_loss", sensor=s.id, start=incident.start, end=incident.end,
                   magnitude=incident.magnitude, params=dict(incident.params), incident=incident.index)
            for s in sorted(registry.sensors.values(), key=lambda s: s.id)
            if s.domain == DOMAIN and "freq1_hz" in s.metrics and (s.asset or s.id) in bridges]


def expand_crack(incident: Incident, registry: Registry) -> list[Effect]:
    """Crack growth: width grows by ``magnitude`` mm linearly over the window."""
    return [Effect(kind="crack_growth", sensor=s.id, start=incident.start, end=incident.end,
                   magnitude=incident.magnitude, params=dict(incident.params), incident=incident.index)
            for s in resolve(registry, incident.target, DOMAIN, "crack_mm")]


INCIDENTS = {"stiffness_loss": expand_stiffness, "crack_growth": expand_crack}
