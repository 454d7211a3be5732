"""Matchers: which alerts a route, an inhibition rule, a silence or a maintenance window is about.

``{domain: gas, level: ">=orange", rule: "gas.*", labels: {building: B12}}``: every key must hold. Keys:
``domain``, ``kind`` (safety / health / nodata), ``level`` (``red``, or at least: ``">=orange"``),
``district``, ``rule`` (exact, or a prefix ending in ``*``), ``sensor``, ``owner``, and ``labels`` (the
sensor's registry labels). One parser (``match_from``) serves the routing file and the silence CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lifeline.model import AlertEvent, Level

MATCH_KEYS = ("domain", "kind", "level", "district", "rule", "sensor", "owner", "labels")
LEVELS = {lv.colour: lv for lv in Level}
KINDS = ("safety", "health", "nodata")


@dataclass(frozen=True)
class Match:
    """All must hold. ``level_min``: at least this level; ``rule_prefix``: the rule starts with it."""

    fields: tuple[tuple[str, str], ...] = ()  # (event attribute, value) equalities
    level_min: Level | None = None
    rule_prefix: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def __call__(self, e: AlertEvent, labels: Mapping[str, str]) -> bool:
        for k, v in self.fields:
            if attr(e, k) != v:
                return False
        if self.level_min is not None and e.level < self.level_min:
            return False
        if self.rule_prefix is not None and not e.rule.startswith(self.rule_prefix):
            return False
        return all(labels.get(k) == v for k, v in self.labels)

    def to_dict(self) -> dict[str, Any]:
        """The mapping ``match_from`` reads back (stored silences, the console)."""
        out: dict[str, Any] = dict(self.fields)
        if self.level_min is not None:
            out["level"] = ">=" + self.level_min.colour
        if self.rule_prefix is not None:
            out["rule"] = self.rule_prefix + "*"
        if self.labels:
            out["labels"] = dict(self.labels)
        return out

    def __str__(self) -> str:
        d = self.to_dict()
        labels = d.pop("labels", {})
        parts = [f"{k}={v}" if not str(v).startswith(">=") else f"{k}{v}" for k, v in d.items()]
        parts += [f"labels.{k}={v}" for k, v in labels.items()]
        return ", ".join(parts) or "everything"


def attr(e: AlertEvent, key: str) -> str:
    if key == "level":
        return e.level.colour
    if key == "kind":
        return e.kind.value
    return str(getattr(e, key))


def match_from(m: Mapping[str, Any], report: Callable[[tuple[str, ...], str], None]) -> Match:
    """A ``Match`` from a mapping of matcher keys; ``report(key path, message)`` for each problem (unknown
    keys included), so a caller can point at the file position or the command-line flag."""
    fields: list[tuple[str, str]] = []
    level_min: Level | None = None
    prefix: str | None = None
    labels: list[tuple[str, str]] = []
    for k, v in m.items():
        if k == "labels":
            if not isinstance(v, Mapping):
                report((k,), "expected a mapping of label names to values")
                continue
            labels.extend((str(lk), str(lv)) for lk, lv in v.items())
            continue
        if k not in MATCH_KEYS:
            report((k,), f"unknown matcher {k!r} (one of {', '.join(MATCH_KEYS)})")
            continue
        if not isinstance(v, str) or not v.strip():
            report((k,), f"expected text (got {v!r})")
            continue
        text = v.strip()
        if k == "level":
            name = text[2:].strip() if text.startswith(">=") else text
            if name not in LEVELS:
                report((k,), f"unknown level {name!r} (blue, yellow, orange, red; or '>=orange')")
            elif text.startswith(">="):
                level_min = LEVELS[name]
            else:
                fields.append(("level", name))
        elif k == "kind" and text not in KINDS:
            report((k,), f"unknown kind {text!r} (safety, health or nodata)")
        elif k == "rule" and text.endswith("*"):
            prefix = text[:-1]
        else:
            fields.append((k, text))
    return Match(tuple(fields), level_min, prefix, tuple(labels))
