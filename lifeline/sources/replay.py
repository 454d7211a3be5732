"""JSON-lines replay: the simulators' output and the live runner's journal, read back as readings and ticks.

The format (one JSON value a line; gzip when the name ends in ``.gz``)::

    {"sensor": "gas-0001", "domain": "gas", "ts": 1764403200.0, "metrics": {"ch4_lel": 3.5}, "seq": 7}
    {"tick": 1764403260.0}

``JournalWriter`` writes exactly what the engine consumed, so replaying a journal reproduces the
live run. Never reads the wall clock; bad lines become dead letters naming ``file:line``.
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from lifeline.codec import Limits, decode_line
from lifeline.model import DeadLetter, Reading
from lifeline.registry import Registry


@dataclass(slots=True)
class ReplayItem:
    """One input line: its readings and dead letters, or a tick (``tick`` set, nothing else)."""

    line: int
    readings: list[Reading] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    tick: float | None = None


def read_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) of a text, ``.gz`` or ``-`` (stdin) file; blank and ``#`` lines skipped."""
    p = str(path)
    f: IO[bytes]
    if p == "-":
        f = sys.stdin.buffer
    elif p.endswith(".gz"):
        f = gzip.open(p, "rb")  # type: ignore[assignment]  # noqa: SIM115
    else:
        f = open(p, "rb")  # noqa: SIM115
    try:
        for n, raw in enumerate(f, start=1):
            line = raw.strip()
            if line and not line.startswith(b"#"):
                yield n, line
    finally:
        if p != "-":
            f.close()


def replay(paths: str | Path | Iterable[str | Path], *, registry: Registry,
           limits: Limits | None = None) -> Iterator[ReplayItem]:
    """Decode every line of every file, in order. Never raises on bad input lines."""
    for path in [paths] if isinstance(paths, str | Path) else paths:
        for n, line in read_lines(path):
            decoded, tick = decode_line(line, registry=registry, limits=limits or Limits(), where=f"{path}:{n}: ")
            yield ReplayItem(n, decoded.readings, decoded.dead, tick)


def reading_lines(readings: Iterable[Reading]) -> bytes:
    """Journal lines for readings; consecutive readings of one wire item share one line."""
    # Each line is appended as soon as it is encoded: holding thousands of small orjson outputs in a list
    # (the runner journals batches of 1000 messages) cost ~1 page fault per line, as the heap was given
    # back and taken again, and made reading_lines 3-4x slower.
    out = bytearray()
    line: dict[str, Any] | None = None
    metrics: dict[str, float] = {}
    key: tuple[Any, ...] | None = None
    for sensor, domain, metric, ts, value, seq, quality, unit, _ in readings:  # unpacked: cheaper than 9 lookups
        k = (sensor, domain, ts, seq, quality, unit)
        if k == key and metric not in metrics:
            metrics[metric] = value
            continue
        if line is not None:
            out += orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
        key = k
        metrics = {metric: value}
        line = {"sensor": sensor, "domain": domain, "ts": ts, "metrics": metrics}
        if seq is not None:
            line["seq"] = seq
        if quality != "good":
            line["quality"] = quality
        if unit is not None:
            line["unit"] = unit
    if line is not None:
        out += orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
    return bytes(out)


def tick_line(ts: float) -> bytes:
    return orjson.dumps({"tick": ts}) + b"\n"


class JournalWriter:
    """Append-only journal of the engine's inputs. ``offset`` is the byte length after the last
    write; the runner stores it in the checkpoint and ``truncate``s back to it on restart, so the
    journal holds exactly the inputs whose effects the store committed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.offset = os.fstat(self._fd).st_size

    def append(self, data: bytes) -> int:
        """Write (one unbuffered ``write``: a killed process loses nothing written); return the new offset."""
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.offset += len(data)
        return self.offset

    def truncate(self, offset: int) -> None:
        os.ftruncate(self._fd, offset)
        self.offset = offset

    def fsync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)
