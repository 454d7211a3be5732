"""Evaluators: one closure per (rule, sensor) that turns the sensor's latest values into lifecycle steps.

Each builder returns ``fn(sensor_state, ts, out)``; the engine calls it once per payload of that
sensor (docs/engine.md). Pure: they read engine state, step a ``Lifecycle`` and call ``emit``;
no I/O, no clock. Hot path: a threshold rule with no open alert costs one comparison while the
value stays below its lowest bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lifeline.detectors import Detector
from lifeline.engine.lifecycle import Lifecycle
from lifeline.engine.state import Emit, Evaluator, SensorState
from lifeline.model import AlertEvent
from lifeline.rules.model import Expr, Neighbourhood, Rule, Thresholds


def fast(expr: Expr) -> Callable[[Mapping[str, float]], float]:
    """The compiled expression's raw function when it has one (skips a call on the hot path)."""
    fn = getattr(expr, "fn", None)
    return fn if callable(fn) else expr.__call__


#: (sensor state, event time, value, output) -> thresholds -> lifecycle -> emit
_Step = Callable[[SensorState, float, float, list[AlertEvent]], None]


def _stepper(th: Thresholds, lc: Lifecycle, rule: Rule, emit: Emit) -> _Step:
    """value -> level (and level held under hysteresis) -> lifecycle -> emit; skips idle values below bound."""
    lowest, above, hyst, level_of = th.levels[0][1], th.direction == "above", th.hysteresis, th.level_of

    def step(st: SensorState, ts: float, v: float, out: list[AlertEvent]) -> None:
        if lc.idle and ((v < lowest) if above else (v > lowest)):
            return
        tr = lc.step(level_of(v), level_of(v, hyst), ts)
        if tr is not None:
            emit(rule, lc, tr, st, ts, v, out)

    return step


def condition(rule: Rule, lc: Lifecycle, emit: Emit) -> Evaluator:
    cond, level = rule.condition, rule.level
    assert cond is not None and level is not None
    test = fast(cond)

    def on_condition(st: SensorState, ts: float, out: list[AlertEvent]) -> None:
        try:
            raw = level if test(st.values) else None
        except KeyError:  # not every metric (or label) it reads is known yet
            return
        if raw is None and lc.idle:
            return
        tr = lc.step(raw, raw, ts)
        if tr is not None:
            emit(rule, lc, tr, st, ts, None, out)

    return on_condition


def threshold(rule: Rule, lc: Lifecycle, emit: Emit) -> Evaluator:
    th, value = rule.thresholds, rule.value
    assert th is not None and (value is not None or len(rule.metrics) == 1)
    lowest, above, hyst, level_of = th.levels[0][1], th.direction == "above", th.hysteresis, th.level_of
    if value is None or value.source.strip() in value.names:
        single = rule.metrics[0] if value is None else value.source.strip()

        def on_metric(st: SensorState, ts: float, out: list[AlertEvent]) -> None:
            # _stepper's body inlined: this is the hottest path (one call fewer per reading)
            v = st.values[single]
            if lc.idle and ((v < lowest) if above else (v > lowest)):
                return
            tr = lc.step(level_of(v), level_of(v, hyst), ts)
            if tr is not None:
                emit(rule, lc, tr, st, ts, v, out)

        return on_metric
    compute = fast(value)
    step = _stepper(th, lc, rule, emit)

    def on_expression(st: SensorState, ts: float, out: list[AlertEvent]) -> None:
        try:
            v = compute(st.values)
        except KeyError:
            return
        if v == v:  # NaN (e.g. division by zero) carries no evidence either way
            step(st, ts, v, out)

    return on_expression


def detector(rule: Rule, lc: Lifecycle, det: Detector, emit: Emit) -> Evaluator:
    """value -> detector.update -> verdict (score or value) -> thresholds -> lifecycle.
    The detector sees every observation, also while no alert is open."""
    th, value = rule.thresholds, rule.value
    assert th is not None
    compute = fast(value) if value is not None else None
    metric = rule.metrics[0] if value is None else ""
    update = det.update
    on_score = rule.detector_on == "score"
    lowest, above, hyst, level_of = th.levels[0][1], th.direction == "above", th.hysteresis, th.level_of

    def on_detector(st: SensorState, ts: float, out: list[AlertEvent]) -> None:
        env = st.values
        try:
            x = env[metric] if compute is None else compute(env)
        except KeyError:
            return
        verdict = update(ts, x, env)
        if verdict is None:  # warm-up or NaN, no evidence either way
            return
        # _stepper's body inlined: one call per observation of every detector rule saved
        v = verdict.score if on_score else verdict.value
        if lc.idle and ((v < lowest) if above else (v > lowest)):
            return
        tr = lc.step(level_of(v), level_of(v, hyst), ts)
        if tr is not None:
            emit(rule, lc, tr, st, ts, v, out)

    return on_detector


class _Members:
    """The states of a group's members, each looked up until it exists and then kept: a sensor's state
    exists from its first reading on and is never replaced (``restore`` builds new states, and with
    them new evaluators). ``states`` stays in the members' (id) order: with a NaN among the values the
    residual's sort, and so its median, would depend on it."""

    __slots__ = ("members", "pending", "sensors", "states")

    def __init__(self, members: tuple[str, ...], sensors: Mapping[str, SensorState]) -> None:
        self.members = members
        self.sensors = sensors
        self.pending = list(members)
        self.states: list[SensorState] = []

    def resolve(self) -> None:
        """Take in the members that have reported since (call before each use while ``pending``)."""
        sensors = self.sensors
        if any(sid in sensors for sid in self.pending):
            self.states[:] = [st for st in map(sensors.get, self.members) if st is not None]
            self.pending = [sid for sid in self.members if sid not in sensors]


class Offset:
    """What a residual rule keeps per member: its usual signed gap from the group's median
    (``Neighbourhood.offsets_tau_s``: ``gap`` the mean of the gaps over the learning time, then their
    exponential average; ``n`` gaps learned; ``since`` the time of the first, ``last`` of the latest) and
    its smoothed residual (``Neighbourhood.smooth_s``: ``smooth`` at ``smooth_ts``, None before the first).
    Engine state: a list in the snapshot."""

    __slots__ = ("gap", "last", "n", "since", "smooth", "smooth_ts")

    def __init__(self, gap: float = 0.0, n: int = 0, since: float = 0.0, last: float = 0.0, smooth: float = 0.0,
                 smooth_ts: float | None = None) -> None:
        self.gap, self.n, self.since, self.last = gap, n, since, last
        self.smooth, self.smooth_ts = smooth, smooth_ts

    def learn(self, gap: float, ts: float, tau: float, learn: float) -> None:
        n = self.n + 1
        if n == 1:
            self.gap, self.since = gap, ts
        elif ts - self.since < learn:  # learning: the plain mean of the gaps so far
            self.gap += (gap - self.gap) / n
        else:  # then an exponential average over time (readings need not be evenly spaced)
            self.gap += (1.0 - math.exp(-(ts - self.last) / tau)) * (gap - self.gap)
        self.n, self.last = n, ts

    def smoothed(self, residual: float, ts: float, tau: float) -> float:
        """The exponential average (time constant ``tau``) of the signed residual, this one included."""
        if self.smooth_ts is None:
            self.smooth = residual
        else:
            self.smooth += (1.0 - math.exp(-(ts - self.smooth_ts) / tau)) * (residual - self.smooth)
        self.smooth_ts = ts
        return self.smooth

    def kept(self) -> bool:
        return self.n > 0 or self.smooth_ts is not None

    def to_list(self) -> list[float | None]:
        return [self.gap, self.n, self.since, self.last, self.smooth, self.smooth_ts]

    @classmethod
    def from_list(cls, f: Sequence[Any]) -> Offset:
        return cls(float(f[0]), int(f[1]), float(f[2]), float(f[3]), float(f[4]), None if f[5] is None else float(f[5]))


def neighbourhood(rule: Rule, lc: Lifecycle, members: tuple[str, ...], sensors: Mapping[str, SensorState],
                  emit: Emit, offsets: Callable[[str], Offset] | None = None) -> Evaluator:
    """``count``: the number of elevated members of the group (the lifecycle's subject is the group);
    ``isolated``: 1 while this sensor is the only elevated member; ``residual``: how far this sensor's
    value is from the median of the fresh group (absolute), after removing every member's usual gap
    when the rule learns offsets (``offsets`` gives a member's ``Offset``, created on first use). A
    member counts while its latest value of the metric is no older than the window."""
    hood, th = rule.neighbourhood, rule.thresholds
    assert hood is not None and th is not None
    group = _Members(members, sensors)
    step = _stepper(th, lc, rule, emit)
    value_of = _member_value(rule)
    metric = rule.metrics[0] if rule.value is None else None  # a metric rule reads its members inline
    if hood.measure == "quorum":
        return _quorum(value_of, hood, th.direction == "above", group, step)
    if hood.measure == "residual":
        assert offsets is not None or not hood.stateful
        return _residual(value_of, hood, group, step, lc, offsets if hood.stateful else None, metric)
    return _elevated(hood, group, step, metric, value_of)


#: (member, cutoff) -> the member's compared value, or None when it is not fresh (or cannot be computed)
_ValueOf = Callable[[SensorState, float], "float | None"]


def _member_value(rule: Rule) -> _ValueOf:
    """The rule's metric, or its ``match.value`` expression on the member's values and labels, as long as
    every metric it reads is no older than the cutoff (NaN or a missing name: no value)."""
    if rule.value is None:
        metric = rule.metrics[0]

        def of_metric(st: SensorState, cutoff: float) -> float | None:
            t = st.mts.get(metric)
            return st.values.get(metric) if t is not None and t >= cutoff else None

        return of_metric
    compute, metrics = fast(rule.value), rule.metrics

    def of_expression(st: SensorState, cutoff: float) -> float | None:
        mts = st.mts
        for m in metrics:
            t = mts.get(m)
            if t is None or t < cutoff:
                return None
        try:
            v = compute(st.values)
        except KeyError:
            return None
        return v if v == v else None

    return of_expression


def _quorum(value_of: _ValueOf, hood: Neighbourhood, above: bool, group: _Members, step: _Step) -> Evaluator:
    """The ``quorum``-th highest fresh member value (lowest for ``below``); fewer fresh members: the last."""
    states, window, need = group.states, hood.window_s, hood.quorum

    def on_quorum(me: SensorState, ts: float, out: list[AlertEvent]) -> None:
        if group.pending:
            group.resolve()
        cutoff = ts - window
        vs = []
        for other in states:
            v = value_of(other, cutoff)
            if v is not None:
                vs.append(v)
        if not vs:
            return
        vs.sort(reverse=above)
        step(me, ts, vs[need - 1] if need <= len(vs) else vs[-1], out)

    return on_quorum


def _residual(value_of: _ValueOf, hood: Neighbourhood, group: _Members, step: _Step, lc: Lifecycle,
                 offsets: Callable[[str], Offset] | None, metric: str | None = None) -> Evaluator:
    """The residual over any member value, and with offsets: each member's usual gap removed. The sensor
    learns its own gap from the raw median (every fresh member, itself included) while its finding is
    neither pending nor open; once it has learned for ``learn_s`` the residual is its value less its gap,
    less the median of the fresh members' values less theirs (members that have learned nothing yet are
    left out); before that it is the plain residual (what the rule gives without offsets). With ``smooth_s``
    the value is the magnitude of the signed residual's exponential average (per member, engine state).
    For a metric rule (``metric``) the members' values are read inline, one call fewer per member and
    reading; an expression goes through ``value_of``. Members' ids are collected only for offsets."""
    states = group.states
    window, min_others, tau, learn = hood.window_s, hood.min_others, hood.offsets_tau_s, hood.learn_s
    smooth = hood.smooth_s
    mine_of: dict[str, Offset] = {}  # this evaluator's view of the members' records (the engine owns them)

    def offset(sid: str) -> Offset:
        o = mine_of.get(sid)
        if o is None:
            assert offsets is not None
            o = mine_of[sid] = offsets(sid)
        return o

    def on_residual(me: SensorState, ts: float, out: list[AlertEvent]) -> None:
        if group.pending:
            group.resolve()
        cutoff = ts - window
        vals: list[float] = []
        ids: list[str] = []
        if metric is not None:
            mine = me.values.get(metric)
            for other in states:
                t = other.mts.get(metric)
                if t is not None and t >= cutoff:
                    v = other.values.get(metric)
                    if v is not None:
                        vals.append(v)
                        if tau is not None:
                            ids.append(other.id)
        else:
            mine = value_of(me, cutoff)
            for other in states:
                v = value_of(other, cutoff)
                if v is not None:
                    vals.append(v)
                    if tau is not None:
                        ids.append(other.id)
        k = len(vals)
        if mine is None or k - 1 < min_others:
            return
        if tau is None:
            vals.sort()
            r = mine - (vals[k // 2] if k % 2 else 0.5 * (vals[k // 2 - 1] + vals[k // 2]))
            step(me, ts, abs(r if smooth is None else offset(me.id).smoothed(r, ts, smooth)), out)
            return
        o = offset(me.id)
        if not o.n or ts - o.since < learn or lc.idle:
            raw = sorted(vals)
            gap = mine - (raw[k // 2] if k % 2 else 0.5 * (raw[k // 2 - 1] + raw[k // 2]))
            if lc.idle:
                o.learn(gap, ts, tau, learn)
            if ts - o.since < learn:  # still learning: the plain residual, as without offsets
                step(me, ts, abs(gap if smooth is None else o.smoothed(gap, ts, smooth)), out)
                return
        ys = []
        for v, sid in zip(vals, ids, strict=True):
            other_o = mine_of.get(sid) or offset(sid)
            if other_o.n:
                ys.append(v - other_o.gap)
        k = len(ys)
        if k - 1 < min_others:
            return
        ys.sort()
        r = mine - o.gap - (ys[k // 2] if k % 2 else 0.5 * (ys[k // 2 - 1] + ys[k // 2]))
        step(me, ts, abs(r if smooth is None else o.smoothed(r, ts, smooth)), out)

    return on_residual


def _elevated(hood: Neighbourhood, group: _Members, step: _Step, metric: str | None, value_of: _ValueOf) -> Evaluator:
    """``count`` (the number of elevated members) or ``isolated`` (1.0 when ``me`` alone is elevated). For a
    metric rule the members' values are read and ``Neighbourhood.elevated`` applied inline (at or above
    ``bound`` if ``above``, else at or below): one call per member and reading saved; an expression goes
    through ``value_of``."""
    states, window, count = group.states, hood.window_s, hood.measure == "count"
    above = hood.member_above is not None
    bound = hood.member_above if hood.member_above is not None else hood.member_below
    assert bound is not None

    def on_elevated(me: SensorState, ts: float, out: list[AlertEvent]) -> None:
        if group.pending:
            group.resolve()
        cutoff = ts - window
        n = 0
        me_up = False
        if metric is not None:
            # the value first: most members are not elevated, and their time is then never looked up
            for other in states:
                v = other.values.get(metric)
                if v is not None and ((v >= bound) if above else (v <= bound)):
                    t = other.mts.get(metric)
                    if t is not None and t >= cutoff:
                        n += 1
                        me_up = me_up or other is me
        else:
            for other in states:
                v = value_of(other, cutoff)
                if v is not None and ((v >= bound) if above else (v <= bound)):
                    n += 1
                    me_up = me_up or other is me
        step(me, ts, float(n) if count else (1.0 if n == 1 and me_up else 0.0), out)

    return on_elevated
