"""The pure processor: readings in event-time order per sensor -> AlertEvents and dead letters.

Deterministic: output depends only on the inputs (readings and ticks) and their order, never on
the wall clock, randomness or I/O. All mutable state is in ``SensorState`` and ``Lifecycle``
objects and round-trips through ``snapshot`` / ``restore`` without changing any later output.

Hot path: one dict lookup binds (sensor, metric) to the rule evaluators that apply; a threshold
rule with no open alert costs one comparison when the value is below its lowest bound.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from mypy_extensions import mypyc_attr

from lifeline.detectors import DETECTORS, Detector
from lifeline.engine import evaluators
from lifeline.engine.lifecycle import Lifecycle, Transition
from lifeline.engine.state import Evaluator, SensorState, group_of, rule_applies
from lifeline.model import AlertEvent, AlertKind, AlertState, DeadLetter, EventKind, Level, Reading
from lifeline.registry import Registry
from lifeline.rules.model import Rule, RuleSet

NODATA_CHECK_S = 10.0  # event-time cadence of the staleness scan
# The scan is skipped while the watermark is this far before the earliest time any sensor could be
# found silent (last_seen + limit): far more than the rounding of ``wm - last`` against ``limit``.
NODATA_MARGIN_S = 1.0


@dataclass(slots=True)
class EngineOutput:
    events: list[AlertEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


class _Fmt(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled (lifeline/native.py); tests subclass it
class Engine:
    """One engine per shard of sensors. ``process`` and ``tick`` are the only inputs."""

    def __init__(self, rules: RuleSet, registry: Registry) -> None:
        self.rules = rules
        self.registry = registry
        self._safety: dict[tuple[str, str], list[Rule]] = {}
        self._nodata_rules: dict[str, list[Rule]] = {}
        for rule in rules.rules:
            if rule.kind == "nodata":
                self._nodata_rules.setdefault(rule.domain, []).append(rule)
            else:
                for m in rule.metrics:
                    self._safety.setdefault((rule.domain, m), []).append(rule)
        self._sensors: dict[str, SensorState] = {}
        self._lifecycles: dict[tuple[str, str], Lifecycle] = {}
        self._detectors: dict[tuple[str, str], Detector] = {}
        self._groups: dict[tuple[str, str], tuple[str, ...]] = {}
        self._offsets: dict[tuple[str, str], evaluators.Offset] = {}  # (rule, sensor) -> usual gap (residuals)
        self.watermark: float | None = None
        self._next_check: float | None = None
        # The staleness scan's agenda: (when the sensor could first be found silent, less the margin, id)
        # for every sensor with nodata rules that is not stale, lazily kept (last_seen only grows: an entry
        # is never later than the truth and is corrected when it comes up); sensors not yet in it wait in
        # ``_fresh`` (new ones, and stale ones whose data is back).
        self._due: list[tuple[float, str]] = []
        self._fresh: list[SensorState] = []
        self.counts: Counter[str] = Counter()

    # ---- inputs -------------------------------------------------------------------------
    def process(self, readings: Iterable[Reading]) -> EngineOutput:
        """Evaluate readings in order. Rules are judged once per (sensor, event time) group, on the
        sensor's values after the whole group: give all readings of one payload in one call."""
        out = EngineOutput()
        events, dead = out.events, out.dead
        sensors = self._sensors
        wm = self.watermark
        group: dict[Evaluator, None] = {}  # the evaluators of the current payload (an ordered set)
        owned = False  # False while ``group`` is still a sensor's bind dict itself (not to be mutated)
        group_st: SensorState | None = None
        group_ts = 0.0
        # the last accepted reading's sensor and ts: another metric of the same payload needs no
        # sensor lookup, and cannot move last_seen or the watermark, nor end the group
        cur_sid: str | None = None
        cur_ts = 0.0
        st: SensorState | None = None
        n = 0
        for r in readings:
            n += 1
            m = r.metric
            ts = r.ts
            seq = r.seq
            same = ts == cur_ts and r.sensor == cur_sid
            if not same:
                st = sensors.get(r.sensor)
                if st is None:
                    st = self._new_sensor(r.sensor, r.domain)
            assert st is not None
            if seq is not None:  # seq first: a redelivered payload is a duplicate, not merely late
                prev = st.mseq.get(m)
                if prev is not None and seq <= prev:
                    dead.append(self._duplicate(r, prev))
                    continue
            last = st.mts.get(m)
            if last is not None and ts <= last:
                dead.append(self._late(r, last))
                continue
            if seq is not None:
                st.mseq[m] = seq
            if same:
                st.mts[m] = ts
            else:
                # a new payload: judge the previous one first (its neighbourhood rules must not yet
                # see this reading's ts), then this reading may move last_seen and the watermark
                if group_st is not None:
                    for ev in group:
                        ev(group_st, group_ts, events)
                    group_st = None  # the next evaluated metric starts a new group
                st.mts[m] = ts
                cur_sid, cur_ts = r.sensor, ts
                last_seen = st.last_seen
                if last_seen is None or ts > last_seen:
                    if last_seen is not None and ts - last_seen >= st.nodata_after:
                        self._catch_up(st, last_seen, ts, events)  # silent for a limit, whether or not a scan saw it
                    st.last_seen = ts
                    if st.stale:
                        self._data_back(st, ts, events)
                if wm is None or ts > wm:
                    wm = ts
                    if self._next_check is None or wm >= self._next_check:
                        self._advance(wm, events)  # per reading, so batch boundaries never change output
            if r.quality == "bad":
                continue
            st.values[m] = r.value
            evals = st.binds.get(m)
            if evals is None:
                evals = self._bind(st, m)
            if evals:
                if group_st is None:
                    group, owned, group_st, group_ts = evals, False, st, ts
                elif owned:
                    group.update(evals)
                else:
                    group, owned = {**group, **evals}, True
        if group_st is not None:
            for ev in group:
                ev(group_st, group_ts, events)
        self.counts["readings"] += n
        self.watermark = wm
        for d in dead:
            self.counts["dead." + d.reason] += 1
        return out

    def tick(self, now: float) -> EngineOutput:
        """Advance event time without a reading (idle periods), running the staleness scan."""
        out = EngineOutput()
        wm = self.watermark
        self._advance(now if wm is None or now > wm else wm, out.events)
        return out

    # ---- internals ----------------------------------------------------------------------
    @staticmethod
    def _duplicate(r: Reading, prev: int) -> DeadLetter:
        return DeadLetter("duplicate_seq", f"sensor {r.sensor!r} metric {r.metric!r}: seq {r.seq} is not after "
                          f"{prev}", r.domain + "/" + r.sensor, "", r.sensor, r.ts)

    @staticmethod
    def _late(r: Reading, last: float) -> DeadLetter:
        return DeadLetter("late", f"sensor {r.sensor!r} metric {r.metric!r}: ts {r.ts!r} is not after "
                          f"the last accepted {last!r}", r.domain + "/" + r.sensor, "", r.sensor, r.ts)

    def _new_sensor(self, sid: str, domain: str) -> SensorState:
        sensor = self.registry.get(sid)
        st = SensorState(sid, domain, sensor)
        self._sensors[sid] = st
        if self._nodata_of(st):
            self._fresh.append(st)
        return st

    def lifecycle(self, rule: Rule, subject: str) -> Lifecycle:
        key = (rule.id, subject)
        lc = self._lifecycles.get(key)
        if lc is None:
            lc = Lifecycle(rule.id, subject, rule.for_s, rule.clear_for_s)
            self._lifecycles[key] = lc
        return lc

    def _bind(self, st: SensorState, metric: str) -> dict[Evaluator, None]:
        bound: dict[Evaluator, None] = {}
        for rule in self._safety.get((st.domain, metric), ()):
            if rule_applies(rule, st.id, st.domain, st.sensor) and (
                    rule.neighbourhood is None or group_of(rule, st.sensor) is not None):
                ev = st.by_rule.get(rule.id)
                if ev is None:
                    ev = st.by_rule[rule.id] = self._evaluator(rule, st)
                bound[ev] = None
        st.binds[metric] = bound
        return bound

    def _evaluator(self, rule: Rule, st: SensorState) -> Evaluator:
        emit = self._emit
        if rule.neighbourhood is not None:
            group = group_of(rule, st.sensor)
            assert group is not None
            group_subject = rule.neighbourhood.measure in ("count", "quorum")
            subject = f"{rule.neighbourhood.group_by}:{group}" if group_subject else st.id
            return evaluators.neighbourhood(rule, self.lifecycle(rule, subject), self._members(rule, group),
                                            self._sensors, emit, partial(self._offset, rule.id))
        lc = self.lifecycle(rule, st.id)
        if rule.kind == "condition":
            return evaluators.condition(rule, lc, emit)
        if rule.detector is not None:
            return evaluators.detector(rule, lc, self._detector(rule, st.id), emit)
        return evaluators.threshold(rule, lc, emit)

    def _detector(self, rule: Rule, subject: str) -> Detector:
        key = (rule.id, subject)
        det = self._detectors.get(key)
        if det is None:
            assert rule.detector is not None
            det = self._detectors[key] = DETECTORS.get(rule.detector).from_config(rule.detector_params)
        return det

    def _offset(self, rule_id: str, sid: str) -> evaluators.Offset:
        key = (rule_id, sid)
        o = self._offsets.get(key)
        if o is None:
            o = self._offsets[key] = evaluators.Offset()
        return o

    def _members(self, rule: Rule, group: str) -> tuple[str, ...]:
        """Registered sensors of the rule's domain that the rule applies to and that share ``group``."""
        key = (rule.id, group)
        found = self._groups.get(key)
        if found is None:
            found = tuple(sorted(s.id for s in self.registry.sensors.values()
                                 if rule_applies(rule, s.id, s.domain, s) and group_of(rule, s) == group))
            self._groups[key] = found
        return found

    def _emit(self, rule: Rule, lc: Lifecycle, tr: Transition, st: SensorState, ts: float,
              value: float | None, out: list[AlertEvent]) -> None:
        s = st.sensor
        district = s.district if s is not None else ""
        fmt = _Fmt(st.labels)  # numeric labels (p_set_mpa), then metric values, then the fixed names
        fmt.update(st.values)
        fmt.update(value=value if value is not None else float("nan"), level=tr.level.colour, sensor=st.id,
                   subject=lc.subject, district=district, asset=s.asset if s is not None else "", rule=rule.id,
                   title=rule.title)
        try:
            message = rule.message.format_map(fmt) if rule.message else rule.title
        except (ValueError, TypeError, IndexError, AttributeError) as exc:
            message = f"{rule.title} ({type(exc).__name__} in message template)"
        kind = AlertKind.NODATA if rule.kind == "nodata" else (AlertKind.HEALTH if rule.health else AlertKind.SAFETY)
        state = AlertState.RESOLVED if tr.event == EventKind.RESOLVED else AlertState.FIRING
        out.append(AlertEvent(
            id=lc.alert, seq=lc.seq, rule=rule.id, kind=kind, subject=lc.subject, sensor=st.id,
            domain=st.domain, district=district, level=tr.level, state=state, event=tr.event,
            started=lc.started, ts=ts, value=value, message=message, title=rule.title,
            owner=rule.owner or (s.owner if s is not None else ""), playbook=rule.playbook,
            actor="engine", reason=tr.reason))
        self.counts["events." + tr.event.value] += 1

    # ---- staleness ----------------------------------------------------------------------
    def _nodata_of(self, st: SensorState) -> list[tuple[Rule, Lifecycle]]:
        if st.nodata is None:
            st.nodata = [(rule, self.lifecycle(rule, st.id)) for rule in self._nodata_rules.get(st.domain, ())
                         if rule_applies(rule, st.id, st.domain, st.sensor)]
            st.nodata_after = min((self._nodata_after(rule, st) for rule, _ in st.nodata), default=float("inf"))
        return st.nodata

    def _data_back(self, st: SensorState, ts: float, out: list[AlertEvent]) -> None:
        st.stale = False
        self._put(st, ts, st.nodata_after)  # back on the agenda from now (an older entry is superseded)
        for rule, lc in self._nodata_of(st):
            if lc.level is not None:
                tr = lc.step(None, None, ts)
                if tr is not None:
                    self._emit(rule, lc, tr, st, ts, None, out)

    def _catch_up(self, st: SensorState, last: float, ts: float, out: list[AlertEvent]) -> None:
        """A reading after a silence of at least a nodata limit: the rules whose limit it reached and that no
        scan has fired yet fire now, at the moment the limit was reached (then ``_data_back`` resolves them).
        So a nodata alert depends only on the sensor's own readings, never on when other sensors' readings
        moved the watermark: the same alerts on one engine or on any sharding of the sensors (lifeline worker)."""
        for rule, lc in self._nodata_of(st):
            if lc.level is None:
                after = self._nodata_after(rule, st)
                if ts - last >= after:
                    self._fire_nodata(rule, lc, st, last, after, out)

    def _fire_nodata(self, rule: Rule, lc: Lifecycle, st: SensorState, last: float, after: float,
                     out: list[AlertEvent]) -> None:
        """Open a nodata alert as of ``last + after``, the moment the sensor had been silent for the limit."""
        assert rule.level is not None
        at = last + after
        tr = lc.step(rule.level, rule.level, at)
        if tr is not None:
            st.stale = True
            tr.reason = f"no data for {after:.0f} s, its limit"
            self._emit(rule, lc, tr, st, at, after, out)

    def _advance(self, wm: float | None, out: list[AlertEvent]) -> None:
        self.watermark = wm
        if wm is None:
            return
        if self._next_check is None:
            self._next_check = wm + NODATA_CHECK_S
            return
        if wm < self._next_check:
            return
        self._next_check = wm + NODATA_CHECK_S
        if self._fresh:
            self._take_fresh()
        due = self._due
        if due and due[0][0] <= wm:
            self._scan(wm, out)

    def _take_fresh(self) -> None:
        """Put the sensors waiting in ``_fresh`` on the agenda (one that has not reported yet waits)."""
        waiting = []
        for st in self._fresh:
            if st.last_seen is None:
                waiting.append(st)
            else:
                self._put(st, st.last_seen, st.nodata_after)
        self._fresh = waiting

    def _put(self, st: SensorState, last: float, after: float) -> None:
        """(Re)place the sensor's one live entry on the agenda; an older entry of it is skipped when it comes up."""
        key = last + after - NODATA_MARGIN_S
        if key != key:  # NaN: at every scan
            key = -math.inf
        st.due_at = key
        heapq.heappush(self._due, (key, st.id))

    def _scan(self, wm: float, out: list[AlertEvent]) -> None:
        """Open the nodata alerts of sensors silent for a rule's limit, in id order, each as of the moment its
        limit was reached. Only the sensors whose entry has come up are looked at: until last_seen + limit
        (less a margin far beyond the rounding of ``wm - last`` against the limit) no sensor can be silent for
        it. An entry goes back with the sensor's next limit (its newest time if it has reported since); a
        sensor whose every nodata rule has fired leaves the agenda until its data is back."""
        due, sensors = self._due, self._sensors
        found: dict[str, SensorState] = {}
        while due and due[0][0] <= wm:
            key, sid = heapq.heappop(due)
            st = sensors[sid]
            if st.due_at == key:  # its live entry (a superseded one is dropped)
                found[sid] = st
        for sid in sorted(found):
            st = found[sid]
            last = st.last_seen
            assert last is not None  # only sensors that have reported are put on the agenda
            silent = wm - last
            pending = math.inf
            for rule, lc in self._nodata_of(st):
                if lc.level is not None:
                    continue
                after = self._nodata_after(rule, st)
                if silent >= after:
                    self._fire_nodata(rule, lc, st, last, after, out)
                elif not after >= pending:  # the shortest limit still to come (NaN: looked at every scan)
                    pending = after
            if pending == math.inf:
                st.due_at = None
            else:
                self._put(st, last, pending)

    @staticmethod
    def _nodata_after(rule: Rule, st: SensorState) -> float:
        if rule.nodata_after_s is not None:
            return rule.nodata_after_s
        interval = st.sensor.interval_s if st.sensor is not None else 60.0
        return (rule.nodata_intervals or 3.0) * interval

    # ---- snapshot / restore -------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """All state, JSON-serialisable. ``restore`` of it into a fresh engine changes no output."""
        return {
            "version": 1,
            "watermark": self.watermark,
            "next_check": self._next_check,
            "sensors": {
                sid: {"domain": st.domain, "values": dict(st.values), "mts": dict(st.mts),
                      "mseq": dict(st.mseq), "last_seen": st.last_seen}
                for sid, st in self._sensors.items()
            },
            "lifecycles": [lc.snapshot() for lc in self._lifecycles.values() if not lc.idle or lc.down_since],
            "detectors": [[rule, subject, det.snapshot()] for (rule, subject), det in self._detectors.items()],
            "offsets": [[rule, sid, *o.to_list()] for (rule, sid), o in self._offsets.items() if o.kept()],
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        if snap.get("version") != 1:
            raise ValueError(f"unsupported engine snapshot version {snap.get('version')!r}")
        self._sensors.clear()
        self._fresh.clear()
        self._due.clear()
        self._lifecycles.clear()
        self._detectors.clear()
        self._offsets.clear()
        self.watermark = snap["watermark"]
        self._next_check = snap["next_check"]
        for sid, d in snap["sensors"].items():
            st = self._new_sensor(sid, d["domain"])
            st.values.update(d["values"])
            st.mts.update(d["mts"])
            st.mseq.update(d["mseq"])
            st.last_seen = d["last_seen"]
        rules = self.rules.by_id()
        for d in snap["lifecycles"]:
            rule = rules.get(d["rule"])
            if rule is None:  # the rule was removed since the snapshot: its state is dropped
                continue
            self.lifecycle(rule, d["subject"]).restore(d)
        for rule_id, subject, state in snap.get("detectors", []):
            rule = rules.get(rule_id)
            if rule is None or rule.detector is None:
                continue
            self._detector(rule, subject).restore(state)
        for rule_id, sid, *fields in snap.get("offsets", []):  # an older snapshot has none
            rule = rules.get(rule_id)
            hood = rule.neighbourhood if rule is not None else None
            if hood is None or not hood.stateful:
                continue
            self._offsets[(rule_id, sid)] = evaluators.Offset.from_list(fields)
        for st in self._sensors.values():
            st.stale = any(lc.level is not None for _, lc in self._nodata_of(st))

    def open_alerts(self) -> list[tuple[str, str, Level]]:
        return sorted((lc.rule, lc.subject, lc.level) for lc in self._lifecycles.values() if lc.level is not None)


def process_all(engine: Engine, readings: Sequence[Reading], batch: int = 1000) -> EngineOutput:
    """Feed readings in batches (as the runner does); collect everything."""
    total = EngineOutput()
    for i in range(0, len(readings), batch):
        o = engine.process(readings[i : i + batch])
        total.events.extend(o.events)
        total.dead.extend(o.dead)
    return total
