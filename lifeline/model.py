"""The nouns every part of lifeline shares: levels, sensors, readings, alert events, dead letters.

All are immutable and typed: frozen, slotted dataclasses, except ``Reading``, a ``NamedTuple``
because the decoder builds one per metric value. Times are event times in epoch seconds (UTC) as
``float``: the hot path handles hundreds of thousands of readings a second, and a float is what both
the wire format and numpy carry; ``lifeline.timefmt`` renders them as RFC 3339 UTC for people.
This module must never import anything from the rest of lifeline.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Quality = Literal["good", "suspect", "bad"]
QUALITIES: frozenset[str] = frozenset({"good", "suspect", "bad"})


class Level(enum.IntEnum):
    """The four warning colours, ordered: blue < yellow < orange < red (Chinese levels Ⅳ..Ⅰ)."""

    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def colour(self) -> str:
        return self.name.lower()

    @property
    def cn(self) -> str:
        """The Chinese level numeral: red = Ⅰ (highest) ... blue = Ⅳ (lowest)."""
        return {4: "Ⅰ", 3: "Ⅱ", 2: "Ⅲ", 1: "Ⅳ"}[int(self)]

    @classmethod
    def parse(cls, text: str) -> Level:
        return cls[text.strip().upper()]


LEVEL_NAMES: tuple[str, ...] = tuple(level.colour for level in Level)


@dataclass(frozen=True, slots=True)
class Sensor:
    """One registered sensor, as a city's asset register would export it."""

    id: str
    domain: str
    district: str
    lon: float
    lat: float
    asset: str = ""
    asset_type: str = ""
    owner: str = ""
    interval_s: float = 60.0
    metrics: Mapping[str, str] = field(default_factory=dict)  # metric name -> unit
    labels: Mapping[str, str] = field(default_factory=dict)


class Reading(NamedTuple):
    """One metric value of one sensor at one event time.

    ``ts_assumed`` is true when the payload carried no ``ts`` and the receive time was used.
    A ``NamedTuple``, not a dataclass: construction is the decoder's largest cost (~0.75 µs against
    ~2.8 µs for a frozen slotted dataclass). Equality and hash are by value as before; being a tuple,
    a Reading also compares equal to a plain tuple of the same values.
    """

    sensor: str
    domain: str
    metric: str
    ts: float
    value: float
    seq: int | None = None
    quality: Quality = "good"
    unit: str | None = None
    ts_assumed: bool = False


class EventKind(enum.StrEnum):
    FIRED = "fired"
    ESCALATED = "escalated"
    DEESCALATED = "deescalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertState(enum.StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertKind(enum.StrEnum):
    """Safety alerts are about the city; ``nodata`` and ``health`` alerts are about the sensor
    (silent; stuck, spiking or drifting) and must not be read as incidents."""

    SAFETY = "safety"
    NODATA = "nodata"
    HEALTH = "health"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One transition of one alert (one open incident per (rule, subject)).

    ``id`` is deterministic (rule, subject, start time), so the live engine, a backtest and a
    restarted engine give the same ids; ``(id, seq)`` identifies the transition.
    """

    id: str
    seq: int
    rule: str
    kind: AlertKind
    subject: str
    sensor: str
    domain: str
    district: str
    level: Level
    state: AlertState
    event: EventKind
    started: float
    ts: float
    value: float | None
    message: str
    title: str = ""
    owner: str = ""
    playbook: str = ""
    actor: str = "engine"
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape (README "Alerts"); times as epoch seconds and RFC 3339."""
        from lifeline.timefmt import rfc3339

        return {
            "id": self.id,
            "seq": self.seq,
            "rule": self.rule,
            "kind": self.kind.value,
            "subject": self.subject,
            "sensor": self.sensor,
            "domain": self.domain,
            "district": self.district,
            "level": self.level.colour,
            "level_cn": self.level.cn,
            "state": self.state.value,
            "event": self.event.value,
            "started": self.started,
            "started_at": rfc3339(self.started),
            "ts": self.ts,
            "at": rfc3339(self.ts),
            "value": self.value,
            "message": self.message,
            "title": self.title,
            "owner": self.owner,
            "playbook": self.playbook,
            "actor": self.actor,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlertEvent:
        return cls(
            id=str(d["id"]),
            seq=int(d["seq"]),
            rule=str(d["rule"]),
            kind=AlertKind(d.get("kind", "safety")),
            subject=str(d["subject"]),
            sensor=str(d.get("sensor", d["subject"])),
            domain=str(d["domain"]),
            district=str(d.get("district", "")),
            level=Level.parse(str(d["level"])),
            state=AlertState(d["state"]),
            event=EventKind(d["event"]),
            started=float(d["started"]),
            ts=float(d["ts"]),
            value=None if d.get("value") is None else float(d["value"]),
            message=str(d.get("message", "")),
            title=str(d.get("title", "")),
            owner=str(d.get("owner", "")),
            playbook=str(d.get("playbook", "")),
            actor=str(d.get("actor", "engine")),
            reason=str(d.get("reason", "")),
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input: a machine-readable ``reason`` (see ``lifeline.codec.REASONS``),
    a human ``detail`` naming the thing, the place and the value, and an excerpt of the input."""

    reason: str
    detail: str
    topic: str = ""
    excerpt: str = ""
    sensor: str = ""
    ts: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "topic": self.topic,
            "excerpt": self.excerpt,
            "sensor": self.sensor,
            "ts": self.ts,
        }
