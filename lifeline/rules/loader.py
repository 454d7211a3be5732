"""Rule packs (YAML files) -> a validated, compiled ``RuleSet``; see docs/rules.md for the format.

This module owns the files and the pack level: expanding directories, parsing, the pack keys
(``domain``, ``description``, ``defaults``, ``rules``), expressions and metric names checked against
the pack's domain, and rule ids unique across every file. Each rule mapping is read by
``lifeline.rules.schema``.

Validation is strict and complete: every problem in every file is collected, each as
``file:line:col: path: message`` with a suggestion where one is cheap, and ``RulesError`` lists
them all. Nothing in a rule file is ever executed: expressions go through ``lifeline.rules.expr``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from lifeline.config.yamlmarks import Checker, Document, PathKey, Problem, describe, did_you_mean, load_yaml
from lifeline.errors import ConfigError
from lifeline.rules.expr import CompiledExpr, ExprError, compile_expr
from lifeline.rules.model import Rule, RuleSet
from lifeline.rules.schema import KINDS as KINDS
from lifeline.rules.schema import MATCH_KEYS as MATCH_KEYS
from lifeline.rules.schema import PLACEHOLDERS as PLACEHOLDERS
from lifeline.rules.schema import RULE_KEYS as RULE_KEYS
from lifeline.rules.schema import THRESHOLD_KEYS as THRESHOLD_KEYS
from lifeline.rules.schema import Defaults, RuleReader

PACK_KEYS: Final = ("domain", "description", "defaults", "rules")
DEFAULT_KEYS: Final = ("owner", "for", "clear_for")
_DOMAIN: Final = re.compile(r"[a-z][a-z0-9_]*\Z")


class RulesError(ConfigError):
    """Rule files with problems; ``problems`` holds every one, ``str()`` shows one per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def load_rules(
    paths: Sequence[str | Path], *, known_metrics: Mapping[str, set[str]] | None = None
) -> RuleSet:
    """Load rule packs (files, or directories of ``*.yaml``); raise ``RulesError`` listing every problem.

    ``known_metrics`` (domain -> metric names), when given, also checks domains and metric names."""
    ruleset, problems = _load(paths, known_metrics)
    if problems:
        raise RulesError(problems)
    return ruleset


def check_rules(
    paths: Sequence[str | Path], *, known_metrics: Mapping[str, set[str]] | None = None
) -> list[Problem]:
    """Every problem in the given rule packs, in file order; empty when they are valid."""
    return _load(paths, known_metrics)[1]


def rule_files(paths: Sequence[str | Path]) -> tuple[list[str], list[Problem]]:
    """Expand directories to their ``*.yaml`` files (sorted); names stay as given (``rules/gas.yaml``)."""
    files: list[str] = []
    problems: list[Problem] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(path.glob("*.yaml"))
            if not found:
                problems.append(Problem(str(p), 0, 0, "", "no *.yaml rule files in this directory"))
            files.extend(str(f) for f in found)
        else:
            files.append(str(p))
    return files, problems


def _load(
    paths: Sequence[str | Path], known: Mapping[str, set[str]] | None
) -> tuple[RuleSet, list[Problem]]:
    files, problems = rule_files(paths)
    rules: list[Rule] = []
    first: dict[str, str] = {}  # rule id -> "file:line" where it first appeared
    for file in files:
        doc, parse_problems = load_yaml(file)
        problems.extend(parse_problems)
        if parse_problems:
            continue
        reader = _PackReader(doc, known)
        rules.extend(reader.read())
        for rid, id_path, source in reader.ids:  # every parsable id, even of rules with other problems
            if rid in first:
                reader.ck.report(id_path, f"duplicate rule id {rid!r} (first at {first[rid]})")
            else:
                first[rid] = source
        problems.extend(reader.ck.problems)
    order = {f: i for i, f in enumerate(files)}
    problems.sort(key=lambda p: (order.get(p.file, -1), p.line, p.col))
    return RuleSet(tuple(rules), tuple(files)), problems


class _PackReader:
    """Reads one pack (one file); problems accumulate in ``self.ck``."""

    def __init__(self, doc: Document, known: Mapping[str, set[str]] | None) -> None:
        self.doc = doc
        self.ck = Checker(doc)
        self.known = known
        self.domain: str | None = None
        self.ids: list[tuple[str, PathKey, str]] = []  # (id, path of the id, "file:line" of the rule)

    def read(self) -> list[Rule]:
        if self.doc.data is None:
            self.ck.report((), "empty rule pack (expected 'domain' and 'rules')")
            return []
        top = self.ck.mapping(self.doc.data, (), PACK_KEYS, ("domain", "rules"))
        if top is None:
            return []
        if "domain" in top:
            self.domain = self._domain(top["domain"])
        if "description" in top:
            self.ck.string(top["description"], ("description",))
        defaults = self._defaults(top["defaults"]) if "defaults" in top else Defaults()
        raw_rules = top.get("rules", [])
        if not isinstance(raw_rules, list) or ("rules" in top and not raw_rules):
            self.ck.report(("rules",), f"expected a list of rules (got {describe(raw_rules)})")
            return []
        built = (RuleReader(self, ("rules", i), defaults).read(raw) for i, raw in enumerate(raw_rules))
        return [rule for rule in built if rule is not None]

    def _domain(self, value: Any) -> str | None:
        domain = self.ck.string(value, ("domain",))
        if domain is None:
            return None
        if not _DOMAIN.match(domain):
            self.ck.report(("domain",), f"expected a lowercase name like 'gas' (got {domain!r})")
            return None
        if self.known is not None and domain not in self.known:
            self.ck.report(("domain",), f"unknown domain {domain!r}{did_you_mean(domain, self.known)}")
            return None
        return domain

    def _defaults(self, raw: Any) -> Defaults:
        d = Defaults()
        m = self.ck.mapping(raw, ("defaults",), DEFAULT_KEYS)
        if m is None:
            return d
        if "owner" in m:
            d.owner = self.ck.string(m["owner"], ("defaults", "owner"))
        if "for" in m:
            d.for_s = self.ck.duration(m["for"], ("defaults", "for")) or 0.0
        if "clear_for" in m:
            d.clear_for_s = self.ck.duration(m["clear_for"], ("defaults", "clear_for")) or 0.0
        return d

    def metric_known(self, name: str, path: PathKey, *, in_expr: bool) -> None:
        if self.known is None or self.domain is None:
            return
        names = self.known.get(self.domain, set())
        if name not in names:
            hint = did_you_mean(name, names)
            if in_expr:
                hint += "; list sensor labels under match.label_names"
            self.ck.report(path, f"unknown metric {name!r} for domain {self.domain!r}{hint}")

    def expr(self, value: Any, path: PathKey) -> CompiledExpr | None:
        text = self.ck.string(value, path)
        if text is None:
            return None
        try:
            return compile_expr(text)
        except ExprError as e:
            exact = self.doc.text_mark(path, e.col - 1)
            if exact is None:  # a block scalar: quote the text near the problem instead
                near = text.replace("\n", " ")[e.col - 1 : e.col + 11].strip()
                self.ck.report(path, f"{e.reason} (at {near!r})")
            else:
                self.ck.report_at(exact, path, e.reason)
            return None
