"""Sensor faults, composable on any metric of any sensor: spike, drift, stuck, dropout.

Faults are about the sensor, not the city (REFERENCE §7: data-quality rules come before alerting;
vault-sensor drift [G14]; sensor fouling = a stuck constant, §3.3). They are applied after the
physics, in scenario order, each with its own seeded generator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simulators.base import Array, Metrics, sensor_rng

FAULT_KINDS: tuple[str, ...] = ("spike", "drift", "stuck", "dropout")


@dataclass(frozen=True, slots=True)
class Fault:
    """``metric`` None = every metric of the sensor. Params: spike ``probability`` (0.05) and
    ``magnitude`` (added value; default 5x the metric's spread), at least one spike per fault (one sample
    of the window drawn by the fault's generator when the Bernoulli draws hit none); drift ``rate_per_h``;
    stuck ``value`` (default: the first value in the window).

    A fault may still change nothing the engine receives (a rain gauge stuck at 0 in dry weather, a
    door-zone contact stuck at 1 while the car stays parked); benchmarks/scenario_eval.py calls those
    *unobservable* by comparing the faulted series with the fault-free one."""

    index: int
    kind: str
    sensor: str
    start: float
    end: float
    metric: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


def apply_faults(
    metrics: Metrics, ts: Array, faults: Sequence[Fault], seed: int
) -> tuple[Metrics, NDArray[np.bool_]]:
    """The faulty metrics and the mask of samples still sent (dropout removes samples)."""
    keep = np.ones(ts.size, dtype=bool)
    out = dict(metrics)
    for fault in faults:
        inside = (ts >= fault.start) & (ts < fault.end)
        if fault.kind == "dropout":
            keep &= ~inside
            continue
        rng = sensor_rng(seed, fault.sensor, f"fault{fault.index}")
        for name in sorted(out) if fault.metric is None else [fault.metric]:
            if name in out:
                out[name] = _apply(fault, out[name], ts, inside, rng)
    return out, keep


def _apply(fault: Fault, values: Array, ts: Array, inside: NDArray[np.bool_], rng: np.random.Generator) -> Array:
    values = values.copy()
    if not inside.any():
        return values
    if fault.kind == "spike":
        spread = float(np.std(values)) or 1.0
        magnitude = float(fault.params.get("magnitude", 5.0 * spread))
        hit = inside & (rng.random(ts.size) < float(fault.params.get("probability", 0.05)))
        if not hit.any():
            # A spike fault has at least one spike: with few samples in the window (probability 0.05 over 1 h
            # of 5-min reports draws none about half of the time) the draws may miss them all; then one sample of
            # the window, chosen by the fault's own generator, is hit. Drawn after the Bernoulli draws, so a
            # one-metric fault that already had spikes keeps exactly the ones it had.
            hit[np.flatnonzero(inside)[int(rng.integers(int(inside.sum())))]] = True
        values[hit] = values[hit] + magnitude
    elif fault.kind == "drift":
        rate = float(fault.params.get("rate_per_h", 1.0))
        values[inside] = values[inside] + rate * (ts[inside] - fault.start) / 3600.0
    elif fault.kind == "stuck":
        first = float(values[np.argmax(inside)])
        values[inside] = float(fault.params.get("value", first))
    return values
