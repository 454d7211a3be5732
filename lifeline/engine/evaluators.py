"""Evaluators: one closure per (rule, sensor) that turns the sensor's latest values into lifecycle steps.

Each builder returns ``fn(sensor_state, ts, out)``; the engine calls it once per payload of that
sensor (docs/engine.md). Pure: they read engine state, step a ``Lifecycle`` and call ``emit``;
no I/O, no clock. Hot path: a threshold rule with no open alert costs one comparison while the
value stays below its lowest bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lifeline.detectors import Detector
from lifeline.engine.lifecycle import Lifecycle
from lifeline.engine.state import Emit, Evaluator, SensorState
from lifeline.model import AlertEvent
from lifeline.rules.model import Expr, Rule, Thresholds


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


def neighbourhood(rule: Rule, lc: Lifecycle, members: tuple[str, ...], sensors: Mapping[str, SensorState],
                  emit: Emit) -> Evaluator:
    """``count``: the number of elevated members of the group (the lifecycle's subject is the group);
    ``isolated``: 1 while this sensor is the only elevated member; ``residual``: how far this sensor's
    value is from the median of the fresh group (absolute). A member counts while its latest value of
    the metric is no older than the window."""
    hood, th = rule.neighbourhood, rule.thresholds
    assert hood is not None and th is not None
    group = _Members(members, sensors)
    step = _stepper(th, lc, rule, emit)
    if hood.measure == "residual":
        return _residual(rule.metrics[0], hood.window_s, hood.min_others, group, step)
    above = hood.member_above is not None
    bound = hood.member_above if hood.member_above is not None else hood.member_below
    assert bound is not None
    return _elevated(rule.metrics[0], hood.window_s, hood.measure == "count", above, bound, group, step)


def _residual(metric: str, window: float, min_others: int, group: _Members, step: _Step) -> Evaluator:
    states = group.states

    def on_residual(me: SensorState, ts: float, out: list[AlertEvent]) -> None:
        if group.pending:
            group.resolve()
        cutoff = ts - window
        vs: list[float] = []
        for other in states:
            t = other.mts.get(metric)
            if t is not None and t >= cutoff:
                v = other.values.get(metric)
                if v is not None:
                    vs.append(v)
        mine = me.values.get(metric)
        if mine is None or len(vs) - 1 < min_others:
            return
        # the median of the whole group, this sensor included: one drifting member of three or
        # more cannot move it, so the steady neighbours read ~0 and only the drifter deviates
        vs.sort()
        k = len(vs)
        step(me, ts, abs(mine - (vs[k // 2] if k % 2 else 0.5 * (vs[k // 2 - 1] + vs[k // 2]))), out)

    return on_residual


def _elevated(metric: str, window: float, count: bool, above: bool, bound: float, group: _Members,
              step: _Step) -> Evaluator:
    """``count`` (the number of elevated members) or ``isolated`` (1.0 when ``me`` alone is elevated).
    ``Neighbourhood.elevated`` is inlined (at or above ``bound`` if ``above``, else at or below):
    one call per member and reading saved."""
    states = group.states

    def on_elevated(me: SensorState, ts: float, out: list[AlertEvent]) -> None:
        if group.pending:
            group.resolve()
        cutoff = ts - window
        n = 0
        me_up = False
        # the value first: most members are not elevated, and their time is then never looked up
        for other in states:
            v = other.values.get(metric)
            if v is not None and ((v >= bound) if above else (v <= bound)):
                t = other.mts.get(metric)
                if t is not None and t >= cutoff:
                    n += 1
                    me_up = me_up or other is me
        step(me, ts, float(n) if count else (1.0 if n == 1 and me_up else 0.0), out)

    return on_elevated
