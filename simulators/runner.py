"""Run a scenario over a registry: physics per sensor, incidents, faults, then one merged,
time-ordered stream of readings and the ground truth.

Output is deterministic byte for byte for a given (registry, scenario, seed): rows sorted by
(ts, sensor id), values rounded per metric, JSON written by orjson.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import orjson
from numpy.typing import NDArray

from lifeline.model import Sensor
from lifeline.registry import Registry
from lifeline.timefmt import rfc3339
from simulators.base import Array, Effect, Metrics, sample_times, sensor_rng
from simulators.domains import INCIDENTS, MODELS
from simulators.faults import Fault, apply_faults
from simulators.scenario import Scenario, ScenarioError

#: decimals on the wire; 0 = an integer state (0/1)
DECIMALS: dict[str, int] = {
    "ch4_lel": 2, "pressure_mpa": 4, "flow_m3h": 2, "depth_cm": 1, "fill_ratio": 3, "rain_mm_5min": 1,
    "freq1_hz": 4, "temp_c": 2, "accel_rms_mg": 3, "crack_mm": 4, "deflection_mm": 3,
    "passenger": 0, "moving": 0, "door_closed": 0, "door_zone": 0, "speed_ratio": 3,
    "density_ppm2": 3, "occupancy_pct": 2,
}
TRUTH_TAIL_S = 600.0  # peaks are taken over the effect window plus this tail (decay, egress)

Progress = Callable[[str], None]


@dataclass(slots=True)
class Stream:
    """One sensor's readings: event times, sequence numbers (1.. per sensor) and metric columns."""

    sensor: Sensor
    ts: Array
    seq: NDArray[np.int64]
    metrics: Metrics

    def column(self, metric: str) -> list[Any]:
        values = self.metrics[metric]
        digits = DECIMALS.get(metric, 4)
        if digits == 0:
            return [int(v) for v in np.round(values).astype(np.int64).tolist()]
        return list(np.round(values, digits).tolist())


@dataclass(slots=True)
class Run:
    scenario: Scenario
    streams: list[Stream]
    effects: list[Effect]
    elapsed_s: float = 0.0
    _rows: list[tuple[float, str, str, int, dict[str, Any]]] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(s.ts.size for s in self.streams)

    def rows(self) -> list[tuple[float, str, str, int, dict[str, Any]]]:
        """(ts, sensor, domain, seq, metrics) sorted by ts then sensor id."""
        if not self._rows and len(self):
            self._rows = _merge(self.streams)
        return self._rows

    def lines(self) -> Iterator[bytes]:
        """JSON lines: the wire payload plus ``sensor`` and ``domain``."""
        for ts, sensor, domain, seq, metrics in self.rows():
            yield orjson.dumps({"ts": ts, "sensor": sensor, "domain": domain, "seq": seq, "metrics": metrics})

    def write_jsonl(self, out: BinaryIO, progress: Progress | None = None) -> int:
        count = 0
        total = len(self)
        step = max(total // 10, 1)
        for line in self.lines():
            out.write(line + b"\n")
            count += 1
            if progress and count % step == 0:
                progress(f"wrote {count}/{total} readings ({100 * count // max(total, 1)} %)")
        return count

    def truth(self) -> dict[str, Any]:
        return _truth(self)


def generate(
    registry: Registry,
    scenario: Scenario,
    *,
    seed: int | None = None,
    duration: float | None = None,
    start: float | None = None,
    progress: Progress | None = None,
) -> Run:
    """Simulate ``scenario`` over the selected sensors of ``registry``; overrides move the run in time
    (incidents and faults keep their offsets from the scenario start)."""
    began = time.perf_counter()
    scenario = _override(scenario, seed, duration, start)
    problems: list[str] = []
    effects = _expand(scenario, registry, problems)
    for f in scenario.faults:
        if f.sensor not in registry.sensors:
            problems.append(f"{scenario.source}: faults[{f.index}].sensor: unknown sensor {f.sensor!r}")
    sensors = scenario.selection.pick(registry)
    if not sensors:
        problems.append(f"{scenario.source}: sensors: the selection matches no sensor in the registry")
    if problems:
        raise ScenarioError(problems)
    by_sensor: dict[str, list[Effect]] = {}
    for e in effects:
        by_sensor.setdefault(e.sensor, []).append(e)
    streams = []
    for i, sensor in enumerate(sensors):
        faults = [f for f in scenario.faults if f.sensor == sensor.id]
        streams.append(simulate_sensor(sensor, scenario, by_sensor.get(sensor.id, []), faults))
        if progress and (i + 1) % 100 == 0:
            progress(f"simulated {i + 1}/{len(sensors)} sensors")
    return Run(scenario, streams, effects, elapsed_s=time.perf_counter() - began)


def simulate_sensor(sensor: Sensor, scenario: Scenario, effects: list[Effect], faults: list[Fault]) -> Stream:
    """One sensor's stream: a function of (sensor, scenario times, seed, its effects and faults) only."""
    model = MODELS.get(sensor.domain)
    # A model with ``report_step`` reports on a finer grid while something happens (an elevator every 5 s while
    # it runs) and at the registry's interval otherwise: it is simulated on that grid and ``report`` picks the
    # instants the device would send (seq numbers what is sent; a dropout fault then leaves gaps).
    step = getattr(model, "report_step", None) if model is not None else None
    ts = sample_times(sensor_rng(scenario.seed, sensor.id, "phase"), scenario.start, scenario.duration,
                      sensor.interval_s if step is None else step(sensor))
    if model is None:
        return Stream(sensor, ts[:0], np.zeros(0, dtype=np.int64), {})
    metrics: Metrics = model.simulate(sensor, ts, sensor_rng(scenario.seed, sensor.id), effects, scenario.seed)
    if step is not None:
        sent = model.report(sensor, ts, metrics)
        ts, metrics = ts[sent], {k: v[sent] for k, v in metrics.items()}
    metrics, keep = apply_faults(metrics, ts, faults, scenario.seed)
    seq = np.arange(1, ts.size + 1, dtype=np.int64)  # a dropout leaves a gap, as a lost uplink would
    return Stream(sensor, ts[keep], seq[keep], {k: v[keep] for k, v in metrics.items()})


def _override(s: Scenario, seed: int | None, duration: float | None, start: float | None) -> Scenario:
    from dataclasses import replace

    shift = 0.0 if start is None else start - s.start
    incidents = tuple(replace(i, start=i.start + shift, end=i.end + shift) for i in s.incidents)
    faults = tuple(replace(f, start=f.start + shift, end=f.end + shift) for f in s.faults)
    return replace(s, seed=s.seed if seed is None else seed, duration=s.duration if duration is None else duration,
                   start=s.start + shift, incidents=incidents, faults=faults)


def _expand(scenario: Scenario, registry: Registry, problems: list[str]) -> list[Effect]:
    effects: list[Effect] = []
    for incident in scenario.incidents:
        found = INCIDENTS[incident.kind](incident, registry)
        if not found:
            problems.append(f"{scenario.source}: incidents[{incident.index}].target: no sensor fits a "
                            f"{incident.kind} incident at {incident.target!r}")
        effects.extend(found)
    return effects


def _merge(streams: list[Stream]) -> list[tuple[float, str, str, int, dict[str, Any]]]:
    ordered = sorted(streams, key=lambda s: s.sensor.id)
    ts = np.concatenate([s.ts for s in ordered]) if ordered else np.zeros(0)
    rank = np.concatenate([np.full(s.ts.size, i) for i, s in enumerate(ordered)]) if ordered else np.zeros(0)
    local = np.concatenate([np.arange(s.ts.size) for s in ordered]) if ordered else np.zeros(0)
    per_stream: list[tuple[str, str, list[float], list[int], list[dict[str, Any]]]] = []
    for s in ordered:
        names = sorted(s.metrics)
        cols = [s.column(n) for n in names]
        dicts = [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)] if names else []
        per_stream.append((s.sensor.id, s.sensor.domain, s.ts.tolist(), s.seq.tolist(), dicts))
    rows = []
    for r, k in zip(rank[np.lexsort((rank, ts))].tolist(), local[np.lexsort((rank, ts))].tolist(), strict=True):
        sid, domain, tss, seqs, dicts = per_stream[int(r)]
        rows.append((tss[k], sid, domain, seqs[k], dicts[k]))
    return rows


def _truth(run: Run) -> dict[str, Any]:
    sc = run.scenario
    streams = {s.sensor.id: s for s in run.streams}
    incidents = []
    for inc in sc.incidents:
        affected = []
        for e in (e for e in run.effects if e.incident == inc.index and e.sensor in streams):
            stream = streams[e.sensor]
            inside = (stream.ts >= e.start) & (stream.ts < e.end + TRUTH_TAIL_S)
            peak = {m: {"min": round(float(v[inside].min()), 4), "max": round(float(v[inside].max()), 4)}
                    for m, v in sorted(stream.metrics.items()) if inside.any()}
            affected.append({"sensor": e.sensor, "start": e.start, "end": e.end,
                             "magnitude": round(e.magnitude, 6), "peak": peak})
        incidents.append({
            "index": inc.index, "kind": inc.kind, "target": inc.target, "start": inc.start, "end": inc.end,
            "start_at": rfc3339(inc.start), "end_at": rfc3339(inc.end), "magnitude": inc.magnitude,
            "params": dict(inc.params), "affected": affected,
            "expect": [x.to_dict() for x in sc.incident_expect.get(inc.index, ())],
        })
    faults = [{"index": f.index, "kind": f.kind, "sensor": f.sensor, "metric": f.metric, "start": f.start,
               "end": f.end, "start_at": rfc3339(f.start), "end_at": rfc3339(f.end), "params": dict(f.params),
               "simulated": f.sensor in streams} for f in sc.faults]
    expect = [x.to_dict() for xs in sc.incident_expect.values() for x in xs] + [x.to_dict() for x in sc.expect]
    return {
        "scenario": sc.name, "seed": sc.seed, "start": sc.start, "end": sc.end,
        "start_at": rfc3339(sc.start), "end_at": rfc3339(sc.end),
        "sensors": sorted(streams), "readings": len(run), "incidents": incidents, "faults": faults,
        "expect": expect,
    }
