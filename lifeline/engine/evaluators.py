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


def _stepper(th: Thresholds, lc: Lifecycle, rule: Rule, emit: Emit) -> Callable[[SensorState, float, float,
                                                                              list[AlertEvent]], None]:
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
    step = _stepper(th, lc, rule, emit)

    def on_detector(st: SensorState, ts: float, out: list[AlertEvent]) -> None:
        try:
            x = st.values[metric] if compute is None else compute(st.values)
        except KeyError:
            return
        verdict = update(ts, x, st.values)
        if verdict is not None:  # None: warm-up or NaN, no evidence either way
            step(st, ts, verdict.score if on_score else verdict.value, out)

    return on_detector


def neighbourhood(rule: Rule, lc: Lifecycle, members: tuple[str, ...], sensors: Mapping[str, SensorState],
                  emit: Emit) -> Evaluator:
    """``count``: the number of elevated members of the group (the lifecycle's subject is the group);
    ``isolated``: 1 while this sensor is the only elevated member; ``residual``: how far this sensor's
    value is from the median of the fresh group (absolute)."""
    hood, th = rule.neighbourhood, rule.thresholds
    assert hood is not None and th is not None
    measure, metric, elevated, window = hood.measure, rule.metrics[0], hood.elevated, hood.window_s
    step = _stepper(th, lc, rule, emit)

    def fresh(ts: float) -> list[tuple[SensorState, float]]:
        cutoff = ts - window
        out: list[tuple[SensorState, float]] = []
        for sid in members:
            other = sensors.get(sid)
            if other is None:
                continue
            t, v = other.mts.get(metric), other.values.get(metric)
            if t is not None and t >= cutoff and v is not None:
                out.append((other, v))
        return out

    def on_neighbourhood(me: SensorState, ts: float, out: list[AlertEvent]) -> None:
        group = fresh(ts)
        if measure == "residual":
            mine = me.values.get(metric)
            if mine is None or len(group) - 1 < hood.min_others:
                return
            # the median of the whole group, this sensor included: one drifting member of three or
            # more cannot move it, so the steady neighbours read ~0 and only the drifter deviates
            vs = sorted(v for _, v in group)
            k = len(vs)
            x = abs(mine - (vs[k // 2] if k % 2 else 0.5 * (vs[k // 2 - 1] + vs[k // 2])))
        else:
            up = [s for s, v in group if elevated(v)]
            x = float(len(up)) if measure == "count" else (1.0 if up == [me] else 0.0)
        step(me, ts, x, out)

    return on_neighbourhood
