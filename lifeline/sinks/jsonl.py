"""AlertEvents as JSON lines: ``AlertEvent.to_dict()`` with sorted keys, one event a line.

``lifeline backtest`` and the live runner's ``--alerts-out`` both use this writer, so their files
compare byte-equal for the same input. Never reformat here without changing both.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import orjson

from lifeline.model import AlertEvent

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def dumps_event(event: AlertEvent) -> bytes:
    """One line (with its newline) for one event."""
    return orjson.dumps(event.to_dict(), option=_OPTS)


class JsonlSink:
    """Append AlertEvents to a path (``-`` is stdout; ``.gz`` is compressed) or to an open binary
    file (which the caller owns and closes). ``write`` flushes when the sink owns a path."""

    def __init__(self, target: str | Path | IO[bytes], *, append: bool = True) -> None:
        self._f: IO[bytes]
        if not isinstance(target, str | Path):
            self.path, self._own, self._f = getattr(target, "name", "<stream>"), False, target
        elif str(target) == "-":
            self.path, self._own, self._f = "-", False, sys.stdout.buffer
        else:
            self.path, self._own = str(target), True
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            mode = "ab" if append else "wb"
            gz = self.path.endswith(".gz")
            self._f = gzip.open(self.path, mode) if gz else open(self.path, mode)  # type: ignore[assignment]  # noqa: SIM115
        self.count = 0

    def write(self, events: Iterable[AlertEvent]) -> int:
        data = b"".join(dumps_event(e) for e in events)
        if data:
            self._f.write(data)
            if self._own:
                self._f.flush()
            self.count += data.count(b"\n")
        return len(data)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self._own:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: str | Path) -> Iterator[AlertEvent]:
    """Read back what ``JsonlSink`` wrote."""
    p = str(path)
    opener = gzip.open if p.endswith(".gz") else open
    with opener(p, "rb") as f:
        for line in f:
            if line.strip():
                yield AlertEvent.from_dict(orjson.loads(line))
