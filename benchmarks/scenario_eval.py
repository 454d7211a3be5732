"""Scenario evaluation: simulated incidents and sensor faults through the shipped rule packs.

    python -m benchmarks.scenario_eval [--seeds 5] [--quiet-days 3] [--rules rules/] [--jobs 2]

Writes ``benchmarks/results/scenario_eval.md`` and ``benchmarks/results/scenario_eval.json``, and two plots
linked from the markdown (matplotlib, the ``bench`` extra): ``scenario_eval_recall.png`` (recall per domain)
and ``scenario_eval_ttd.png`` (time to detect per domain); progress
goes to stderr. Everything runs in-process: the simulators (``simulators.runner.generate``) make the
readings, ``Reading``s are built straight from ``Run.rows()`` (one payload = one row = one group of
readings in one ``Engine.process`` call, as docs/engine.md requires) and the real ``Engine`` with the
packs of ``--rules`` (``lifeline.rules.loader.load_rules``) judges them. Same seeds and same rules give
the same figures (the JSON's ``figures`` part is byte-identical; only ``run`` — machine and seconds — moves).

Three suites, all on the demo city (``lifeline/data/demo_city``), on 2026-07-15 (a dry summer day):

1. **Incidents.** For every incident kind of every domain (``simulators.domains.INCIDENTS``), three
   magnitude tiers (``TIERS`` below: a weak-but-real one, a middle one, a strong one, taken from the
   ranges in simulators/README.md, the module docstrings and shared/domain/REFERENCE.md) times
   ``--seeds`` seeds. Each instance is its own scenario (built as a dict and parsed with
   ``parse_scenario``): the target is drawn deterministically from the register (``random.Random`` seeded
   with ``kind|tier|seed``), so is the local start hour; the incident starts after ``--warmup`` (2 h) of
   normal data (detectors need history) and the run lasts until the end of the scoring window. The
   simulated sensors are every sensor of the incident's domain in the districts the incident touches
   (so neighbourhood rules see the unaffected neighbours too). ``pump_failure`` is not observable
   without rain: it is paired with a 1-h storm on the same underpass, the heaviest whole-mm storm that on
   its own keeps the simulated depth below 4 cm (80 % of the 5-cm blue bound); a control run with the
   storm but no pump failure must raise no safety alert on the underpass, else the instance is flagged
   ``confounded``. The shipped scenarios with incidents, ``demo`` (run for 3 h, as
   tests/scenario does, so the 2-h persistence of the bridge f1 rule can elapse) and ``e2e_small``, are
   scored the same way (incidents that share a sensor and overlap in time are flagged ``overlaps``).

   **Matching.** An incident is detected when a *safety* alert *fires* (event ``fired``) on one of its
   affected sensors (truth ``affected[].sensor``; a group alert — subject ``corridor:C1`` — counts for
   every member of the group) at a time in [incident start, end + grace], where end is the latest end
   of its affected sensors' effect windows (neighbours see a leak or a burst later) and grace =
   ``--grace`` (15 min: the simulators' decay/egress tail is 10 min; rules with a 10-min persistence
   need the rest). Time to detect (TTD) = first such alert's ts - incident start. Medians and 95th
   percentiles interpolate linearly between order statistics (numpy's default).

2. **Fault-free data.** The ``quiet`` scenario over the whole city for ``--quiet-days`` days from
   00:00 local time with its own seed, one engine shard per district (every rule and rule group stays
   within a district; a sensor's stream does not depend on which others are simulated). Each shard is
   simulated once over the whole span (numpy, a few MB a day) and fed to its engine in 1-h windows of
   ``Run.rows()``: bounded memory, engine state kept across windows, no seams in the physics. Every safety
   alert fired is a false alarm; the rate is per 1,000 sensor-days (sensors that reported x days).
   Health and nodata findings on the same data are listed too.

3. **Sensor faults.** Every fault kind of ``simulators/faults.py`` (spike, drift, stuck, dropout) on one
   sensor of every domain per seed (a different district per fault, the sensor type and metric rotating
   with the seed; ``FAULT_SPECS`` below gives durations and parameters). One scenario per seed: the
   whole city, faults starting after the warm-up. A fault is *reported as health* when a health or
   nodata alert fires on its sensor in [fault start, end + grace], *misreported as safety* when a
   safety alert fires on it in that span (a fault can be both), *missed* when neither. The target
   counts a fault as correctly reported when it has a health/nodata finding and no safety alert. The
   shipped ``faults`` scenario and the stuck sensor of ``e2e_small`` are scored too.

   **Observability.** A fault can change nothing the engine receives: a rain gauge stuck at 0 in dry
   weather, a door-zone contact stuck at 1 while the car stays parked (a spike fault always has at least
   one spike, see simulators/faults.py). ``fault_observability`` simulates the fault's sensor again
   without that fault (same scenario, effects and other faults, hence the same generators) and compares
   the two series inside the window as sent on the wire (rounded per metric); identical = *unobservable*.
   A dropout always changes what is received. The ≥ 90 % target is judged over the **observable**
   faults, because no rule set can report a fault that left every reading as it would have been; the
   same figure over all injected faults is reported next to it, and every fault, unobservable ones
   included (with why), stays in the tables. Only this comparison excludes a fault from the target.

Safety alerts in the incident and fault suites that match no incident window are listed as
"unattributed" (a pre-incident alert during the warm-up, a false alarm on a neighbour, ...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import plots
from lifeline import paths
from lifeline.engine import Engine
from lifeline.model import AlertEvent, EventKind, Reading
from lifeline.registry import Registry, load_registry
from lifeline.rules.loader import load_rules
from lifeline.rules.model import RuleSet
from lifeline.timefmt import parse_duration, parse_ts, rfc3339
from simulators.domains import INCIDENTS, MODELS
from simulators.faults import FAULT_KINDS
from simulators.runner import Run, Stream, generate, simulate_sensor
from simulators.scenario import Selection, load_scenario, parse_scenario

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DAY0 = parse_ts("2026-07-15T00:00:00+08:00")  # local midnight of the simulated day (Hefei, UTC+8)
LOCAL = 8 * 3600.0
DOMAINS = ("gas", "water", "drainage", "bridge", "elevator", "crowd")
KIND_DOMAIN: dict[str, str] = {k: m.DOMAIN for m in MODELS.values() for k in m.INCIDENTS}
HEALTH_KINDS = ("health", "nodata")
FEED_WINDOW_S = 3600.0  # the quiet suite feeds the engine one hour of rows at a time
PUMP_RAIN_LIMIT_CM = 4.0  # the pump-failure storm alone must keep the underpass below this


# ---- what is injected -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Tier:
    """One magnitude tier of an incident kind: ``magnitude`` as the simulators define it per kind."""

    name: str
    magnitude: float | None
    duration: str
    params: Mapping[str, Any] = field(default_factory=dict)
    why: str = ""

    def label(self, unit: str = "") -> str:
        extra = ", ".join(f"{k} {v}" for k, v in self.params.items())
        mag = "" if self.magnitude is None else f"{self.magnitude:g}{unit}"
        return " ".join(x for x in (mag, f"for {self.duration}", f"({extra})" if extra else "") if x)


#: Per kind: weak-but-real, middle, strong. Units: see simulators/README.md.
TIERS: dict[str, tuple[Tier, ...]] = {
    "gas_leak": (  # peak %LEL at the source well; REFERENCE §1: leak swings 10-60 %LEL, onset minutes..3 h
        Tier("weak", 10, "90m", {"ramp": "30m"}, "small leak, slow onset: ~7-14 %LEL at the source"),
        Tier("medium", 25, "60m", {"ramp": "10m"}, "orange-level leak"),
        Tier("strong", 60, "45m", {"ramp": "3m"}, "large leak, fast onset"),
    ),
    "gas_pressure": (  # fractional change; REFERENCE: +-10 % blue .. >=30 % drop red
        Tier("weak", -0.12, "30m", {}, "12 % drop: just past the 10 % blue bound"),
        Tier("over", 0.15, "30m", {}, "regulator failure: 15 % over-pressure"),
        Tier("strong", -0.35, "20m", {}, "upstream loss: 35 % drop"),
    ),
    "water_burst": (  # pressure drop (MPa) at the node, flow step x q_normal; REFERENCE §2.3: 0.02-0.1 MPa, +10-50 %
        Tier("weak", 0.03, "60m", {"flow_step": 0.2}, "small burst: -0.03 MPa, +20 % flow"),
        Tier("medium", 0.06, "60m", {"flow_step": 0.35}, "REFERENCE red: a drop >=0.05 MPa; +35 % flow"),
        Tier("strong", 0.12, "60m", {"flow_step": 0.6}, "large burst: -0.12 MPa, +60 % flow"),
    ),
    "rainstorm": (  # total mm over the duration (Chicago storm); CMA: orange 50 mm/3 h, red 100 mm/3 h
        Tier("weak", 50, "3h", {}, "CMA orange-signal rate: 50 mm in 3 h"),
        Tier("medium", 30, "1h", {}, "short-duration heavy rain: 30 mm in 1 h"),
        Tier("strong", 100, "3h", {}, "CMA red-signal rate: 100 mm in 3 h"),
    ),
    "pump_failure": (  # drain-down slowdown factor; paired with a sub-alert storm (see the module docstring)
        Tier("weak", None, "90m", {"slowdown": 5}, "pump at a fifth of capacity"),
        Tier("medium", None, "90m", {"slowdown": 10}, "simulator default"),
        Tier("strong", None, "90m", {"slowdown": 20}, "pump tripped"),
    ),
    "stiffness_loss": (  # fractional f1 drop; [B2]: 5 % / 10-14 % / >=16 % = the three Chinese grades
        Tier("weak", 0.05, "4h", {"ramp": "60s"}, "三级 (5 %)"),
        Tier("medium", 0.10, "4h", {"ramp": "60s"}, "二级 (10 %)"),
        Tier("strong", 0.16, "4h", {"ramp": "60s"}, "一级 (16 %)"),
    ),
    "crack_growth": (  # mm added linearly over the window; [B2]: growth >0.01 mm/day is a warning
        Tier("weak", 0.05, "60m", {}, "+0.05 mm"),
        Tier("medium", 0.10, "60m", {}, "+0.10 mm"),
        Tier("strong", 0.20, "60m", {}, "+0.20 mm"),
    ),
    "trapped": (  # no magnitude; door_zone 1 = at a floor, 0 = between floors; firmware: 90 s / 15 s
        Tier("floor-short", None, "2m", {"door_zone": 1}, "at a floor, released after 2 min"),
        Tier("floor-long", None, "20m", {"door_zone": 1}, "at a floor, 20 min"),
        Tier("between", None, "5m", {"door_zone": 0}, "between floors, 5 min"),
    ),
    "overspeed": (  # speed / rated; governor trip >=115 % (GB 7588)
        Tier("weak", 1.18, "2m", {}, "118 % of rated"),
        Tier("medium", 1.25, "2m", {}, "simulator default"),
        Tier("strong", 1.4, "2m", {}, "140 % of rated"),
    ),
    "crowd_event": (  # peak share of capacity at a venue (kind=venue); Badaling 60 / 80 / 100 %
        Tier("weak", 0.6, "90m", {"ramp": "30m", "egress": "15m"}, "60 % of capacity"),
        Tier("medium", 0.8, "90m", {"ramp": "30m", "egress": "15m"}, "80 % of capacity"),
        Tier("strong", 0.95, "90m", {"ramp": "30m", "egress": "15m"}, "95 % of capacity"),
    ),
    "crowd_surge": (  # density reached, p/m²; [C4][C5]: 2 packed, 4 danger, 5+ dangerous
        Tier("weak", 2.5, "15m", {"ramp": "3m"}, "packed: 2.5 p/m²"),
        Tier("medium", 4.5, "15m", {"ramp": "3m"}, "danger zone: 4.5 p/m²"),
        Tier("strong", 6.0, "15m", {"ramp": "3m"}, "crush risk: 6 p/m²"),
    ),
}

UNITS: dict[str, str] = {
    "gas_leak": " %LEL peak", "gas_pressure": " (fraction of pressure)", "water_burst": " MPa drop",
    "rainstorm": " mm", "stiffness_loss": " f1 drop", "crack_growth": " mm added", "overspeed": "x rated speed",
    "crowd_event": "x capacity", "crowd_surge": " p/m²",
}

#: Fault durations (s) and parameters. Spike: the simulator default (probability 0.05, +5x the metric's
#: spread over the run). Drift: per metric, a zero drift of roughly a tenth of the operating value an
#: hour (vault-sensor drift [G14], accelerated to fit the window); relative rates use the sensor's label.
FAULT_SPECS: dict[str, tuple[float, dict[str, Any]]] = {
    "spike": (3600.0, {"probability": 0.05}),
    "drift": (7200.0, {}),
    "stuck": (3600.0, {}),
    "dropout": (1800.0, {}),
}
#: metric -> (absolute rate per hour, or None; relative rate per hour; label giving the reference value)
DRIFT_RATES: dict[str, tuple[float | None, float, str]] = {
    "ch4_lel": (1.5, 0.0, ""), "pressure_mpa": (None, -0.05, "p_set_mpa|p_normal_mpa"),
    "flow_m3h": (None, 0.10, "q_normal_m3h"), "depth_cm": (2.0, 0.0, ""), "fill_ratio": (0.1, 0.0, ""),
    "rain_mm_5min": (0.2, 0.0, ""), "freq1_hz": (None, -0.01, "f1_ref_hz"), "crack_mm": (0.02, 0.0, ""),
    "deflection_mm": (-1.0, 0.0, ""), "temp_c": (2.0, 0.0, ""), "accel_rms_mg": (0.5, 0.0, ""),
    "speed_ratio": (0.05, 0.0, ""), "density_ppm2": (0.2, 0.0, ""), "occupancy_pct": (5.0, 0.0, ""),
}
#: metrics a fault may hit, in rotation order (booleans only for stuck: a drifting or spiking 0/1 is meaningless)
FAULT_METRICS: tuple[str, ...] = (
    "ch4_lel", "pressure_mpa", "flow_m3h", "depth_cm", "fill_ratio", "rain_mm_5min", "freq1_hz", "crack_mm",
    "deflection_mm", "temp_c", "accel_rms_mg", "speed_ratio", "passenger", "door_zone", "door_closed", "moving",
    "density_ppm2", "occupancy_pct",
)
BOOLEAN_METRICS = frozenset({"passenger", "door_zone", "door_closed", "moving"})


# ---- records and the pure matching logic ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Alert:
    """One alert transition that matters here: ``fired`` (and ``escalated``, for the level reached)."""

    id: str
    rule: str
    kind: str  # safety | health | nodata
    event: str  # fired | escalated
    subject: str
    sensor: str
    domain: str
    ts: float
    level: str
    value: float | None
    message: str = ""

    @classmethod
    def of(cls, e: AlertEvent) -> Alert:
        return cls(e.id, e.rule, e.kind.value, e.event.value, e.subject, e.sensor, e.domain, e.ts, e.level.colour,
                   None if e.value is None or not math.isfinite(e.value) else round(e.value, 4), e.message)

    def row(self) -> dict[str, Any]:
        return {"alert": self.id, "rule": self.rule, "kind": self.kind, "subject": self.subject, "sensor": self.sensor,
                "at": rfc3339(self.ts), "ts": self.ts, "level": self.level, "value": self.value,
                "message": self.message}


@dataclass(frozen=True, slots=True)
class IncidentCase:
    id: str
    scenario: str
    source: str  # suite | demo | e2e_small
    domain: str
    kind: str
    tier: str
    magnitude: float | None
    target: str
    start: float
    end: float  # latest end of the affected sensors' effect windows
    sensors: tuple[str, ...]
    peaks: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IncidentResult:
    case: IncidentCase
    detected: bool
    ttd_s: float | None
    first: Alert | None
    max_level: str | None
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FaultCase:
    id: str
    scenario: str
    source: str
    domain: str
    kind: str
    sensor: str
    metric: str | None
    start: float
    end: float
    params: Mapping[str, Any] = field(default_factory=dict)
    #: False when the fault changed no reading the engine received (see ``fault_observability``)
    observable: bool = True
    why: str = ""  # for an unobservable fault: what the fault-free series read instead


@dataclass(frozen=True, slots=True)
class FaultResult:
    case: FaultCase
    health: tuple[Alert, ...]
    safety: tuple[Alert, ...]

    @property
    def outcome(self) -> str:
        if self.health and not self.safety:
            return "health"
        if self.health:
            return "both"
        return "safety" if self.safety else "missed"


Groups = Mapping[str, frozenset[str]]


def alert_sensors(a: Alert, groups: Groups | None = None) -> frozenset[str]:
    """The sensors an alert is about: its sensor and subject, and every member of a group subject."""
    extra = groups.get(a.subject, frozenset()) if groups else frozenset()
    return frozenset((a.sensor, a.subject)) | extra


def group_members(subject: str, registry: Registry) -> frozenset[str]:
    """Members of a group subject such as ``corridor:C1`` (a label) or ``asset:LY-BRG-B1``; a sensor id: itself."""
    if subject in registry.sensors:
        return frozenset((subject,))
    key, sep, value = subject.partition(":")
    if not sep:
        return frozenset()
    attrs = ("asset", "district", "asset_type", "domain")
    return frozenset(s.id for s in registry.sensors.values()
                     if s.labels.get(key) == value or (key in attrs and getattr(s, key) == value))


def match_incident(case: IncidentCase, alerts: Sequence[Alert], grace_s: float, groups: Groups | None = None
                   ) -> IncidentResult:
    """Detected when a safety alert fires on an affected sensor in [start, end + grace]; TTD from the first."""
    lo, hi, mine = case.start, case.end + grace_s, frozenset(case.sensors)
    inside = [a for a in alerts if a.kind == "safety" and lo <= a.ts <= hi and alert_sensors(a, groups) & mine]
    fired = sorted((a for a in inside if a.event == "fired"), key=lambda a: (a.ts, a.rule, a.subject))
    first = fired[0] if fired else None
    order = ("blue", "yellow", "orange", "red")
    top = max((a.level for a in inside), key=order.index) if inside else None
    return IncidentResult(case, first is not None, None if first is None else round(first.ts - case.start, 3),
                          first, top, tuple(sorted({a.rule for a in fired})))


def match_fault(case: FaultCase, alerts: Sequence[Alert], grace_s: float, groups: Groups | None = None
                ) -> FaultResult:
    """Health/nodata and safety alerts fired on the fault's sensor in [start, end + grace]."""
    lo, hi = case.start, case.end + grace_s
    mine = [a for a in alerts if a.event == "fired" and lo <= a.ts <= hi
            and case.sensor in alert_sensors(a, groups)]
    return FaultResult(case, tuple(a for a in mine if a.kind in HEALTH_KINDS),
                       tuple(a for a in mine if a.kind == "safety"))


def unattributed(alerts: Sequence[Alert], windows: Iterable[tuple[float, float, frozenset[str]]],
                 groups: Groups | None = None) -> list[Alert]:
    """Safety alerts fired outside every (start, end, sensors) window: false alarms of the incident/fault runs."""
    spans = list(windows)
    return [a for a in alerts if a.kind == "safety" and a.event == "fired" and not any(
        lo <= a.ts <= hi and alert_sensors(a, groups) & s for lo, hi, s in spans)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile, linear between order statistics (numpy's default); None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def incident_summary(results: Sequence[IncidentResult], key: Callable[[IncidentResult], str],
                     order: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Per key: incidents, detected, recall, median and 95th-percentile TTD (s) over the detected ones."""
    out: dict[str, Any] = {}
    for k in sorted({key(r) for r in results}, key=order or _domain_order):
        group = [r for r in results if key(r) == k]
        ttd = [r.ttd_s for r in group if r.ttd_s is not None]
        out[k] = {"incidents": len(group), "detected": sum(r.detected for r in group),
                  "recall": round(sum(r.detected for r in group) / len(group), 4),
                  "ttd_median_s": _r(percentile(ttd, 50)), "ttd_p95_s": _r(percentile(ttd, 95))}
    return out


def fault_summary(results: Sequence[FaultResult]) -> dict[str, dict[str, dict[str, int]]]:
    """kind -> domain -> {faults, health, safety, missed, correct, unobservable, observable, correct_observable}
    (health and safety both count 'both')."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for r in results:
        c = out.setdefault(r.case.kind, {}).setdefault(r.case.domain, Counter())
        c["faults"] += 1
        c["health"] += bool(r.health)
        c["safety"] += bool(r.safety)
        c["missed"] += r.outcome == "missed"
        c["correct"] += r.outcome == "health"
        c["unobservable"] += not r.case.observable
        c["observable"] += r.case.observable
        c["correct_observable"] += r.case.observable and r.outcome == "health"
    kinds = sorted(out, key=lambda k: (FAULT_KINDS.index(k) if k in FAULT_KINDS else len(FAULT_KINDS), k))
    return {k: {d: dict(out[k][d]) for d in sorted(out[k], key=_domain_order)} for k in kinds}


def false_alarm_rate(count: int, sensor_days: float) -> float | None:
    return None if sensor_days <= 0 else round(1000.0 * count / sensor_days, 3)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _domain_order(k: str) -> tuple[int, str]:
    return (DOMAINS.index(k) if k in DOMAINS else len(DOMAINS), k)


def _kind_tier_order(key: str) -> tuple[int, str, int, str]:
    d, kind, tier = key.split("|")
    names = [t.name for t in TIERS.get(kind, ())]
    return (_domain_order(d)[0], kind, names.index(tier) if tier in names else len(names), tier)


# ---- engine plumbing ----------------------------------------------------------------------------------------------

def readings_of(rows: Iterable[tuple[float, str, str, int, dict[str, Any]]]) -> list[Reading]:
    """Run.rows() -> Readings; one row is one payload, its readings stay adjacent (one group)."""
    out: list[Reading] = []
    append = out.append
    for ts, sensor, domain, seq, metrics in rows:
        for m, v in metrics.items():
            append(Reading(sensor, domain, m, ts, float(v), seq))
    return out


def feed(engine: Engine, rows: Sequence[tuple[float, str, str, int, dict[str, Any]]]) -> list[Alert]:
    """Whole payloads in one process call; keep fired and escalated transitions."""
    events = engine.process(readings_of(rows)).events
    keep = (EventKind.FIRED, EventKind.ESCALATED)
    return [Alert.of(e) for e in events if e.event in keep]


def window_rows(run: Run, t0: float, t1: float) -> list[tuple[float, str, str, int, dict[str, Any]]]:
    """The rows of ``run`` with t0 <= ts < t1 (same rounding and order as ``Run.rows()``)."""
    streams = []
    for s in run.streams:
        m = (s.ts >= t0) & (s.ts < t1)
        streams.append(Stream(s.sensor, s.ts[m], s.seq[m], {k: v[m] for k, v in s.metrics.items()}))
    return Run(run.scenario, streams, run.effects).rows()


_STATE: dict[str, Any] = {}


def _setup(rules_dir: str) -> tuple[Registry, RuleSet]:
    if _STATE.get("rules_dir") != rules_dir:
        _STATE.update(rules_dir=rules_dir, registry=load_registry(paths.default_registry(), paths.default_districts()),
                      rules=load_rules([rules_dir]))
    return _STATE["registry"], _STATE["rules"]


# ---- building the scenarios ---------------------------------------------------------------------------------------

def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(map(str, parts)))  # str seeds hash with SHA-512: stable across runs


def _candidates(kind: str, registry: Registry) -> list[str]:
    sensors = sorted(registry.sensors.values(), key=lambda s: s.id)
    dom = KIND_DOMAIN[kind]
    has = {  # the sensors (or assets, districts) an incident of this kind can be aimed at
        "gas_leak": "ch4_lel", "gas_pressure": "pressure_mpa", "water_burst": "pressure_mpa",
        "pump_failure": "depth_cm", "crack_growth": "crack_mm", "trapped": "passenger", "overspeed": "speed_ratio",
        "crowd_surge": "density_ppm2",
    }
    if kind in has:
        return [s.id for s in sensors if s.domain == dom and has[kind] in s.metrics]
    if kind == "rainstorm":
        return sorted({s.district for s in sensors if s.domain == dom})
    if kind == "stiffness_loss":
        return sorted({s.asset for s in sensors if s.domain == dom and "freq1_hz" in s.metrics})
    if kind == "crowd_event":
        return sorted({s.asset for s in sensors if s.domain == dom and s.labels.get("kind") == "venue"})
    raise ValueError(f"no target rule for incident kind {kind!r}")


@dataclass(frozen=True, slots=True)
class Task:
    """One unit of work for a worker: an incident instance, a fault scenario, a shipped scenario, or the quiet run."""

    kind: str  # incident | faults | shipped | quiet
    name: str
    doc: Mapping[str, Any] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


def _affected_domain_sensors(doc: Mapping[str, Any], registry: Registry) -> list[str]:
    """Every sensor of the incidents' domains in the districts their effects touch."""
    sc = parse_scenario(dict(doc, sensors="all"), doc["name"])
    touched: set[tuple[str, str]] = set()
    for inc in sc.incidents:
        for e in INCIDENTS[inc.kind](inc, registry):
            s = registry.sensors[e.sensor]
            touched.add((s.domain, s.district))
    return sorted(s.id for s in registry.sensors.values() if (s.domain, s.district) in touched)


def _pump_rain(sensor: str, start: float, offset: float, seed: int, registry: Registry) -> float:
    """The heaviest whole-mm 1-h storm that alone keeps the underpass below PUMP_RAIN_LIMIT_CM."""
    best = 1.0
    for mm in range(2, 60):
        doc = {"name": "pump-rain", "start": start, "duration": offset + 3 * 3600.0, "seed": seed,
               "sensors": {"ids": [sensor]}, "incidents": [
                   {"kind": "rainstorm", "target": sensor, "start": offset, "duration": "1h", "magnitude": mm}]}
        depth = generate(registry, parse_scenario(doc)).streams[0].metrics["depth_cm"]
        if float(np.max(depth)) >= PUMP_RAIN_LIMIT_CM:
            break
        best = float(mm)
    return best


def incident_tasks(seeds: int, warmup_s: float, grace_s: float, registry: Registry) -> list[Task]:
    tasks = []
    for kind in sorted(TIERS, key=lambda k: (_domain_order(KIND_DOMAIN[k]), k)):
        pool = _candidates(kind, registry)
        for tier in TIERS[kind]:
            for seed in range(1, seeds + 1):
                rng = _rng(kind, tier.name, seed)
                target = rng.choice(pool)
                hour = rng.uniform(17.0, 20.0) if kind == "crowd_event" else rng.uniform(0.0, 24.0)
                at = DAY0 + round(hour * 3600.0 / 60.0) * 60.0
                length = parse_duration(tier.duration)
                name = f"{kind}/{tier.name}/s{seed}"
                inc: dict[str, Any] = {"kind": kind, "target": target, "start": warmup_s, "duration": tier.duration,
                                       "params": dict(tier.params)}
                if tier.magnitude is not None:
                    inc["magnitude"] = tier.magnitude
                incidents = [inc]
                meta: dict[str, Any] = {"tier": tier.name, "seed": seed, "scored": 0}
                if kind == "pump_failure":  # a storm on the same underpass, too weak to alert on its own
                    mm = _pump_rain(target, at - warmup_s, warmup_s, seed, registry)
                    incidents = [{"kind": "rainstorm", "target": target, "start": warmup_s, "duration": "1h",
                                  "magnitude": mm}, inc]
                    meta.update(scored=1, context=f"{mm:g} mm storm in 1 h on {target}")
                tail = 1800.0 if kind in ("gas_leak", "water_burst") else 0.0  # neighbours' delayed windows
                doc = {"name": name, "start": at - warmup_s, "duration": warmup_s + length + tail + grace_s + 60.0,
                       "seed": seed, "incidents": incidents}
                doc["sensors"] = {"ids": _affected_domain_sensors(doc, registry)}
                tasks.append(Task("incident", name, doc, meta))
    return tasks


def fault_tasks(seeds: int, warmup_s: float, grace_s: float, registry: Registry) -> list[Task]:
    tasks = []
    by_domain: dict[str, list[Any]] = {}
    for s in sorted(registry.sensors.values(), key=lambda s: s.id):
        by_domain.setdefault(s.domain, []).append(s)
    longest = max(d for d, _ in FAULT_SPECS.values())
    for seed in range(1, seeds + 1):
        rng = _rng("faults", seed)
        at = DAY0 + round(rng.uniform(0.0, 24.0) * 60.0) * 60.0
        faults = []
        for dom in DOMAINS:
            pool = by_domain[dom]
            types = sorted({(s.asset_type, tuple(sorted(s.metrics))) for s in pool})
            used_districts: set[str] = set()
            for k, kind in enumerate(FAULT_KINDS):
                typ = types[(seed + k) % len(types)]
                free = [s for s in pool if s.district not in used_districts]
                choices = [s for s in free if (s.asset_type, tuple(sorted(s.metrics))) == typ] or free
                sensor = _rng("fault", seed, dom, kind).choice(choices)
                used_districts.add(sensor.district)
                metrics = [m for m in FAULT_METRICS if m in sensor.metrics
                           and (kind == "stuck" or m not in BOOLEAN_METRICS)]
                metric = None if kind == "dropout" else metrics[(seed + k) % len(metrics)]
                length, params = FAULT_SPECS[kind]
                params = dict(params)
                if kind == "drift" and metric is not None:
                    params["rate_per_h"] = _drift_rate(metric, sensor.labels)
                f: dict[str, Any] = {"kind": kind, "sensor": sensor.id, "start": warmup_s, "duration": length,
                                     "params": params}
                if metric is not None:
                    f["metric"] = metric
                faults.append(f)
        name = f"faults/s{seed}"
        doc = {"name": name, "start": at - warmup_s, "duration": warmup_s + longest + grace_s + 60.0,
               "seed": seed, "sensors": "all", "faults": faults}
        tasks.append(Task("faults", name, doc, {"seed": seed}))
    return tasks


def _drift_rate(metric: str, labels: Mapping[str, str]) -> float:
    absolute, rel, names = DRIFT_RATES[metric]
    if absolute is not None:
        return absolute
    for name in names.split("|"):
        if name in labels:
            return round(rel * float(labels[name]), 6)
    return rel


# ---- running one task -----------------------------------------------------------------------------------------------

def run_task(task: Task, rules_dir: str, grace_s: float, quiet_days: float) -> dict[str, Any]:
    registry, rules = _setup(rules_dir)
    began = time.perf_counter()
    if task.kind == "quiet":
        out = _run_quiet(registry, rules, quiet_days, str(task.meta["district"]))
    else:
        out = _run_scenario(task, registry, rules, grace_s)
    out["seconds"] = round(time.perf_counter() - began, 2)
    return out


def _groups(alerts: Iterable[Alert], registry: Registry) -> dict[str, frozenset[str]]:
    return {a.subject: group_members(a.subject, registry) for a in alerts if a.subject not in registry.sensors}


def _run_scenario(task: Task, registry: Registry, rules: RuleSet, grace_s: float) -> dict[str, Any]:
    if task.kind == "shipped":
        sc = load_scenario(task.name)
        run = generate(registry, sc, duration=task.meta.get("duration"))
    else:
        assert task.doc is not None
        run = generate(registry, parse_scenario(dict(task.doc), task.name))
    rows = run.rows()
    alerts = feed(Engine(rules, registry), rows)
    groups = _groups(alerts, registry)
    truth = run.truth()
    cases = _incident_cases(task, truth)
    incidents = [match_incident(c, alerts, grace_s, groups) for c in cases]
    fcases = _fault_cases(task, truth, registry, run)
    faults = [match_fault(c, alerts, grace_s, groups) for c in fcases]
    windows = [(c.start, c.end + grace_s, frozenset(c.sensors)) for c in cases]
    windows += [(inc["start"], max([inc["end"]] + [a["end"] for a in inc["affected"]]) + grace_s,
                 frozenset(a["sensor"] for a in inc["affected"])) for inc in truth["incidents"]]
    windows += [(c.start, c.end + grace_s, frozenset((c.sensor,))) for c in fcases]
    stray = unattributed(alerts, windows, groups)
    confounded = False
    if task.kind == "incident" and "context" in task.meta and task.doc is not None:
        control = dict(task.doc, incidents=[i for i in task.doc["incidents"] if i["kind"] != "pump_failure"])
        crun = generate(registry, parse_scenario(control, task.name + "/control"))
        calerts = feed(Engine(rules, registry), crun.rows())
        target = task.doc["incidents"][-1]["target"]
        confounded = any(a.kind == "safety" and target in alert_sensors(a) for a in calerts)
        if confounded:
            incidents = [replace(r, case=replace(r.case, flags=(*r.case.flags, "confounded"))) for r in incidents]
    return {"name": task.name, "kind": task.kind, "readings": len(run), "sensors": len(run.streams),
            "incidents": incidents, "faults": faults, "unattributed": stray, "confounded": confounded}


def _incident_cases(task: Task, truth: Mapping[str, Any]) -> list[IncidentCase]:
    scored = task.meta.get("scored")
    source = "suite" if task.kind == "incident" else task.name
    incs = truth["incidents"]
    out = []
    for inc in incs:
        if task.kind == "incident" and inc["index"] != scored:
            continue
        if task.kind == "faults":
            continue
        end = max([inc["end"]] + [a["end"] for a in inc["affected"]])
        sensors = tuple(sorted({a["sensor"] for a in inc["affected"]}))
        flags = []
        for other in incs:
            if other is inc:
                continue
            o_end = max([other["end"]] + [a["end"] for a in other["affected"]])
            shared = set(sensors) & {a["sensor"] for a in other["affected"]}
            if shared and other["start"] <= end and inc["start"] <= o_end and task.kind == "shipped":
                flags.append(f"overlaps {other['kind']} #{other['index']} on {', '.join(sorted(shared))}")
        if "context" in task.meta:
            flags.append(str(task.meta["context"]))
        ident = task.name if task.kind == "incident" else f"{task.name}#{inc['index']}"
        tier = str(task.meta.get("tier", task.name))
        peaks = {a["sensor"]: a["peak"] for a in inc["affected"]}
        out.append(IncidentCase(ident, task.name, source, KIND_DOMAIN[inc["kind"]], inc["kind"], tier,
                                inc.get("magnitude"), inc["target"], inc["start"], end,
                                sensors, peaks, tuple(flags)))
    return out


def _fault_cases(task: Task, truth: Mapping[str, Any], registry: Registry, run: Run | None = None) -> list[FaultCase]:
    out = []
    source = "suite" if task.kind == "faults" else task.name
    for f in truth["faults"]:
        if not f["simulated"]:
            continue
        seen, why = (True, "") if run is None else fault_observability(run, int(f["index"]))
        out.append(FaultCase(f"{task.name}#{f['index']}", task.name, source, registry.sensors[f["sensor"]].domain,
                             f["kind"], f["sensor"], f["metric"], f["start"], f["end"], dict(f["params"]), seen, why))
    return out


def fault_observability(run: Run, index: int) -> tuple[bool, str]:
    """Did fault ``index`` of ``run`` change any reading the engine received? The fault's sensor is simulated
    again without it (same scenario, effects and other faults, so the same generators) and the two series are
    compared inside the fault window as sent on the wire (rounded per metric): the fault's metric, or every
    metric for a whole-sensor fault. A dropout always changes what is received. Returns (observable, why)."""
    fault = next(f for f in run.scenario.faults if f.index == index)
    if fault.kind == "dropout":
        return True, ""
    stream = next(s for s in run.streams if s.sensor.id == fault.sensor)
    effects = [e for e in run.effects if e.sensor == fault.sensor]
    others = [f for f in run.scenario.faults if f.sensor == fault.sensor and f.index != index]
    clean = simulate_sensor(stream.sensor, run.scenario, effects, others)
    inside = (stream.ts >= fault.start) & (stream.ts < fault.end)
    if not inside.any():
        return False, "no reading inside the fault window"
    names = sorted(stream.metrics) if fault.metric is None else [fault.metric]
    for name in names:
        got, want = np.asarray(stream.column(name))[inside], np.asarray(clean.column(name))[inside]
        if not np.array_equal(got, want):
            return True, ""
    shown = ", ".join(f"{n} {'/'.join(f'{v:g}' for v in np.unique(np.asarray(stream.column(n))[inside])[:3])}"
                      for n in names)
    return False, (f"every one of the {int(inside.sum())} readings in the window is what the fault-free sensor "
                   f"sent ({shown})")


def _run_quiet(registry: Registry, rules: RuleSet, days: float, district: str) -> dict[str, Any]:
    """One district of the fault-free city (an engine shard: every rule, groups included, stays within a
    district), simulated once and fed in FEED_WINDOW_S windows to one engine that keeps its state."""
    sc = load_scenario("quiet")
    sc = replace(sc, selection=Selection(districts=(district,)))
    span = days * 86400.0
    run = generate(registry, sc, start=DAY0, duration=span)
    engine = Engine(rules, registry)
    alerts: list[Alert] = []
    t = DAY0
    while t < DAY0 + span:
        alerts.extend(feed(engine, window_rows(run, t, t + FEED_WINDOW_S)))
        t += FEED_WINDOW_S
    reporting = [s for s in run.streams if s.ts.size]
    sensor_days: Counter[str] = Counter()  # float counts: sensor-days
    for s in reporting:
        sensor_days[s.sensor.domain] += days  # type: ignore[assignment]  # Counter of floats
    return {"name": f"quiet/{district}", "kind": "quiet", "readings": len(run), "sensors": len(reporting),
            "start": DAY0, "days": days, "seed": sc.seed, "sensor_days": dict(sensor_days),
            "alerts": [a for a in alerts if a.event == "fired"]}


# ---- the report ---------------------------------------------------------------------------------------------------

def _fmt_s(s: float | None) -> str:
    if s is None:
        return "—"
    s = round(s)
    h, rem = divmod(int(s), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else (f"{m}m {sec:02d}s" if m else f"{sec}s")


#: The plots written next to scenario_eval.md (and linked from it); drawn from the figures only.
PLOT_RECALL = "scenario_eval_recall.png"
PLOT_TTD = "scenario_eval_ttd.png"


def write_plots(fig: Mapping[str, Any], out: Path) -> list[Path]:
    """Recall per domain (bars) and time to detect per domain (every detected incident, minutes, log scale) from
    ``fig`` as ``build_figures`` makes it (or the ``figures`` part of scenario_eval.json)."""
    by_domain = fig["incidents_by_domain"]
    domains = sorted(by_domain, key=_domain_order)
    cfg = fig["config"]
    what = (f"seeds per incident kind and tier: {cfg['seeds']}, + the shipped scenarios demo and e2e_small; "
            f"rules sha256 {cfg['rules_sha256_16']}, grace {_fmt_s(cfg['grace_s'])}")
    recall = plots.bar_chart(
        out / PLOT_RECALL, domains, [by_domain[d]["recall"] for d in domains],
        value_labels=[f"{by_domain[d]['recall']:.2f}\n({by_domain[d]['detected']}/{by_domain[d]['incidents']})"
                      for d in domains],
        reference_lines={"target: recall 1.0": 1.0}, ylim=(0.0, 1.18),
        title="Incident recall per domain (a safety alert fired on an affected sensor in time)",
        ylabel="recall (detected / injected)", xlabel="domain", note=what)
    ttd = {d: [i["ttd_s"] / 60.0 for i in fig["incidents"]
               if i["domain"] == d and i["detected"] and i["ttd_s"] is not None] for d in domains}
    times = plots.box_or_strip_plot(
        out / PLOT_TTD, ttd, log=True, value_format="{:.3g} min",
        title="Time to detect per domain (detected incidents; box = quartiles, red line = median)",
        ylabel="time to detect (minutes, log scale)", xlabel="domain (n = detected incidents)",
        note="TTD = first matching safety alert - incident start; " + what)
    return [recall, times]


def _local(ts: float) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(ts + LOCAL))


def _peak_text(case: IncidentCase, limit: int = 4) -> str:
    parts = []
    for sensor in case.sensors[:limit]:
        pk = case.peaks.get(sensor, {})
        vals = ", ".join(f"{m} {v['min']:.4g}..{v['max']:.4g}" for m, v in pk.items()
                         if m not in ("temp_c", "accel_rms_mg", "deflection_mm"))
        parts.append(f"{sensor}: {vals}")
    more = f" (+{len(case.sensors) - limit} more)" if len(case.sensors) > limit else ""
    return "; ".join(parts) + more


def _rules_fingerprint(rules_dir: str) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(rules_dir).glob("*.yaml")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=paths.REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_figures(outs: Sequence[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    incidents: list[IncidentResult] = [r for o in outs for r in o.get("incidents", [])]
    faults: list[FaultResult] = [r for o in outs for r in o.get("faults", [])]
    stray: list[tuple[str, Alert]] = [(o["name"], a) for o in outs for a in o.get("unattributed", [])]
    shards = [o for o in outs if o["kind"] == "quiet"]
    quiet = {"seed": shards[0]["seed"], "start": shards[0]["start"], "days": shards[0]["days"],
             "sensors": sum(o["sensors"] for o in shards), "readings": sum(o["readings"] for o in shards),
             "sensor_days": sum((Counter(o["sensor_days"]) for o in shards), Counter())}
    q_alerts = sorted((a for o in shards for a in o["alerts"]), key=lambda a: (a.ts, a.rule, a.subject))
    q_safety = [a for a in q_alerts if a.kind == "safety"]
    q_health = [a for a in q_alerts if a.kind != "safety"]
    sd = quiet["sensor_days"]
    total_sd = sum(sd.values())
    per_domain_fa = {d: {"sensor_days": round(sd.get(d, 0.0), 2),
                         "safety_alerts": sum(a.domain == d for a in q_safety),
                         "per_1000_sensor_days": false_alarm_rate(sum(a.domain == d for a in q_safety), sd.get(d, 0.0)),
                         "health_findings": sum(a.domain == d for a in q_health)} for d in DOMAINS}
    fa_rate = false_alarm_rate(len(q_safety), total_sd)
    correct = sum(r.outcome == "health" for r in faults)
    observable = [r for r in faults if r.case.observable]
    correct_obs = sum(r.outcome == "health" for r in observable)
    detected = sum(r.detected for r in incidents)
    return {
        "config": {"seeds": args.seeds, "quiet_days": args.quiet_days, "warmup_s": args.warmup,
                   "grace_s": args.grace, "rules": str(args.rules),
                   "rules_sha256_16": _rules_fingerprint(args.rules_dir),
                   "git": _git()},
        "targets": {
            "incident_recall": {"target": 1.0, "measured": round(detected / max(len(incidents), 1), 4),
                                "met": detected == len(incidents)},
            "false_alarms_per_1000_sensor_days": {"target": 1.0, "measured": fa_rate,
                                                  "met": fa_rate is not None and fa_rate <= 1.0},
            # judged on the observable faults: a fault that changed no reading cannot be reported by any rule
            "faults_reported_as_health": {"target": 0.9,
                                          "measured": round(correct_obs / max(len(observable), 1), 4),
                                          "met": correct_obs >= 0.9 * len(observable),
                                          "correct": correct_obs, "faults": len(observable),
                                          "over": "observable faults"},
            "faults_reported_as_health_all": {"target": 0.9, "measured": round(correct / max(len(faults), 1), 4),
                                              "met": correct >= 0.9 * len(faults), "correct": correct,
                                              "faults": len(faults), "over": "all injected faults"},
        },
        "incidents_by_domain": incident_summary(incidents, lambda r: r.case.domain),
        "incidents_by_kind_tier": incident_summary(
            incidents, lambda r: f"{r.case.domain}|{r.case.kind}|{r.case.tier}", _kind_tier_order),
        "incidents": [_incident_json(r) for r in incidents],
        "quiet": {"scenario": "quiet", "seed": quiet["seed"], "start": rfc3339(quiet["start"]),
                  "days": quiet["days"], "sensors": quiet["sensors"], "readings": quiet["readings"],
                  "sensor_days": round(total_sd, 2), "safety_alerts": len(q_safety),
                  "per_1000_sensor_days": fa_rate, "by_domain": per_domain_fa,
                  "false_alarms": [a.row() for a in q_safety], "health_findings": [a.row() for a in q_health]},
        "faults_by_kind_domain": fault_summary(faults),
        "faults": [_fault_json(r) for r in faults],
        "unattributed_safety_alerts": [dict(a.row(), scenario=n) for n, a in stray],
    }


def _incident_json(r: IncidentResult) -> dict[str, Any]:
    c = r.case
    return {"id": c.id, "source": c.source, "domain": c.domain, "kind": c.kind, "tier": c.tier,
            "magnitude": c.magnitude, "target": c.target, "start": c.start, "start_at": rfc3339(c.start),
            "end": c.end, "sensors": list(c.sensors), "flags": list(c.flags), "detected": r.detected,
            "ttd_s": r.ttd_s, "first_alert": None if r.first is None else r.first.row(), "max_level": r.max_level,
            "rules": list(r.rules), "peaks": {k: dict(v) for k, v in c.peaks.items()}}


def _fault_json(r: FaultResult) -> dict[str, Any]:
    c = r.case
    return {"id": c.id, "source": c.source, "domain": c.domain, "kind": c.kind, "sensor": c.sensor,
            "metric": c.metric, "start": c.start, "start_at": rfc3339(c.start), "end": c.end,
            "params": dict(c.params), "outcome": r.outcome, "observable": c.observable, "why_unobservable": c.why,
            "health": [a.row() for a in r.health],
            "safety": [a.row() for a in r.safety]}


def render(fig: dict[str, Any], run: dict[str, Any]) -> str:
    t = fig["targets"]
    cfg = fig["config"]
    q = fig["quiet"]
    lines = [
        "# Scenario evaluation: the shipped rule packs against simulated incidents and sensor faults",
        "",
        f"`python -m benchmarks.scenario_eval --seeds {cfg['seeds']} --quiet-days {cfg['quiet_days']:g} "
        f"--rules {cfg['rules']}` — rules sha256 `{cfg['rules_sha256_16']}`, tree `{cfg['git']}`, "
        f"warm-up {_fmt_s(cfg['warmup_s'])}, grace {_fmt_s(cfg['grace_s'])}.",
        "",
        "Method (details in the docstring of `benchmarks/scenario_eval.py`): simulated demo city, readings built "
        "from `Run.rows()` and fed to the real `Engine` in-process, one payload per group. An incident is "
        "detected when a **safety** alert fires on one of its affected sensors between its start and the end of "
        "its latest effect window + grace; TTD = that first alert - incident start. False alarms = safety alerts "
        "fired on the fault-free `quiet` city. A fault counts as correctly reported when a health or nodata "
        "alert fires on its sensor between its start and end + grace and no safety alert does. A fault is "
        "*unobservable* when it changed no reading the engine received (its sensor simulated again without it, "
        "the two series compared inside the window as sent; a dropout always counts as observable): no monitor "
        "can report it, so the fault target is judged over the observable faults; the figure over all injected "
        "faults is shown next to it and every fault stays in the tables below.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---:|:---:|",
        f"| every injected incident detected (recall 1.0) | {t['incident_recall']['measured']:.3f} "
        f"({sum(v['detected'] for v in fig['incidents_by_domain'].values())} of "
        f"{sum(v['incidents'] for v in fig['incidents_by_domain'].values())}) "
        f"| {'yes' if t['incident_recall']['met'] else '**no**'} |",
        f"| ≤ 1 false safety alert per 1,000 sensor-days (fault-free) | {_num(q['per_1000_sensor_days'])} "
        f"({q['safety_alerts']} in {q['sensor_days']:,.0f} sensor-days) "
        f"| {'yes' if t['false_alarms_per_1000_sensor_days']['met'] else '**no**'} |",
        f"| ≥ 90 % of observable sensor faults reported as health/nodata, not safety (the target) | "
        f"{100 * t['faults_reported_as_health']['measured']:.1f} % "
        f"({t['faults_reported_as_health']['correct']} of {t['faults_reported_as_health']['faults']}) "
        f"| {'yes' if t['faults_reported_as_health']['met'] else '**no**'} |",
        f"| the same over all injected faults, unobservable ones included (for reference) | "
        f"{100 * t['faults_reported_as_health_all']['measured']:.1f} % "
        f"({t['faults_reported_as_health_all']['correct']} of {t['faults_reported_as_health_all']['faults']}) "
        f"| {'yes' if t['faults_reported_as_health_all']['met'] else 'no'} |",
        "",
        "## Incidents per domain",
        "",
        "| domain | incidents | detected | recall | median TTD | p95 TTD |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for d, v in fig["incidents_by_domain"].items():
        lines.append(f"| {d} | {v['incidents']} | {v['detected']} | {v['recall']:.2f} | "
                     f"{_fmt_s(v['ttd_median_s'])} | {_fmt_s(v['ttd_p95_s'])} |")
    lines += ["", f"![Incident recall per domain]({PLOT_RECALL})", "",
              f"![Time to detect per domain, detected incidents, log minutes]({PLOT_TTD})"]
    lines += ["", "## Incidents per kind and magnitude tier", "",
              "Tiers of the suite (magnitude units as in simulators/README.md); `demo` and `e2e_small` are the "
              "shipped scenarios.", "",
              "| domain | kind | tier | injected | n | detected | median TTD | p95 TTD | rules that fired first |",
              "|---|---|---|---|---:|---:|---:|---:|---|"]
    tiers = {(k, t.name): t for k, ts in TIERS.items() for t in ts}
    for key, v in fig["incidents_by_kind_tier"].items():
        d, kind, tier = key.split("|")
        first = Counter(i["first_alert"]["rule"] for i in fig["incidents"]
                        if i["kind"] == kind and i["tier"] == tier and i["first_alert"])
        what = tiers[(kind, tier)].label(UNITS.get(kind, "")) if (kind, tier) in tiers else "as shipped"
        rules = ", ".join(f"`{r}` {n}" for r, n in sorted(first.items())) or "—"
        lines.append(f"| {d} | {kind} | {tier} | {what} | {v['incidents']} | {v['detected']} | "
                     f"{_fmt_s(v['ttd_median_s'])} | {_fmt_s(v['ttd_p95_s'])} | {rules} |")
    lines += ["", "## False alarms on fault-free data", "",
              f"`quiet` scenario, seed {q['seed']}, {q['days']:g} days from {q['start']} (00:00 local), one "
              "engine per district fed hour by hour, "
              f"{q['sensors']} sensors, {q['readings']:,} payloads, {q['sensor_days']:,.0f} sensor-days: "
              f"**{q['safety_alerts']} safety alerts = {_num(q['per_1000_sensor_days'])} per 1,000 sensor-days**.", "",
              "| domain | sensor-days | safety alerts | per 1,000 sensor-days | health/nodata findings |",
              "|---|---:|---:|---:|---:|"]
    for d, v in q["by_domain"].items():
        lines.append(f"| {d} | {v['sensor_days']:,.0f} | {v['safety_alerts']} | {_num(v['per_1000_sensor_days'])} "
                     f"| {v['health_findings']} |")
    lines += ["", "## Sensor faults", "",
              "A fault with both a health finding and a safety alert counts in both columns; *correct* = health "
              "finding and no safety alert; *unobservable* = changed no reading the engine received (listed "
              "below with why); the target is *correct of observable*.", "",
              "| fault | domain | faults | reported as health | misreported as safety | missed | correct "
              "| unobservable | correct of observable |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    tot: Counter[str] = Counter()
    for kind, doms in fig["faults_by_kind_domain"].items():
        for d, v in doms.items():
            tot.update(v)
            lines.append(f"| {kind} | {d} | {v.get('faults', 0)} | {v.get('health', 0)} | {v.get('safety', 0)} | "
                         f"{v.get('missed', 0)} | {v.get('correct', 0)} | {v.get('unobservable', 0)} | "
                         f"{v.get('correct_observable', 0)} of {v.get('observable', 0)} |")
    lines.append(f"| **all** | | **{tot['faults']}** | **{tot['health']}** | **{tot['safety']}** | "
                 f"**{tot['missed']}** | **{tot['correct']}** | **{tot['unobservable']}** | "
                 f"**{tot['correct_observable']} of {tot['observable']}** |")
    lines += ["", "Injected: spike (probability 0.05, +5x the metric's spread, 1 h), drift (2 h; rate per hour: "
              + ", ".join(f"{m} {a:+g}" if a is not None else f"{m} {100 * r:+g} % of {lab.replace('|', ' / ')}"
                          for m, (a, r, lab) in DRIFT_RATES.items())
              + "), stuck (first value, 1 h), dropout (30 min)."]
    misses = [i for i in fig["incidents"] if not i["detected"]]
    lines += ["", f"## Missed incidents ({len(misses)})", "",
              "Peak values over each affected sensor's effect window + 10 min (simulator truth).", "",
              "| id | target | start (local) | flags | affected sensors: peak values |", "|---|---|---|---|---|"]
    for i in misses:
        case = _case_of(i)
        lines.append(f"| `{i['id']}` | {i['target']} | {_local(i['start'])} | {'; '.join(i['flags']) or ''} | "
                     f"{_peak_text(case)} |")
    flagged = [i for i in fig["incidents"] if any(f.startswith("overlaps") or f == "confounded" for f in i["flags"])]
    lines += ["", f"## Flagged incidents ({len(flagged)})", "",
              "Overlapping incidents of the shipped scenarios and pump failures whose storm alone alerts (control "
              "run): their detection is not attributable to the incident alone.", "",
              "| id | detected | first alert | flags |", "|---|---|---|---|"]
    for i in flagged:
        fa = i["first_alert"]
        first_text = "—" if fa is None else f"`{fa['rule']}` {fa['level']} on {fa['sensor']} after {_fmt_s(i['ttd_s'])}"
        lines.append(f"| `{i['id']}` | {'yes' if i['detected'] else '**no**'} | {first_text} | "
                     f"{'; '.join(i['flags'])} |")
    if not flagged:
        lines.append("| — | | | |")
    lines += ["", f"## List of false alarms on fault-free data ({q['safety_alerts']})", ""]
    lines += _alert_table(q["false_alarms"])
    if q["health_findings"]:
        lines += ["", f"Health/nodata findings on the same fault-free data ({len(q['health_findings'])}):", ""]
        lines += _alert_table(q["health_findings"])
    stray = fig["unattributed_safety_alerts"]
    lines += ["", f"## Safety alerts outside every incident/fault window in the incident and fault runs ({len(stray)})",
              ""]
    lines += _alert_table(stray, scenario=True)
    hidden = [f for f in fig["faults"] if not f.get("observable", True)]
    lines += ["", f"## Unobservable faults ({len(hidden)})", "",
              "Faults that changed no reading the engine received: the fault-free simulation of the sensor sent the "
              "same values inside the window. They count in the figure over all injected faults, not in the target.",
              "", "| id | kind | sensor | metric | outcome | why |", "|---|---|---|---|---|---|"]
    for f in hidden:
        lines.append(f"| `{f['id']}` | {f['kind']} | {f['sensor']} | {f['metric'] or 'all'} | {f['outcome']} | "
                     f"{f['why_unobservable']} |")
    if not hidden:
        lines.append("| — | | | | | |")
    bad = [f for f in fig["faults"] if f["outcome"] != "health"]
    lines += ["", f"## Faults not correctly reported ({len(bad)})", "",
              "| id | kind | sensor | metric | params | observable | outcome | alerts on the sensor in the window |",
              "|---|---|---|---|---|:---:|---|---|"]
    for f in bad:
        al = "; ".join(f"{a['kind']} `{a['rule']}` {a['level']} at {_local(a['ts'])} local, value "
                       f"{_num(a['value'])}: {a['message']}" for a in f["safety"] + f["health"]) or "none"
        params = ", ".join(f"{k} {v:g}" if isinstance(v, float | int) else f"{k} {v}" for k, v in f["params"].items())
        lines.append(f"| `{f['id']}` | {f['kind']} | {f['sensor']} | {f['metric'] or 'all'} | {params} | "
                     f"{'yes' if f.get('observable', True) else '**no**'} | {f['outcome']} | {al} |")
    lines += ["", "## Run", "",
              f"{run['machine']}; {run['jobs']} worker(s); {run['tasks']} scenarios, {run['payloads']:,} payloads; "
              f"**{run['seconds']:.0f} s** wall time (not part of the deterministic figures).", ""]
    return "\n".join(lines)


def _case_of(i: dict[str, Any]) -> IncidentCase:
    return IncidentCase(i["id"], "", i["source"], i["domain"], i["kind"], i["tier"], i["magnitude"], i["target"],
                        i["start"], i["end"], tuple(i["sensors"]), i["peaks"], tuple(i["flags"]))


def _alert_table(rows: Sequence[dict[str, Any]], scenario: bool = False) -> list[str]:
    if not rows:
        return ["None."]
    head = "| scenario | rule | kind | sensor (subject) | at (UTC) | level | value | message | alert id |" \
        if scenario else "| rule | kind | sensor (subject) | at (UTC) | level | value | message | alert id |"
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for a in rows:
        subj = a["sensor"] if a["subject"] == a["sensor"] else f"{a['sensor']} ({a['subject']})"
        cells = [f"`{a['rule']}`", a["kind"], subj, a["at"], a["level"], _num(a["value"]), a["message"],
                 f"`{a['alert']}`"]
        if scenario:
            cells.insert(0, f"`{a['scenario']}`")
        out.append("| " + " | ".join(cells) + " |")
    return out


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def _to_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_json(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 6)
    if hasattr(obj, "__dataclass_fields__"):
        return _to_json(asdict(obj))
    return obj


# ---- main -----------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5, help="instances per incident tier and fault scenario (default 5)")
    ap.add_argument("--quiet-days", type=float, default=3.0, help="days of the fault-free city (default 3)")
    ap.add_argument("--rules", default="rules/", help="rule pack directory (default: the shipped rules/)")
    ap.add_argument("--warmup", type=float, default=7200.0, help="seconds of normal data before injection (7200)")
    ap.add_argument("--grace", type=float, default=900.0, help="seconds after an incident/fault end still matched")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for scenario_eval.md / .json and the plots")
    args = ap.parse_args(argv)
    try:
        plots.require()  # fail now, not after minutes of simulation
    except plots.PlotsUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    given = Path(args.rules)
    rules_dir = str(given if given.is_absolute() or given.exists() else paths.REPO / given)
    args.rules_dir = rules_dir
    began = time.perf_counter()
    registry, _ = _setup(rules_dir)
    say = _progress()
    say("building scenarios ...")
    # the long ones first, so the pool finishes together: quiet shards (one per district), demo, fault scenarios
    tasks = [Task("quiet", f"quiet/{d}", meta={"district": d}) for d in sorted(registry.districts)]
    tasks += [Task("shipped", "demo", meta={"duration": 3 * 3600.0}), Task("shipped", "e2e_small"),
              Task("shipped", "faults")]
    tasks += fault_tasks(args.seeds, args.warmup, args.grace, registry)
    tasks += incident_tasks(args.seeds, args.warmup, args.grace, registry)
    outs: list[dict[str, Any] | None] = [None] * len(tasks)
    say(f"{len(tasks)} scenarios, {args.jobs} worker(s)")
    if args.jobs > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("fork")) as pool:
            futures = {pool.submit(run_task, t, rules_dir, args.grace, args.quiet_days): i for i, t in enumerate(tasks)}
            from concurrent.futures import as_completed

            for done, fut in enumerate(as_completed(futures), 1):
                i = futures[fut]
                outs[i] = fut.result()
                say(_line(done, len(tasks), outs[i]))
    else:
        for i, t in enumerate(tasks):
            outs[i] = run_task(t, rules_dir, args.grace, args.quiet_days)
            say(_line(i + 1, len(tasks), outs[i]))
    results = [o for o in outs if o is not None]
    fig = build_figures(results, args)
    seconds = time.perf_counter() - began
    import platform

    run = {"seconds": round(seconds, 1), "jobs": args.jobs, "tasks": len(tasks),
           "payloads": sum(o["readings"] for o in results),
           "machine": f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
           "task_seconds": {o["name"]: o["seconds"] for o in results}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scenario_eval.json").write_text(
        json.dumps({"figures": _to_json(fig), "run": run}, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    (args.out / "scenario_eval.md").write_text(render(fig, run))
    pngs = write_plots(fig, args.out)
    t = fig["targets"]
    say(f"done in {seconds:.0f} s: recall {t['incident_recall']['measured']:.3f}, false alarms "
        f"{_num(t['false_alarms_per_1000_sensor_days']['measured'])} per 1,000 sensor-days, faults reported as "
        f"health {100 * t['faults_reported_as_health']['measured']:.1f} % of observable "
        f"({100 * t['faults_reported_as_health_all']['measured']:.1f} % of all); "
        f"wrote {args.out / 'scenario_eval.md'}, "
        + ", ".join(p.name for p in pngs))
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _progress() -> Callable[[str], None]:
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    return say


def _line(done: int, total: int, o: dict[str, Any] | None) -> str:
    assert o is not None
    what = ""
    if o["kind"] == "quiet":
        what = f"{sum(a.kind == 'safety' for a in o['alerts'])} false safety alerts"
    else:
        inc = o["incidents"]
        if inc:
            what = f"{sum(r.detected for r in inc)}/{len(inc)} incidents detected"
        if o["faults"]:
            what += (", " if what else "") + f"{sum(r.outcome == 'health' for r in o['faults'])}/{len(o['faults'])} " \
                                             "faults reported as health"
    return f"[{done}/{total}] {o['name']}: {what} ({o['seconds']:.1f} s)"


if __name__ == "__main__":
    raise SystemExit(main())
