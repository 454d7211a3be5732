"""Property: looking only at the sensors whose staleness entry has come up (the scan's agenda) changes no output."""

from __future__ import annotations

import heapq
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from lifeline.engine import Engine
from lifeline.model import AlertEvent, Level, Reading
from lifeline.rules.model import RuleSet
from lifeline.testing import nodata_rule, registry_of, sensors, threshold_rule

T0 = 1_764_403_200.0
RULES = RuleSet((
    threshold_rule(hysteresis=2, for_s=20, clear_for_s=10),
    nodata_rule(intervals=2),
    nodata_rule("gas.sensor.nodata_long", intervals=5, level=Level.ORANGE),
))
REG = registry_of(sensors("gas", 4, interval_s=15))


class _ScanAlways(Engine):
    """The reference: every sensor looked at in every 10-s check, as before the agenda existed."""

    def _advance(self, wm: float | None, out: list[AlertEvent]) -> None:
        if wm is not None and self._next_check is not None and wm >= self._next_check:
            for sid, st in self._sensors.items():
                if st.last_seen is not None and any(lc.level is None for _, lc in self._nodata_of(st)):
                    st.due_at = -math.inf
                    heapq.heappush(self._due, (-math.inf, sid))
        super()._advance(wm, out)


step = st.tuples(
    st.integers(-1, 3),  # sensor, or -1: a tick
    st.floats(0.0, 70.0, allow_nan=False),
    st.sampled_from([0.0, 1.0, 7.0, 15.0, 29.0, 31.0, 60.0, 75.0, 200.0]),  # time step
)


def _run(engine: Engine, steps: list[tuple[int, float, float]]) -> list[dict[str, object]]:
    t = T0
    events: list[dict[str, object]] = []
    for i, (s, v, dt) in enumerate(steps):
        t += dt
        out = engine.tick(t) if s < 0 else engine.process([Reading(f"gas-{s:04d}", "gas", "ch4_lel", t, v, seq=i)])
        events.extend(e.to_dict() for e in out.events)
    return events


@settings(max_examples=200, deadline=None)
@given(st.lists(step, min_size=1, max_size=80))
def test_skipped_scans_change_nothing(steps: list[tuple[int, float, float]]) -> None:
    fast, ref = Engine(RULES, REG), _ScanAlways(RULES, REG)
    assert _run(fast, steps) == _run(ref, steps)
    assert fast.snapshot() == ref.snapshot()
