"""Compiled rules: what the loader produces and the engine consumes. Frozen and pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from lifeline.model import Level

RuleKind = Literal["threshold", "condition", "nodata"]
DetectorOutput = Literal["score", "value"]
Direction = Literal["above", "below"]


class Expr(Protocol):
    """A compiled, side-effect-free expression over one sensor's latest metric values."""

    @property
    def source(self) -> str: ...

    @property
    def names(self) -> frozenset[str]:
        """The names it reads: metrics, or numeric sensor labels."""
        ...

    def __call__(self, env: Mapping[str, float]) -> float: ...


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Level boundaries, ascending by level. ``above``: value >= bound enters the level;
    ``below``: value <= bound enters it. Leaving a level needs ``hysteresis`` beyond the bound."""

    direction: Direction
    levels: tuple[tuple[Level, float], ...]
    hysteresis: float = 0.0

    def level_of(self, value: float, margin: float = 0.0) -> Level | None:
        """The highest level whose bound ``value`` reaches; ``margin`` widens every bound
        (used with ``margin = hysteresis`` to decide whether a level is still held)."""
        found: Level | None = None
        if self.direction == "above":
            for level, bound in self.levels:
                if value >= bound - margin:
                    found = level
        else:
            for level, bound in self.levels:
                if value <= bound + margin:
                    found = level
        return found


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    """Compare a sensor with the other members of its group (same corridor, asset or district).

    A member is *elevated* when its latest value of the rule's metric, no older than ``window_s``,
    is at or above ``member_above`` (or at or below ``member_below``). ``measure: count`` makes the
    group the alert's subject and its value the number of elevated members: several wells together
    read as one incident. ``measure: isolated`` keeps the sensor as subject and gives 1 while it is
    elevated and no other member is: a lone reading that its neighbours do not confirm is a
    sensor-health finding. ``measure: residual`` gives how far the sensor's value is from the median
    of the fresh group, itself included (absolute, in the metric's unit; needs at least ``min_others``
    fresh neighbours — use 2 or more so one drifting member cannot move the median): a sensor drifting
    away from neighbours that do not follow it is a sensor-health finding. Threshold the magnitude
    (a chart on the residual would also react to the small shift a drifter causes in its neighbours'
    residuals when the median changes hands).

    ``offsets_tau_s`` (residual only; YAML ``offsets: 1d``): members rarely agree exactly — a node
    downstream reads a little lower, one zone of a venue is always busier — and an absolute residual
    must then be wide enough for the largest usual gap, which hides a drift that starts on the far side
    of it. With offsets, each member learns its usual signed gap from the group's median (the mean over
    its first ``learn_s``, then an exponential average with this time constant; paused while the member's
    own finding is pending or open) and the residual compares members *after* removing their usual gaps: the drifter
    moves alone and its healthy neighbours stay near 0. Until a member has learned for ``learn_s``
    (YAML ``learn: 1h``) its residual is the plain one. The time constant is the trade-off: a drift much slower than it
    is absorbed, not reported; a legitimate change of the usual gap (a valve re-set) reads as a drift
    for about that long. ``smooth_s`` (residual only; YAML ``smooth: 10m``) judges the exponential
    average of the signed residual instead of each reading's: a flow meter's ±10 % reading noise or a
    train arriving at one platform zone every few minutes no longer breaks the ``for`` of a real drift.

    ``measure: quorum`` is the safety counterpart: the group is the subject and its value is the
    ``quorum``-th highest of the fresh members' values (lowest, for ``direction: below``), so a level is
    reached only when that many members reach it together — a regulator failure moves every pressure
    point of the pipe, a transmitter fault moves one. With fewer fresh members than ``quorum`` (a twin
    silent or not yet reporting) the lowest-ranked fresh one decides: a quorum never hides what the
    members that do report agree on.

    The compared value is the rule's metric, or its ``match.value`` expression evaluated on each
    member (its own labels included, e.g. a deviation in % of each member's own set point); a member
    counts while every metric the expression reads is no older than the window."""

    group_by: str  # "asset", "district" or the name of a sensor label (e.g. "corridor")
    member_above: float | None = None
    member_below: float | None = None
    window_s: float = 900.0
    measure: Literal["count", "isolated", "residual", "quorum"] = "count"
    min_others: int = 2  # residual: at least this many fresh neighbours, or no verdict
    offsets_tau_s: float | None = None  # residual: learn each member's usual gap (time constant), None = off
    learn_s: float = 3600.0  # residual with offsets: learning time before the first verdict
    quorum: int = 2  # quorum: how many fresh members must reach a level together
    smooth_s: float | None = None  # residual: exponential average of the signed residual (time constant), None = off

    @property
    def stateful(self) -> bool:
        """A residual that keeps per-member state (learned gaps, a smoothed residual): engine state."""
        return self.offsets_tau_s is not None or self.smooth_s is not None

    def elevated(self, value: float) -> bool:
        if self.member_above is not None:
            return value >= self.member_above
        assert self.member_below is not None
        return value <= self.member_below


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule. Exactly one of ``thresholds`` (kind threshold), ``condition``+``level``
    (kind condition) or ``nodata_after_s``/``nodata_intervals`` (kind nodata) is set."""

    id: str
    domain: str
    kind: RuleKind
    title: str
    source: str  # "file:line" of the rule, for messages
    metrics: tuple[str, ...] = ()  # metrics whose arrival triggers evaluation
    value: Expr | None = None  # numeric value compared with thresholds
    thresholds: Thresholds | None = None
    condition: Expr | None = None
    level: Level | None = None
    for_s: float = 0.0
    clear_for_s: float = 0.0
    nodata_after_s: float | None = None  # fixed staleness timeout
    nodata_intervals: float | None = None  # or a multiple of the sensor's expected interval
    sensors: frozenset[str] | None = None  # restrict to these sensor ids
    labels: Mapping[str, str] = field(default_factory=dict)  # sensor label equality match
    asset_types: frozenset[str] | None = None
    message: str = ""
    playbook: str = ""
    owner: str = ""
    # A threshold rule may put a streaming detector between the value and the thresholds: the
    # thresholds then apply to the detector's verdict (its ``score`` in [0, 1], or its ``value``).
    detector: str | None = None  # registry key in lifeline.detectors.DETECTORS
    detector_params: Mapping[str, Any] = field(default_factory=dict)
    detector_on: DetectorOutput = "score"
    health: bool = False  # findings are about the sensor (stuck, spike), not about the city
    neighbourhood: Neighbourhood | None = None


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    files: tuple[str, ...] = ()

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}
