"""``health: true`` makes a condition or threshold rule's alerts sensor-health findings (a consistency
or plausibility check about the sensor, not the city); ``health: false`` overrides a health detector."""

from __future__ import annotations

from pathlib import Path

from lifeline.engine import Engine
from lifeline.model import AlertKind, Reading, Sensor
from lifeline.registry import Registry
from lifeline.rules.loader import load_rules

T0 = 1_764_403_200.0
PACK = """
domain: elevator
defaults: {owner: elevator_maintenance}
rules:
  - id: elevator.speed.inconsistent
    title: Speed contradicts the run signal
    condition: "(speed_ratio >= 0.02) != (moving == 1)"
    level: blue
    for: 20s
    health: true
  - id: elevator.car.overspeed
    title: Overspeed
    match: {metric: speed_ratio}
    threshold: {direction: above, levels: {red: 1.15}}
  - id: elevator.speed.glitch_as_safety
    title: A spike rule whose operators want it on the safety board
    match: {metric: speed_ratio}
    detector: {type: spike, min_samples: 3}
    threshold: {direction: above, levels: {blue: 0.99}, on: score}
    health: false
"""


def _engine(tmp_path: Path) -> Engine:
    (tmp_path / "elevator.yaml").write_text(PACK)
    lift = Sensor("L1", "elevator", "LY", 117.2, 31.8, asset="BD1-L1", asset_type="elevator")
    return Engine(load_rules([tmp_path / "elevator.yaml"]), Registry([lift]))


def test_health_flag_sets_the_kind_of_each_rule(tmp_path: Path) -> None:
    rules = {r.id: r.health for r in _engine(tmp_path).rules.rules}
    assert rules == {"elevator.speed.inconsistent": True, "elevator.car.overspeed": False,
                     "elevator.speed.glitch_as_safety": False}


def test_health_condition_fires_as_health_after_its_for(tmp_path: Path) -> None:
    """A car reporting it runs while its speed sensor reads 0 for 20 s: one health alert, not safety."""
    eng = _engine(tmp_path)
    events = []
    for k in range(4):  # reports at 0, 10, 20, 30 s
        t = T0 + 10.0 * k
        events += eng.process([Reading("L1", "elevator", "moving", t, 1.0),
                               Reading("L1", "elevator", "speed_ratio", t, 0.0)]).events
    assert [(e.rule, e.event.value, e.kind, e.ts - T0) for e in events] == [
        ("elevator.speed.inconsistent", "fired", AlertKind.HEALTH, 20.0)]
