"""Split over partitions by shard (lifeline/engine/shards.py), an engine per partition gives exactly the alerts
of one engine over the whole stream: the same ids, levels, transitions and times. This is what lets
`lifeline worker` run the city on N workers with the same alerts as `lifeline backtest`."""

from __future__ import annotations

import orjson
import pytest

from lifeline import paths
from lifeline.commands.backtest import run_backtest
from lifeline.engine import Engine
from lifeline.engine.shards import Sharding, partition_of, shard_keys
from lifeline.engine.state import group_of, rule_applies
from lifeline.model import AlertEvent
from lifeline.rules.loader import load_rules
from lifeline.sources.replay import tick_line
from tests.scenario.conftest import demo_registry, simulate


def _by_transition(events: list[AlertEvent]) -> dict[tuple[str, int], dict[str, object]]:
    out = {(e.id, e.seq): e.to_dict() for e in events}
    assert len(out) == len(events), "a transition twice"
    return out


@pytest.mark.parametrize(("scenario", "duration"), [("demo", 1800.0), ("faults", None)])
@pytest.mark.parametrize("partitions", [2, 5, 12])
def test_an_engine_per_partition_gives_the_alerts_of_one_engine(scenario: str, duration: float | None,
                                                                 partitions: int) -> None:
    rules, registry = load_rules([paths.REPO / "rules"]), demo_registry()
    run = simulate(scenario, duration=duration)
    lines = list(run.lines())
    end = max(orjson.loads(line)["ts"] for line in lines)
    final = tick_line(end + 3600.0)  # the stream's end, told to every partition (the bridge broadcasts ticks)
    whole, _ = run_backtest(Engine(rules, registry), iter([*lines, final]))

    sharding = Sharding(shard_keys(rules, registry), partitions)
    parts: list[list[bytes]] = [[] for _ in range(partitions)]
    for line in lines:
        parts[sharding.partition(orjson.loads(line)["sensor"])].append(line)
    split: list[AlertEvent] = []
    for part in parts:
        events, _ = run_backtest(Engine(rules, registry), iter([*part, final]))
        split += events
    assert sum(1 for p in parts if p) > 1, "the split put everything in one partition"
    assert _by_transition(split) == _by_transition(whole)
    kinds = {e.kind.value for e in whole}
    assert "nodata" in kinds or scenario == "demo", kinds  # the faults scenario's dropout: a nodata alert
    assert len(whole) > 10


def test_neighbourhood_groups_share_a_shard_and_the_key_is_the_smallest_id() -> None:
    rules, registry = load_rules([paths.REPO / "rules"]), demo_registry()
    keys = shard_keys(rules, registry)
    assert set(keys) == set(registry.sensors)
    groups = 0
    for rule in rules.rules:
        hood = rule.neighbourhood
        if hood is None:
            continue
        members: dict[str, set[str]] = {}
        for s in registry.sensors.values():
            if s.domain == rule.domain:
                g = group_of(rule, s)
                if g is not None and rule_applies(rule, s.id, s.domain, s):
                    members.setdefault(g, set()).add(keys[s.id])
        for g, ks in members.items():
            assert len(ks) == 1, f"{rule.id} group {g} split over shards {ks}"
            groups += 1
    assert groups > 10
    for sid, key in keys.items():
        assert key <= sid and keys[key] == key
    n_shards = len(set(keys.values()))
    assert 20 < n_shards < len(keys), n_shards  # grouped, yet many shards to spread
    sizes = Sharding(keys, 12).sizes()
    assert sum(sizes) == len(keys) and min(sizes) > 0
    assert partition_of("LY-GAS-C1-W01", 12) == partition_of("LY-GAS-C1-W01", 12) < 12
