"""One rule mapping -> a ``Rule``: the per-rule schema of a pack (keys, kinds, thresholds, messages).

``RuleReader`` checks every key of one rule and reports each problem through the pack's ``Checker``
with its exact path (``rules[2].threshold.levels.red``); it returns ``None`` for a rule with any
problem. It never raises on bad input, never reads files (``lifeline.rules.loader`` does that and
owns the pack-level keys) and never executes rule text: expressions go through ``lifeline.rules.expr``.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from lifeline.config.yamlmarks import Checker, Document, PathKey, describe, did_you_mean
from lifeline.model import LEVEL_NAMES, Level
from lifeline.rules.analysis import read_detector, read_neighbourhood
from lifeline.rules.expr import CompiledExpr
from lifeline.rules.model import Direction, Rule, RuleKind, Thresholds
from lifeline.timefmt import TimeFormatError, parse_duration

RULE_KEYS: Final = (
    "id", "title", "match", "threshold", "condition", "level", "nodata", "detector", "neighbourhood",
    "for", "clear_for", "message", "playbook", "owner", "health",
)
MATCH_KEYS: Final = ("metric", "value", "labels", "label_names", "asset_types", "sensors")
THRESHOLD_KEYS: Final = ("direction", "levels", "hysteresis", "on")
KINDS: Final[tuple[RuleKind, ...]] = ("threshold", "condition", "nodata")
#: Placeholders every message may use, besides the rule's metrics and label names.
PLACEHOLDERS: Final = ("value", "level", "sensor", "subject", "district", "asset", "rule", "title")
_TEXT_PLACEHOLDERS: Final = frozenset(PLACEHOLDERS) - {"value"}
_RULE_ID: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+){2,}\Z")
_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_MULTIPLE: Final = re.compile(r"\s*(\d+(?:\.\d*)?)\s*x\s*\Z")


class Pack(Protocol):
    """What a rule reader needs from the pack it belongs to (``lifeline.rules.loader``'s pack reader)."""

    doc: Document
    ck: Checker
    domain: str | None
    ids: list[tuple[str, PathKey, str]]  # (id, path of the id, "file:line" of the rule)

    def metric_known(self, name: str, path: PathKey, *, in_expr: bool) -> None: ...

    def expr(self, value: Any, path: PathKey) -> CompiledExpr | None: ...


@dataclass(slots=True)
class _Match:
    metric: str | None = None
    value: CompiledExpr | None = None
    value_path: PathKey = ()
    labels: dict[str, str] = field(default_factory=dict)
    label_names: frozenset[str] = frozenset()
    asset_types: frozenset[str] | None = None
    sensors: frozenset[str] | None = None


@dataclass(slots=True)
class Defaults:
    """A pack's ``defaults:``: what each rule gets unless it sets its own."""

    owner: str | None = None
    for_s: float = 0.0
    clear_for_s: float = 0.0


class RuleReader:
    """Reads one rule mapping into a ``Rule`` (or ``None`` after reporting its problems)."""

    def __init__(self, pack: Pack, path: PathKey, defaults: Defaults) -> None:
        self.pack = pack
        self.ck = pack.ck
        self.path = path
        self.defaults = defaults

    def at(self, *keys: str | int) -> PathKey:
        return (*self.path, *keys)

    def read(self, raw: Any) -> Rule | None:
        before = len(self.ck.problems)
        m = self.ck.mapping(raw, self.path, RULE_KEYS, ("id", "title"))
        if m is None:
            return None
        rid = self._id(m.get("id")) if "id" in m else None
        mark = self.pack.doc.mark(self.path)
        source = f"{mark.file}:{mark.line}"
        if rid is not None:
            self.pack.ids.append((rid, self.at("id"), source))
        title = self.ck.string(m["title"], self.at("title")) if "title" in m else None
        kind = self._kind(m)
        match = self._match(m, kind)
        fields: dict[str, Any] = {}
        if kind == "threshold":
            fields.update(self._threshold(m, match))
        elif kind == "condition":
            fields.update(self._condition(m, match))
        elif kind == "nodata":
            fields.update(self._nodata(m, match))
        if kind is not None:
            self._check_labels_used(match, fields)
            if "health" in m:
                fields.update(self._health(m["health"], kind))
            numeric = () if kind == "nodata" else ("value", *fields.get("metrics", ()), *match.label_names)
            fields["message"] = self._message(m, numeric)
        fields.update(self._texts(m))
        if len(self.ck.problems) > before or rid is None or title is None or kind is None:
            return None
        return Rule(
            id=rid, domain=self.pack.domain or "", kind=kind, title=title, source=source,
            sensors=match.sensors, labels=match.labels, asset_types=match.asset_types, **fields,
        )

    def _id(self, value: Any) -> str | None:
        rid = self.ck.string(value, self.at("id"))
        if rid is None:
            return None
        if not _RULE_ID.match(rid):
            self.ck.report(self.at("id"), "expected an id like 'gas.methane.high': domain.subject.condition "
                                          f"in lowercase (got {rid!r})")
            return None
        domain = self.pack.domain
        if domain is not None and not rid.startswith(domain + "."):
            self.ck.report(self.at("id"), f"rule id must start with the pack's domain {domain + '.'!r} (got {rid!r})")
            return None
        return rid

    def _kind(self, m: dict[str, Any]) -> RuleKind | None:
        given = [k for k in KINDS if k in m]
        if not given:
            self.ck.report(self.path, "a rule needs one of 'threshold', 'condition' or 'nodata'")
            return None
        for extra in given[1:]:
            self.ck.report(self.at(extra), f"{given[0]!r} and {extra!r} cannot both be given", key=True)
        return given[0]

    def _match(self, m: dict[str, Any], kind: RuleKind | None) -> _Match:
        match = _Match()
        raw = m.get("match", {})
        mm = self.ck.mapping(raw, self.at("match"), MATCH_KEYS)
        if mm is None:
            return match
        if "metric" in mm:
            match.metric = self._metric_name(mm["metric"])
        if "value" in mm:
            match.value_path = self.at("match", "value")
            match.value = self.pack.expr(mm["value"], match.value_path)
        if "labels" in mm:
            match.labels = self._labels(mm["labels"])
        for key in ("label_names", "asset_types", "sensors"):
            if key in mm:
                names = self.ck.strings(mm[key], self.at("match", key))
                setattr(match, key, frozenset(names) if names else frozenset())
        self._match_fits_kind(mm, kind, given="match" in m)
        return match

    def _match_fits_kind(self, mm: dict[str, Any], kind: RuleKind | None, *, given: bool) -> None:
        has = [k for k in ("metric", "value") if k in mm]
        if kind == "threshold":
            if not has:
                where = self.at("match") if given else self.path
                self.ck.report(where, "a threshold rule needs match.metric or match.value")
            elif len(has) == 2:
                self.ck.report(self.at("match", "value"), "give match.metric or match.value, not both", key=True)
        elif kind == "condition":
            for k in has:
                self.ck.report(self.at("match", k), f"a condition rule reads the names in its condition; "
                                                    f"remove match.{k}", key=True)
        elif kind == "nodata" and "value" in mm:
            self.ck.report(self.at("match", "value"), "a nodata rule watches a metric; use match.metric", key=True)

    def _metric_name(self, value: Any) -> str | None:
        path = self.at("match", "metric")
        name = self.ck.string(value, path)
        if name is None:
            return None
        if not _NAME.match(name):
            self.ck.report(path, f"expected a metric name like 'ch4_lel' (got {name!r})")
            return None
        self.pack.metric_known(name, path, in_expr=False)
        return name

    def _labels(self, raw: Any) -> dict[str, str]:
        path = self.at("match", "labels")
        out: dict[str, str] = {}
        if not isinstance(raw, dict):
            self.ck.report(path, f"expected a mapping of label -> value (got {describe(raw)})")
            return out
        for k, v in raw.items():
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                self.ck.report((*path, k), f"expected a label value (text or a number) (got {describe(v)})")
            else:
                out[k] = str(v)
        return out

    def _threshold(self, m: dict[str, Any], match: _Match) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "level" in m:
            self.ck.report(self.at("level"), "a threshold rule takes its levels from threshold.levels", key=True)
        if match.value is not None:
            out["value"] = match.value
            out["metrics"] = self._expr_metrics(match.value, match, match.value_path)
        elif match.metric is not None:
            out["metrics"] = (match.metric,)
        out["thresholds"] = self._thresholds(m["threshold"])
        out.update(read_detector(self.ck, self.path, m))
        out.update(read_neighbourhood(self.ck, self.path, m, match.metric))
        out.update(self._timers(m))
        return out

    def _thresholds(self, raw: Any) -> Thresholds | None:
        path = self.at("threshold")
        t = self.ck.mapping(raw, path, THRESHOLD_KEYS, ("direction", "levels"))
        if t is None:
            return None
        direction: Direction | None = None
        if "direction" in t:
            if t["direction"] in ("above", "below"):
                direction = t["direction"]
            else:
                self.ck.report((*path, "direction"), f"expected 'above' or 'below' (got {describe(t['direction'])})")
        levels = self._levels(t["levels"], direction) if "levels" in t else None
        hysteresis = 0.0
        if "hysteresis" in t:
            hysteresis = self.ck.number(t["hysteresis"], (*path, "hysteresis"), minimum=0.0) or 0.0
        if direction is None or levels is None:
            return None
        return Thresholds(direction, levels, hysteresis)

    def _levels(self, raw: Any, direction: Direction | None) -> tuple[tuple[Level, float], ...] | None:
        path = self.at("threshold", "levels")
        if not isinstance(raw, dict) or not raw:
            got = "an empty mapping" if raw == {} else describe(raw)
            self.ck.report(path, f"expected a mapping of level -> bound, e.g. {{yellow: 10, red: 50}} (got {got})")
            return None
        found: list[tuple[Level, float]] = []
        ok = True
        for name, bound in raw.items():
            level = self._level_name(name, (*path, name), key=True)
            number = self.ck.number(bound, (*path, name))
            if level is None or number is None:
                ok = False
            else:
                found.append((level, number))
        if not ok:
            return None
        found.sort()
        return tuple(found) if self._monotonic(found, direction, path) else None

    def _monotonic(self, found: list[tuple[Level, float]], direction: Direction | None, path: PathKey) -> bool:
        for (low, low_bound), (high, high_bound) in itertools.pairwise(found):
            wrong = high_bound <= low_bound if direction == "above" else high_bound >= low_bound
            if direction is not None and wrong:
                side = "above" if direction == "above" else "below"
                self.ck.report((*path, high.colour), f"{high.colour} ({_num(high_bound)}) must be {side} "
                                                     f"{low.colour} ({_num(low_bound)}) for direction {direction!r}")
                return False
        return True

    def _level_name(self, value: Any, path: PathKey, *, key: bool = False) -> Level | None:
        if isinstance(value, str) and value.lower() in LEVEL_NAMES:
            return Level.parse(value)
        if not isinstance(value, str):
            self.ck.report(path, f"expected a level: blue, yellow, orange or red (got {describe(value)})", key=key)
            return None
        hint = did_you_mean(value, LEVEL_NAMES) or " (expected blue, yellow, orange or red)"
        self.ck.report(path, f"unknown level {value!r}{hint}", key=key)
        return None

    def _condition(self, m: dict[str, Any], match: _Match) -> dict[str, Any]:
        out: dict[str, Any] = self._timers(m)
        cond = self.pack.expr(m["condition"], self.at("condition"))
        if cond is not None:
            out["condition"] = cond
            out["metrics"] = self._expr_metrics(cond, match, self.at("condition"))
        if "level" in m:
            out["level"] = self._level_name(m["level"], self.at("level"))
        else:
            self.ck.report(self.path, "missing required key 'level' (the level a condition rule fires at)")
        return out

    def _expr_metrics(self, expr: CompiledExpr, match: _Match, path: PathKey) -> tuple[str, ...]:
        metrics = tuple(sorted(expr.names - match.label_names))
        for name in metrics:
            self.pack.metric_known(name, path, in_expr=True)
        return metrics

    def _nodata(self, m: dict[str, Any], match: _Match) -> dict[str, Any]:
        out: dict[str, Any] = {"metrics": (match.metric,) if match.metric else ()}
        for key in ("for", "clear_for"):
            if key in m:
                self.ck.report(self.at(key), f"{key!r} has no effect on a nodata rule; use nodata.after", key=True)
        out["level"] = self._level_name(m["level"], self.at("level")) if "level" in m else Level.BLUE
        path = self.at("nodata")
        nd = self.ck.mapping(m["nodata"], path, ("after",), ("after",))
        if nd is None or "after" not in nd:
            return out
        after = nd["after"]
        amount = _nodata_after(after)
        if amount is None:
            self.ck.report((*path, "after"), "expected a multiple of the sensor's interval like '3x' "
                                             f"or a duration like '15m' (got {describe(after)})")
        elif amount[1] <= 0:
            self.ck.report((*path, "after"), f"must be more than zero (got {describe(after)})")
        else:
            out[amount[0]] = amount[1]
        return out

    def _health(self, value: Any, kind: RuleKind) -> dict[str, bool]:
        """``health: true``: the rule's findings are about the sensor (a consistency or plausibility check),
        so its alerts are ``kind: health``; ``false`` overrides a sensor-health detector's default."""
        path = self.at("health")
        if kind == "nodata":
            self.ck.report(path, "a nodata rule's alerts are already about the sensor (kind nodata); remove 'health'",
                           key=True)
            return {}
        if not isinstance(value, bool):
            self.ck.report(path, f"expected true or false (got {describe(value)})")
            return {}
        return {"health": value}

    def _timers(self, m: dict[str, Any]) -> dict[str, float]:
        out = {"for_s": self.defaults.for_s, "clear_for_s": self.defaults.clear_for_s}
        for key, name in (("for", "for_s"), ("clear_for", "clear_for_s")):
            if key in m:
                seconds = self.ck.duration(m[key], self.at(key))
                if seconds is not None:
                    out[name] = seconds
        return out

    def _check_labels_used(self, match: _Match, fields: dict[str, Any]) -> None:
        used: frozenset[str] = frozenset()
        for key in ("value", "condition"):
            expr = fields.get(key)
            if isinstance(expr, CompiledExpr):
                used |= expr.names
        for name in sorted(match.label_names - used):
            self.ck.report(self.at("match", "label_names"), f"label {name!r} is not used by the rule's expression")

    def _message(self, m: dict[str, Any], numeric_names: Sequence[str]) -> str:
        """Check placeholders: the text ones, plus ``numeric_names`` (none for nodata rules: no value)."""
        if "message" not in m:
            return "{title} at {sensor}"
        path = self.at("message")
        text = self.ck.string(m["message"], path)
        if text is None:
            return ""
        numeric = set(numeric_names)
        allowed = sorted(numeric | _TEXT_PLACEHOLDERS)
        try:
            fields = [(f, spec or "") for _, f, spec, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as e:
            self.ck.report(path, f"bad message template: {e}")
            return text
        for name, spec in fields:
            if not _NAME.match(name):
                self.ck.report(path, f"placeholders must be plain names like {{value:.1f}} (got {{{name}}})")
            elif name not in allowed:
                hint = " (a nodata rule has no value)" if name == "value" else did_you_mean(name, allowed)
                self.ck.report(path, f"unknown placeholder {{{name}}}{hint}")
            else:
                try:
                    format(1.0 if name in numeric else "x", spec)
                except ValueError as e:
                    self.ck.report(path, f"placeholder {{{name}:{spec}}}: {e}")
        return text

    def _texts(self, m: dict[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        if "playbook" in m:
            out["playbook"] = self.ck.string(m["playbook"], self.at("playbook")) or ""
        owner = self.ck.string(m["owner"], self.at("owner")) if "owner" in m else self.defaults.owner
        if owner is None and "owner" not in m:
            self.ck.report(self.path, "missing 'owner' (set it in the rule or in the pack's defaults)")
        out["owner"] = owner or ""
        return out


def _nodata_after(after: Any) -> tuple[str, float] | None:
    """``'3x'`` -> ("nodata_intervals", 3.0); ``'15m'`` -> ("nodata_after_s", 900.0); else None."""
    if not isinstance(after, str):
        return None
    multiple = _MULTIPLE.match(after)
    if multiple:
        return "nodata_intervals", float(multiple.group(1))
    try:
        return "nodata_after_s", parse_duration(after)
    except TimeFormatError:
        return None


def _num(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)
