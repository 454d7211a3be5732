"""Injected time. Shells (runner, CLI) take a Clock; the engine core takes no clock at all."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds, UTC."""
        ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told: tests fire timers without sleeping."""

    def __init__(self, start: float = 1_764_403_200.0) -> None:
        self._t = float(start)
        self._m = 0.0

    def now(self) -> float:
        return self._t

    def monotonic(self) -> float:
        return self._m

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"ManualClock cannot go backwards (advance by {seconds})")
        self._t += seconds
        self._m += seconds

    def set(self, t: float) -> None:
        self.advance(t - self._t)
