"""The shipped rule packs against simulated scenarios with ground truth."""

from __future__ import annotations

from tests.scenario.conftest import backtest, demo_registry, expected_levels, max_levels, simulate


def test_scenario_e2e_small_alerts_equal_ground_truth() -> None:
    """Every expected (rule, sensor, max level) of e2e_small is produced, and nothing else."""
    run = simulate("e2e_small")
    events, dead = backtest(run.lines())
    assert dead == {}
    assert max_levels(events) == expected_levels(run.truth())


def test_scenario_e2e_small_stuck_sensor_raises_no_safety_alert() -> None:
    """The stuck water-pressure logger is a sensor fault: a health finding on that sensor, no safety alert."""
    run = simulate("e2e_small")
    events, _ = backtest(run.lines())
    mine = [e for e in events if e.sensor == "LY-WAT-M1-N1"]
    assert not [e for e in mine if e.kind.value == "safety"]
    assert {(e.rule, e.kind.value) for e in mine if e.event.value == "fired"} == {("water.pressure.stuck", "health")}


def test_scenario_quiet_city_raises_no_safety_alert() -> None:
    """Six hours of the whole demo city with no incident and no fault: the packs stay quiet."""
    run = simulate("quiet", duration=6 * 3600.0)
    events, dead = backtest(run.lines())
    assert dead == {}
    assert len(run) > 50_000
    assert [e.to_dict() for e in events] == []


def test_scenario_demo_alerts_match_its_incidents() -> None:
    """The demo: alerts in all six domains, the first within 30 s of simulated time, every expected
    (rule, sensor, level) reached, and no safety alert on a sensor that no incident touched."""
    run = simulate("demo", duration=3 * 3600.0)
    truth = run.truth()
    events, dead = backtest(run.lines())
    assert dead == {}
    fired = [e for e in events if e.event.value == "fired"]
    assert {e.domain for e in fired} == {"gas", "water", "drainage", "bridge", "elevator", "crowd"}
    assert min(e.ts for e in fired) - truth["start"] <= 30.0
    reached = max_levels(events)
    for (rule, sensor), level in expected_levels(truth).items():
        assert reached.get((rule, sensor)) == level, (rule, sensor, level, reached.get((rule, sensor)))
    touched = {a["sensor"] for inc in truth["incidents"] for a in inc["affected"]}
    registry = demo_registry()
    # group alerts (neighbourhood count / quorum) are on "<group_by>:<group>": touched when a member is
    touched_groups = {f"corridor:{registry.sensors[s].labels['corridor']}" for s in touched
                      if "corridor" in registry.sensors[s].labels}
    touched_groups |= {f"asset:{registry.sensors[s].asset}" for s in touched}
    assert {e.subject for e in events if e.kind.value == "safety"} <= touched | touched_groups


def test_scenario_replay_is_deterministic() -> None:
    """The same scenario backtested twice gives byte-identical alert events."""
    a, _ = backtest(simulate("e2e_small").lines())
    b, _ = backtest(simulate("e2e_small").lines())
    assert [e.to_dict() for e in a] == [e.to_dict() for e in b] and a
