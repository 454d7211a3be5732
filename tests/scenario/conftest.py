"""Scenario tests: simulators -> replay lines -> the real engine with the shipped rule packs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lifeline import paths
from lifeline.engine import Engine
from lifeline.model import AlertEvent, AlertKind
from lifeline.registry import Registry, load_registry
from lifeline.rules.loader import load_rules
from simulators.runner import Run, generate
from simulators.scenario import load_scenario


def demo_registry() -> Registry:
    return load_registry(paths.default_registry(), paths.default_districts())


def simulate(name: str, **overrides: Any) -> Run:
    return generate(demo_registry(), load_scenario(name), **overrides)


def backtest(lines: Iterator[bytes]) -> tuple[list[AlertEvent], dict[str, int]]:
    from lifeline.commands.backtest import run_backtest

    engine = Engine(load_rules([paths.REPO / "rules"]), demo_registry())
    events, dead = run_backtest(engine, lines)
    return events, dict(dead)


def max_levels(events: list[AlertEvent]) -> dict[tuple[str, str], str]:
    """(rule, subject) -> the highest level its safety alerts reached. The subject is the sensor, or the
    group for a neighbourhood count (``corridor:LY-GAS-C1``): which well tipped a group alert depends on
    arrival order, the group does not."""
    best: dict[tuple[str, str], AlertEvent] = {}
    for e in events:
        if e.kind is not AlertKind.SAFETY:
            continue
        key = (e.rule, e.subject)
        if key not in best or e.level > best[key].level:
            best[key] = e
    return {k: v.level.colour for k, v in best.items()}


def expected_levels(truth: dict[str, Any]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for inc in truth["incidents"]:
        for x in inc.get("expect", []):
            out[(x["rule"], x["sensor"])] = x["level"]
    for x in truth.get("expect", []):
        out[(x["rule"], x["sensor"])] = x["level"]
    return out
