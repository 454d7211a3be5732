"""The contract every streaming detector keeps, and the typed parameters it is built from.

A detector watches ONE series (one metric of one sensor, or one computed value) and, for each new
observation, may return a ``Verdict``: a graded anomaly ``score`` in [0, 1] and its own ``value``
(a z-score, a drop in %, minutes until a threshold ...). Rules map either to the four levels.

A detector must be deterministic and one-pass: ``update`` sees each observation once, in event
time order, costs O(1) or O(window) and keeps bounded state. It never reads the wall clock, never
draws unseeded random numbers and never does I/O. ``snapshot()`` returns JSON-able state and
``restore()`` of it into a fresh instance (same params) changes no later verdict. NaN or None
observations are ignored (``update`` returns None) without raising. During warm-up it returns
None: "not enough history yet" is not "normal".
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from mypy_extensions import mypyc_attr

from lifeline.timefmt import parse_duration


class Verdict:
    """``score``: graded anomaly score in [0, 1]; ``value``: the detector's own quantity, in its own unit.

    Immutable by contract (``Final``: mypy rejects an assignment; shared instances like spike's
    ``_CALM`` rely on it). A plain slotted class rather than a frozen dataclass: one is built per
    observation, and the frozen ``__init__`` (``object.__setattr__`` per field) cost twice as much."""

    __slots__ = ("score", "value")

    def __init__(self, score: float, value: float) -> None:
        self.score: Final = score
        self.value: Final = value

    def __repr__(self) -> str:
        return f"Verdict(score={self.score!r}, value={self.value!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Verdict:
            return NotImplemented
        assert isinstance(other, Verdict)
        return (self.score, self.value) == (other.score, other.value)

    def __hash__(self) -> int:
        return hash((self.score, self.value))


@mypyc_attr(allow_interpreted_subclasses=True)  # the detectors that are not compiled (lifeline/native.py)
@dataclass(frozen=True, slots=True)
class Params:
    """Base of every detector's parameters: a frozen dataclass whose fields have defaults.

    Subclasses declare fields; ``check`` returns problems as (field, message) pairs."""

    def check(self) -> list[tuple[str, str]]:
        return []


class ParamError(ValueError):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))


@mypyc_attr(allow_interpreted_subclasses=True)  # the detectors that are not compiled (lifeline/native.py)
class Detector(ABC):
    """Subclasses set ``kind`` (registry key), ``params_type`` and ``health`` and implement the verbs."""

    kind: ClassVar[str] = ""
    params_type: ClassVar[type[Params]] = Params
    #: True for sensor-health detectors (stuck, spike): their findings are about the sensor, not the city.
    health: ClassVar[bool] = False
    #: What ``Verdict.value`` means, for docs and messages.
    value_unit: ClassVar[str] = ""

    def __init__(self, params: Params | None = None) -> None:
        p = params if params is not None else self.params_type()
        if not isinstance(p, self.params_type):
            raise TypeError(f"{type(self).__name__} takes {self.params_type.__name__}, not {type(p).__name__}")
        problems = p.check()
        if problems:
            raise ParamError(problems)
        self.params = p
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Forget all history (called by __init__)."""

    @abstractmethod
    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        """Observe one value at event time ``ts``; return a verdict, or None (warm-up, NaN, ignored).

        ``env`` is the sensor's latest metric values falling back to its numeric registry labels
        (read-only; a missing name raises KeyError). Detectors that correct for context read it (the
        bridge frequency tracker reads ``temp_c``); most ignore it."""

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """All mutable state as JSON-able data."""

    @abstractmethod
    def restore(self, state: Mapping[str, Any]) -> None:
        """Load what ``snapshot`` returned (into an instance built with the same params)."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Detector:
        """Build from a plain mapping (parsed YAML): unknown keys and bad values raise ParamError."""
        return cls(params_from_config(cls.params_type, config, cls.kind))


def params_from_config(ptype: type[Params], config: Mapping[str, Any], kind: str = "") -> Params:
    """Typed params from a plain mapping; every problem (unknown key, wrong type, bad value) at once."""
    fields = {f.name: f for f in dataclasses.fields(ptype)}
    problems: list[tuple[str, str]] = []
    kwargs: dict[str, Any] = {}
    for key, raw in config.items():
        f = fields.get(key)
        if f is None:
            close = difflib.get_close_matches(str(key), fields, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append((key, f"unknown {kind + ' ' if kind else ''}parameter{hint}; known: {', '.join(fields)}"))
            continue
        try:
            kwargs[key] = _coerce(raw, f.default, key)
        except (TypeError, ValueError) as exc:
            problems.append((key, str(exc)))
    p = ptype(**kwargs)
    bad = {k for k, _ in problems}
    problems.extend((k, m) for k, m in p.check() if k not in bad)
    if problems:
        raise ParamError(problems)
    return p


def params_to_config(p: Params) -> dict[str, Any]:
    """The inverse of ``params_from_config``: plain values that round-trip through YAML."""
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}


def _coerce(raw: Any, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(raw, bool):
            raise TypeError(f"expected true or false (got {raw!r})")
        return raw
    if isinstance(default, int):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError(f"expected an integer (got {raw!r})")
        return raw
    if isinstance(default, float) and name.endswith("_s") and isinstance(raw, str):
        return parse_duration(raw)  # durations: '30s', '5m', '1h'
    if isinstance(default, float):
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(float(raw)):
            raise TypeError(f"expected a number (got {raw!r})")
        return float(raw)
    if isinstance(default, str):
        if not isinstance(raw, str):
            raise TypeError(f"expected a string (got {raw!r})")
        return raw
    if default is None:  # an optional number (flatline's ignore_below)
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw)):
            raise TypeError(f"expected a number or null (got {raw!r})")
        return None if raw is None else float(raw)
    if isinstance(default, tuple):  # a list of numbers (flatline's ignore_values): a tuple, as the field says
        if not isinstance(raw, list | tuple) or any(isinstance(x, bool) or not isinstance(x, int | float)
                                                    or not math.isfinite(float(x)) for x in raw):
            raise TypeError(f"expected a list of numbers (got {raw!r})")
        return tuple(float(x) for x in raw)
    return raw


def sorted_median(xs: Sequence[float]) -> float:
    """The median of an already sorted, non-empty sequence."""
    n, mid = len(xs), len(xs) // 2
    return xs[mid] if n % 2 else 0.5 * (xs[mid - 1] + xs[mid])


SIDES = ("both", "up", "down")


def check_side(side: str) -> list[tuple[str, str]]:
    """The one check every detector with a ``side`` parameter makes (the same message everywhere)."""
    return [] if side in SIDES else [("side", f"must be 'both', 'up' or 'down' (got {side!r})")]


def clamp01(x: float) -> float:
    return 0.0 if x <= 0.0 else (1.0 if x >= 1.0 else x)


def squash(x: float, scale: float) -> float:
    """Map a non-negative deviation to a graded score in [0, 1): 1 - exp(-x / scale).

    Graded, never exactly 1.0 for finite input, so an optimised threshold stays stable (NAB NOTE)."""
    if x <= 0.0:
        return 0.0
    return 1.0 - math.exp(-x / scale)
