"""Property: a snapshot/restore at any point changes no output of the engine."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeline.engine import Engine
from lifeline.model import Reading
from lifeline.rules.model import RuleSet
from lifeline.testing import detector_rule, nodata_rule, registry_of, sensors, threshold_rule

T0 = 1_764_403_200.0
RULES = RuleSet((
    threshold_rule(hysteresis=2, for_s=20, clear_for_s=10),
    threshold_rule("gas.pressure.low", "p", {"yellow": 0.2, "red": 0.1}, direction="below", hysteresis=0.02),
    nodata_rule(intervals=2),
    detector_rule(params={"window": 8, "min_samples": 4}),
))
REG = registry_of(sensors("gas", 3, interval_s=15))

step = st.tuples(
    st.integers(0, 2),  # sensor
    st.sampled_from(["ch4_lel", "p"]),
    st.floats(0.0, 70.0, allow_nan=False),
    st.floats(0.0, 40.0, allow_nan=False),  # time step
    st.booleans(),  # also tick
)


def _readings(steps: list[tuple[int, str, float, float, bool]]) -> list[tuple[Reading | None, float]]:
    t = T0
    out: list[tuple[Reading | None, float]] = []
    for i, (s, m, v, dt, tick) in enumerate(steps):
        t += dt
        value = v / 100.0 if m == "p" else v
        out.append((Reading(f"gas-{s:04d}", "gas", m, t, value, seq=i), t))
        if tick:
            out.append((None, t + 30))
    return out


def _boundaries(items: list[tuple[Reading | None, float]]) -> list[int]:
    """Indexes where a snapshot may be taken: never inside one payload (same sensor and ts)."""
    out = [0, len(items)]
    for i in range(1, len(items)):
        a, b = items[i - 1][0], items[i][0]
        if a is None or b is None or (a.sensor, a.ts) != (b.sensor, b.ts):
            out.append(i)
    return sorted(set(out))


def _run(items: list[tuple[Reading | None, float]], cut: int | None) -> list[dict[str, object]]:
    eng = Engine(RULES, REG)
    events: list[dict[str, object]] = []
    for i, (r, t) in enumerate(items):
        if i == cut:
            snap = orjson.loads(orjson.dumps(eng.snapshot()))  # through JSON, as the store keeps it
            eng = Engine(RULES, REG)
            eng.restore(snap)
        out = eng.process([r]) if r is not None else eng.tick(t)
        events.extend(e.to_dict() for e in out.events)
        events.extend(d.to_dict() for d in out.dead)
    return events


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=1, max_size=60), st.data())
def test_engine_snapshot_restore_is_invisible(steps: list[tuple[int, str, float, float, bool]],
                                              data: st.DataObject) -> None:
    """Restoring a JSON round-tripped snapshot at any index gives exactly the uninterrupted output."""
    items = _readings(steps)
    cut = data.draw(st.sampled_from(_boundaries(items)))
    assert _run(items, cut) == _run(items, None)


@settings(max_examples=50, deadline=None)
@given(st.lists(step, min_size=1, max_size=60))
def test_engine_is_deterministic(steps: list[tuple[int, str, float, float, bool]]) -> None:
    """The same input twice gives identical events and dead letters."""
    items = _readings(steps)
    assert _run(items, None) == _run(items, None)


@settings(max_examples=80, deadline=None)
@given(st.lists(step, min_size=1, max_size=60), st.integers(1, 7))
def test_engine_batching_is_invisible(steps: list[tuple[int, str, float, float, bool]], size: int) -> None:
    """Feeding readings in batches of any size gives the same output as one by one (live == backtest)."""
    readings = [r for r, _ in _readings(steps) if r is not None]
    payloads: list[list[Reading]] = []
    for r in readings:  # readings of one payload share sensor and ts, and are never split
        if payloads and (payloads[-1][0].sensor, payloads[-1][0].ts) == (r.sensor, r.ts):
            payloads[-1].append(r)
        else:
            payloads.append([r])
    one = Engine(RULES, REG)
    singles = [e.to_dict() for p in payloads for e in one.process(p).events]
    many = Engine(RULES, REG)
    batched = []
    for i in range(0, len(payloads), size):
        chunk = [r for p in payloads[i : i + size] for r in p]
        batched.extend(e.to_dict() for e in many.process(chunk).events)
    assert batched == singles
