"""YAML with line marks: plain Python values plus a ``file:line:col`` for every key and value.

Config files are parsed with PyYAML's ``compose`` and the *safe* scalar constructor only, so a
file can never construct Python objects or run code. Every value is remembered by its path
(``("rules", 1, "for")``), so a semantic check made long after parsing can still say exactly
where the offending text is::

    gas.yaml:18:7: rules[1].for: expected a duration like '30s', '5m' or '1h' (got '2 minutes')

Mapping keys are always the key's source text (``on:`` stays ``"on"``, ``1:`` stays ``"1"``).
Duplicate keys, non-scalar keys, recursive aliases and syntax errors become ``Problem``s; this
module never raises on bad input. ``Checker`` holds the small typed accessors every schema needs.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lifeline.timefmt import TimeFormatError, parse_duration

PathKey = tuple[str | int, ...]
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based position in a file."""

    file: str
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file; ``str()`` is ``file:line:col: path: message``.

    ``line`` 0 means the whole file (e.g. it cannot be read); ``path`` may be empty."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line > 0 else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def format_path(path: Iterable[str | int]) -> str:
    """``("rules", 1, "for")`` -> ``rules[1].for``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'threshold'?)`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(value: object) -> str:
    """A short, exact description of a parsed YAML value for messages: ``'ten'``, ``12``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return repr(value)
    return type(value).__name__


@dataclass(slots=True)
class Document:
    """One parsed YAML file: ``data`` plus marks of every value (and of every mapping key)."""

    file: str
    data: Any = None
    values: dict[PathKey, Mark] = field(default_factory=dict)
    keys: dict[PathKey, Mark] = field(default_factory=dict)
    inline: dict[PathKey, Mark] = field(default_factory=dict)  # first char of one-line scalars' text

    def mark(self, path: PathKey, *, key: bool = False) -> Mark:
        """Where ``path`` is (its key when ``key``); falls back to the nearest enclosing value."""
        if key and path in self.keys:
            return self.keys[path]
        for n in range(len(path), -1, -1):
            if path[:n] in self.values:
                return self.values[path[:n]]
        return Mark(self.file, 1, 1)

    def text_mark(self, path: PathKey, offset: int) -> Mark | None:
        """The mark ``offset`` characters into a one-line scalar's text, when that is exact."""
        start = self.inline.get(path)
        return None if start is None else Mark(start.file, start.line, start.col + offset)

    def problem(self, path: PathKey, message: str, *, key: bool = False) -> Problem:
        m = self.mark(path, key=key)
        return Problem(m.file, m.line, m.col, format_path(path), message)


def parse_yaml(text: str, file: str) -> tuple[Document, list[Problem]]:
    """Parse one YAML document; syntax errors and structural problems come back as Problems."""
    doc = Document(file)
    problems: list[Problem] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        problems.append(_syntax_problem(file, e))
        return doc, problems
    except yaml.YAMLError as e:
        problems.append(Problem(file, 1, 1, "", f"invalid YAML: {e}"))
        return doc, problems
    if node is not None:
        doc.data = _Builder(doc, problems).build(node, ())
    return doc, problems


def load_yaml(path: str | Path) -> tuple[Document, list[Problem]]:
    """Read and parse ``path``; the file is named in marks exactly as given."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        return Document(name), [Problem(name, 0, 0, "", f"not UTF-8 (byte {e.start})")]
    except OSError as e:
        return Document(name), [Problem(name, 0, 0, "", f"cannot read: {e.strerror or e}")]
    return parse_yaml(text, name)


def _syntax_problem(file: str, e: yaml.MarkedYAMLError) -> Problem:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    message = f"invalid YAML: {e.problem or e.context}"
    if e.context and e.problem and e.context_mark is not None:
        message += f" ({e.context} at line {e.context_mark.line + 1})"
    return Problem(file, line, col, "", message)


class _Builder:
    """Walks composed nodes into plain values, recording marks as it goes."""

    def __init__(self, doc: Document, problems: list[Problem]) -> None:
        self.doc = doc
        self.problems = problems
        self.constructor = SafeConstructor()
        self.stack: set[int] = set()

    def _mark(self, node: Node) -> Mark:
        return Mark(self.doc.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: PathKey) -> Any:
        self.doc.values[path] = self._mark(node)
        if id(node) in self.stack:
            self.problems.append(self.doc.problem(path, "recursive alias"))
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if node.tag not in (_SEQ, _MAP):
            self.problems.append(self.doc.problem(path, f"YAML tag {node.tag!r} is not allowed"))
            return None
        self.stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self.stack.discard(id(node))
        return None  # pragma: no cover - compose yields only the three node kinds

    def _scalar(self, node: ScalarNode, path: PathKey) -> Any:
        if node.start_mark.line == node.end_mark.line and node.style in (None, "'", '"'):
            m = self._mark(node)
            self.doc.inline[path] = Mark(m.file, m.line, m.col + (0 if node.style is None else 1))
        try:
            value = self.constructor.construct_object(node)
        except yaml.YAMLError as e:
            self.problems.append(self.doc.problem(path, f"invalid value: {getattr(e, 'problem', e)}"))
            return None
        return value

    def _mapping(self, node: MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode):
                self.problems.append(
                    Problem(self.doc.file, *_pos(knode), format_path(path), "mapping keys must be plain text")
                )
                continue
            key = str(knode.value)
            kpath = (*path, key)
            if key in out:
                first = self.doc.keys[kpath]
                self.problems.append(
                    Problem(self.doc.file, *_pos(knode), format_path(kpath),
                            f"duplicate key {key!r} (first at line {first.line})")
                )
                continue
            self.doc.keys[kpath] = self._mark(knode)
            out[key] = self.build(vnode, kpath)
        return out


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class Checker:
    """Typed accessors over a ``Document`` that record a Problem instead of raising.

    Each returns ``None`` when the value is wrong (after recording why), so a schema can keep
    going and report every problem in one pass."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def report(self, path: PathKey, message: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, key=key))

    def report_at(self, mark: Mark, path: PathKey, message: str) -> None:
        self.problems.append(Problem(mark.file, mark.line, mark.col, format_path(path), message))

    def mapping(
        self, value: Any, path: PathKey, allowed: Collection[str], required: Iterable[str] = ()
    ) -> dict[str, Any] | None:
        """``value`` as a mapping; unknown keys (with a suggestion) and missing keys are reported."""
        if not isinstance(value, dict):
            self.report(path, f"expected a mapping (got {describe(value)})")
            return None
        for k in value:
            if k == "<<" and k not in allowed:
                self.report((*path, k), "merge keys ('<<') are not supported; write the keys out", key=True)
            elif k not in allowed:
                self.report((*path, k), f"unknown key {k!r}{did_you_mean(k, allowed)}", key=True)
        for k in required:
            if k not in value:
                self.report(path, f"missing required key {k!r}")
        return value

    def string(self, value: Any, path: PathKey) -> str | None:
        if not isinstance(value, str) or not value.strip():
            what = "empty text" if isinstance(value, str) else describe(value)
            self.report(path, f"expected text (got {what})")
            return None
        return value

    def number(self, value: Any, path: PathKey, *, minimum: float | None = None) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.report(path, f"expected a number (got {describe(value)})")
            return None
        if minimum is not None and value < minimum:
            self.report(path, f"must be at least {minimum:g} (got {describe(value)})")
            return None
        return float(value)

    def strings(self, value: Any, path: PathKey) -> list[str] | None:
        """A non-empty list of non-empty strings."""
        if not isinstance(value, list) or not value:
            what = "an empty list" if value == [] else describe(value)
            self.report(path, f"expected a list of names (got {what})")
            return None
        good = [self.string(item, (*path, i)) for i, item in enumerate(value)]
        return None if any(g is None for g in good) else [g for g in good if g is not None]

    def duration(self, value: Any, path: PathKey) -> float | None:
        if not isinstance(value, str):
            self.report(path, f"expected a duration like '30s', '5m' or '1h' (got {describe(value)})")
            return None
        try:
            return parse_duration(value)
        except TimeFormatError as e:
            self.report(path, str(e))
            return None
