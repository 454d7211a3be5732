"""Shards: which sensors must be judged by the same engine when the city is split over several workers.

A neighbourhood rule reads the other sensors of its group (an asset, a district, a corridor), so every
sensor of a group must be in one engine, and in the order the readings arrived. Everything else the
engine decides depends on one sensor's own readings (nodata alerts too: ``Engine._catch_up``). A shard is
therefore a connected component of the "share a neighbourhood group under some rule" relation over the
register; its key is the smallest sensor id in it. A sensor in no group is a shard of its own, and so is a
sensor that is not in the register (its readings are dead letters anyway).

``partition_of`` maps a shard key to one of ``n`` partitions with CRC-32 (the same in every process and
every Python, unlike ``hash``). The bridge sends each reading to its sensor's shard's partition (the Kafka
record key stays the sensor id), so one partition holds whole shards in arrival order, and an engine per
partition gives exactly the alerts of one engine over the whole stream (``tests/unit/test_shards.py``).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from lifeline.engine.state import group_of, rule_applies
from lifeline.registry import Registry
from lifeline.rules.model import RuleSet


def shard_keys(rules: RuleSet, registry: Registry) -> dict[str, str]:
    """Sensor id -> shard key, for every registered sensor (union-find over the neighbourhood groups)."""
    parent: dict[str, str] = {sid: sid for sid in registry.sensors}

    def find(x: str) -> str:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for rule in rules.rules:
        if rule.neighbourhood is None:
            continue
        first: dict[str, str] = {}  # group -> its first member seen
        for s in registry.sensors.values():
            if not rule_applies(rule, s.id, s.domain, s):
                continue
            g = group_of(rule, s)
            if g is None:
                continue
            other = first.setdefault(g, s.id)
            a, b = find(other), find(s.id)
            if a != b:
                parent[max(a, b)] = min(a, b)  # the smaller id is the root: the key is the component's min
    return {sid: find(sid) for sid in parent}


def partition_of(key: str, partitions: int) -> int:
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1 (got {partitions})")
    return zlib.crc32(key.encode()) % partitions


class Sharding:
    """A sensor's partition, for the bridge (sensors missing from the register: by their own id)."""

    def __init__(self, keys: Mapping[str, str], partitions: int) -> None:
        self.partitions = partitions
        self._of = {sid: partition_of(key, partitions) for sid, key in keys.items()}

    def partition(self, sensor: str) -> int:
        p = self._of.get(sensor)
        return partition_of(sensor, self.partitions) if p is None else p

    def sizes(self) -> list[int]:
        """Registered sensors per partition (how even the split is)."""
        out = [0] * self.partitions
        for p in self._of.values():
            out[p] += 1
        return out
