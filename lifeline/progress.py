"""A small progress line on stderr for long runs (no dependency, quiet when not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``update(n)`` as work completes; redraws at most every ``every`` seconds."""

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 every: float = 0.5) -> None:
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.every = every
        self._start = time.monotonic()
        self._last = 0.0
        self._tty = self.stream.isatty()

    def update(self, n: int = 1, extra: str = "") -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._draw(now, extra, end="\r" if self._tty else "\n")

    def close(self, extra: str = "") -> None:
        self._draw(time.monotonic(), extra, end="\n")

    def _draw(self, now: float, extra: str, end: str) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            pct = 100.0 * self.done / self.total
            head = f"{self.label}: {self.done:,}/{self.total:,} ({pct:5.1f} %)"
        else:
            head = f"{self.label}: {self.done:,}"
        self.stream.write(f"{head}  {rate:,.0f}/s  {elapsed:6.1f} s {extra}{end}")
        self.stream.flush()
