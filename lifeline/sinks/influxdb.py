"""Time-series store: readings and alert events as InfluxDB line protocol, written through influxdb-client.

Points (one schema for dashboards, docs/timeseries.md):

* ``lifeline_reading``: tags ``sensor``, ``domain``, ``district``; one float field per metric; the
  readings of one payload (same sensor and time) share one point.
* ``lifeline_alert``: tags ``rule``, ``sensor``, ``subject``, ``domain``, ``district``, ``level``
  (colour), ``kind``, ``event``, ``state``; fields ``value`` (when the rule had one), ``seq``,
  ``level_num`` (1 blue .. 4 red) and ``alert`` (the alert id, a string: InfluxDB keeps it;
  VictoriaMetrics has no string values and stores ``lifeline_alert_alert`` as 0).

Times in milliseconds. Writing the same point twice stores it once (same measurement, tags and
time), so a retried batch never doubles anything.

``InfluxDBSink`` never blocks the engine on the network: ``write_*`` put lines on a bounded queue and
a writer thread sends them in batches (``batch_size`` lines, or whatever is there after
``flush_interval_s``). A batch that fails goes to a bounded on-disk spool (``spool_dir``, at most
``max_spool_bytes``; when full the oldest batch is dropped and counted), and so does everything after
it while the spool is not empty, so points reach the store in order and the engine never waits on a
dead server; the writer tries again after a backoff (``retry_initial_s``, doubling up to
``retry_max_s``) and drains the spool, oldest first, as soon as a write succeeds — also after a
restart, from the files left there. A batch the server refuses as malformed (a 4xx other than 429) is not retried:
it is kept in ``spool_dir/rejected/`` with the server's reason. ``stats()`` gives the backlog for the
metrics endpoint. ``close()`` sends what it can within ``close_timeout_s`` and spools the rest.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lifeline.model import AlertEvent, Reading
from lifeline.registry import Registry

log = logging.getLogger(__name__)

READING = "lifeline_reading"
ALERT = "lifeline_alert"
#: the names dashboards may query (deploy/grafana/dashboards/ is checked against them); a reading's fields are
#: its metrics, named by the sensor register, so they are not listed here
READING_TAGS = ("sensor", "domain", "district")
ALERT_TAGS = ("rule", "sensor", "subject", "domain", "district", "level", "kind", "event", "state")
ALERT_FIELDS = ("value", "seq", "level_num", "alert")


# ---- line protocol ------------------------------------------------------------------------------
# escapes as in line protocol (and influxdb-client): a backslash is literal in names and tag values
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_STRING = str.maketrans({'"': r'\"', "\\": r"\\"})


def _key(s: str) -> str:
    """A tag key, tag value or field key: commas, equals signs, spaces and control whitespace escaped."""
    return s.translate(_KEY)


def _measurement(s: str) -> str:
    return s.translate(_MEASUREMENT)


def _string(s: str) -> str:
    return '"' + s.translate(_STRING) + '"'


def line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, float | int | str | bool],
         ts_ms: int) -> str | None:
    """One point in line protocol (tags sorted, empty tags left out, NaN and infinite fields left out);
    None when no field is left (line protocol needs at least one)."""
    parts = [_measurement(measurement)]
    parts.extend(f"{_key(k)}={_key(v)}" for k, v in sorted(tags.items()) if v != "")
    out = []
    for k, v in sorted(fields.items()):
        if isinstance(v, bool):
            out.append(f"{_key(k)}={'true' if v else 'false'}")
        elif isinstance(v, int):
            out.append(f"{_key(k)}={v}i")
        elif isinstance(v, float):
            if math.isfinite(v):
                out.append(f"{_key(k)}={v!r}")
        else:
            out.append(f"{_key(k)}={_string(v)}")
    if not out:
        return None
    return f"{','.join(parts)} {','.join(out)} {ts_ms}"


def reading_lines(readings: Iterable[Reading], district_of: Callable[[str], str] | None = None) -> list[str]:
    """One ``lifeline_reading`` point per payload (readings of one sensor at one time, in order);
    readings of quality "bad" are left out, as the engine leaves them out."""
    out: list[str] = []
    cur: tuple[str, float] | None = None
    fields: dict[str, float] = {}
    tags: dict[str, str] = {}

    def flush() -> None:
        if cur is not None and fields:
            lp = line(READING, tags, fields, round(cur[1] * 1000))
            if lp is not None:
                out.append(lp)

    for r in readings:
        if r.quality == "bad":
            continue
        key = (r.sensor, r.ts)
        if key != cur:
            flush()
            cur, fields = key, {}
            tags = {"sensor": r.sensor, "domain": r.domain,
                    "district": district_of(r.sensor) if district_of is not None else ""}
        fields[r.metric] = float(r.value)
    flush()
    return out


def alert_lines(events: Iterable[AlertEvent]) -> list[str]:
    out = []
    for e in events:
        fields: dict[str, float | int | str | bool] = {"seq": e.seq, "level_num": int(e.level), "alert": e.id}
        if e.value is not None:
            fields["value"] = float(e.value)
        tags = {"rule": e.rule, "sensor": e.sensor, "subject": e.subject, "domain": e.domain,
                "district": e.district, "level": e.level.colour, "kind": e.kind.value, "event": e.event.value,
                "state": e.state.value}
        lp = line(ALERT, tags, fields, round(e.ts * 1000))
        if lp is not None:
            out.append(lp)
    return out


# ---- the sink -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class InfluxDBSettings:
    url: str = "http://127.0.0.1:8086"
    org: str = "lifeline"
    bucket: str = "lifeline"
    token: str = ""
    batch_size: int = 5000
    flush_interval_s: float = 1.0
    timeout_s: float = 10.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    queue_lines: int = 200_000  # bounded: past this, write_* waits (backpressure), never grows without end
    spool_dir: str = "var/influxdb-spool"
    max_spool_bytes: int = 256 * 1024 * 1024
    close_timeout_s: float = 10.0

    def problems(self) -> list[str]:
        out = []
        if not self.url.startswith(("http://", "https://")):
            out.append(f"url: expected http(s)://host:port (got {self.url!r})")
        for name in ("batch_size", "queue_lines", "max_spool_bytes"):
            if getattr(self, name) < 1:
                out.append(f"{name}: must be at least 1 (got {getattr(self, name)})")
        for name in ("flush_interval_s", "timeout_s", "retry_initial_s", "retry_max_s", "close_timeout_s"):
            if not getattr(self, name) > 0:
                out.append(f"{name}: must be positive (got {getattr(self, name)})")
        return out


_ROUND_REST_S = 5.0  # after a writer round failed unexpectedly


class WriteRefused(Exception):
    """The server refused the batch as malformed (4xx other than 429): retrying cannot help."""


class _Spool:
    """Failed batches on disk, one file each (written to a temporary name, then renamed), oldest first.

    The files are numbered in the order they were written (``batch-<n>.lp``), and the spool keeps only the range
    of numbers and two totals, never a list of its files: its memory is the same for one batch or a million.
    (A list of paths cost ~390 bytes per batch, and the writer spools a batch per ``flush_interval_s`` while the
    store is down: RAM grew with the length of an outage, ~33 MB a day, until the byte bound.) A number without
    its file (removed by hand, or a gap left by an older version, which numbered rejected batches in the same
    sequence) is skipped; when the count and the files disagree, the directory is counted again.
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root, self.max_bytes = root, max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self._next = 0  # the next batch's number
        self._count = self._first = self.bytes = 0
        self._rescan()
        self._next_rejected = max((_number(p) + 1 for p in (self.root / "rejected").glob("rejected-*.lp")), default=0)
        self.dropped_lines = 0

    def _rescan(self) -> None:
        """Count the batch files on disk (at start, and when the count is off: a file removed by hand)."""
        found = sorted(_number(p) for p in self.root.glob("batch-*.lp"))
        self.bytes = sum(self._path(n).stat().st_size for n in found)
        self._count = len(found)
        self._next = max(self._next, found[-1] + 1 if found else 0)
        self._first = found[0] if found else self._next  # the oldest batch's number

    def __len__(self) -> int:
        return self._count

    def _path(self, n: int) -> Path:
        return self.root / f"batch-{n:012d}.lp"

    def put(self, lines: list[str]) -> None:
        data = ("\n".join(lines) + "\n").encode()
        while self._count and self.bytes + len(data) > self.max_bytes:
            old = self._oldest()
            if old is None:
                break
            size, n = old.stat().st_size, old.read_bytes().count(b"\n")
            old.unlink()
            self._advance(size)
            self.dropped_lines += n
            log.error("influxdb spool full (%d bytes): dropped the oldest batch, %d points", self.max_bytes, n)
        path = self._path(self._next)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        if not self._count:
            self._first = self._next
        self._next += 1  # only once the file is there
        self._count += 1
        self.bytes += len(data)

    def _oldest(self) -> Path | None:
        """The oldest batch's file, skipping numbers without one."""
        while self._count:
            if self._first >= self._next:  # counted, but not there: removed by hand
                log.warning("influxdb spool: %d batches counted are not in %s (removed by hand?); counting again",
                            self._count, self.root)
                self._rescan()
                continue
            p = self._path(self._first)
            if p.exists():
                return p
            self._first += 1
        return None

    def _advance(self, size: int) -> None:
        """The oldest batch (of ``size`` bytes) has left the spool."""
        self._first += 1
        self._count -= 1
        self.bytes -= size

    def oldest(self) -> tuple[Path, list[str]] | None:
        p = self._oldest()
        if p is None:
            return None
        return p, p.read_text().splitlines()

    def done(self, path: Path) -> None:
        """``path`` (the oldest batch, from ``oldest``) was written: remove it."""
        if path != self._path(self._first):
            raise ValueError(f"influxdb spool: {path} is not the oldest batch ({self._path(self._first)})")
        size = path.stat().st_size
        path.unlink()
        self._advance(size)

    def reject(self, lines: list[str], reason: str) -> Path:
        d = self.root / "rejected"
        d.mkdir(exist_ok=True)
        path = d / f"rejected-{self._next_rejected:012d}.lp"  # numbered on their own: never one over another
        self._next_rejected += 1
        path.write_text("# " + reason.replace("\n", " ") + "\n" + "\n".join(lines) + "\n")
        return path


def _number(p: Path) -> int:
    """The number in a spool file's name (``batch-000000000042.lp`` -> 42)."""
    return int(p.stem.split("-")[1])


def district_lookup(registry: Registry) -> Callable[[str], str]:
    """sensor id -> its district (the ``district`` tag), "" for a sensor the register does not know."""

    def district_of(sid: str) -> str:
        sensor = registry.get(sid)
        return sensor.district if sensor is not None else ""

    return district_of


class InfluxDBSink:
    """Batched, retried, spooled writes of readings and alert events (see the module docstring)."""

    def __init__(self, settings: InfluxDBSettings, *, district_of: Callable[[str], str] | None = None) -> None:
        problems = settings.problems()
        if problems:
            raise ValueError("influxdb settings: " + "; ".join(problems))
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.settings = settings
        self._district_of = district_of
        self._client = InfluxDBClient(url=settings.url, token=settings.token, org=settings.org,
                                      timeout=int(settings.timeout_s * 1000), retries=False)
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._spool = _Spool(Path(settings.spool_dir), settings.max_spool_bytes)
        self._q: queue.Queue[str | None] = queue.Queue(maxsize=settings.queue_lines)
        self._lock = threading.Lock()
        self._stats = {"written": 0, "spooled": 0, "rejected": 0, "errors": 0, "batches": 0, "lost": 0}
        self._closing = threading.Event()
        self._delay = settings.retry_initial_s  # the current backoff
        self._down_until = 0.0  # monotonic time before which no write is attempted (after a failure)
        self._thread = threading.Thread(target=self._run, name="influxdb-writer", daemon=True)
        self._thread.start()

    # ---- inputs (the engine's thread) ---------------------------------------------------------
    def write_readings(self, readings: Iterable[Reading]) -> None:
        self._put(reading_lines(readings, self._district_of))

    def write_events(self, events: Iterable[AlertEvent]) -> None:
        self._put(alert_lines(events))

    def _put(self, lines: list[str]) -> None:
        if self._closing.is_set():
            raise RuntimeError("influxdb sink is closed")
        for lp in lines:
            self._q.put(lp)

    def stats(self) -> dict[str, int]:
        """Counters for /metrics: points written, spooled, rejected, dropped; write errors; the backlog
        (``queued`` lines in memory, ``spool_batches`` / ``spool_bytes`` on disk)."""
        with self._lock:
            out = dict(self._stats)
            out.update(queued=self._q.qsize(), spool_batches=len(self._spool), spool_bytes=self._spool.bytes,
                       dropped=self._spool.dropped_lines)
        return out

    def close(self) -> None:
        """Send what can be sent within ``close_timeout_s``; spool the rest (nothing is lost on a clean stop)."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._q.put(None)
        self._thread.join(self.settings.close_timeout_s + 2 * self.settings.timeout_s + self.settings.flush_interval_s)
        self._client.close()  # type: ignore[no-untyped-call]

    # ---- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        """The writer thread. It never dies of an error: a round that fails (a full disk while spooling, a spool
        file gone) is logged, its points in hand are counted as ``lost``, and the next round goes on - a dead
        writer would leave the queue to fill and the engine blocked on it."""
        s = self.settings
        while True:
            batch, stop = self._take(s.batch_size, s.flush_interval_s)
            try:
                # while the spool holds older data, or the server is resting after a failure, new data goes behind
                # it: points reach the store in the order they were written, and the queue never backs up
                if batch and (len(self._spool) or time.monotonic() < self._down_until or not self._try(batch)):
                    self._to_spool(batch)
            except Exception:
                log.exception("time-series store: %d points could be neither written nor spooled; counted as lost",
                              len(batch))
                with self._lock:
                    self._stats["lost"] += len(batch)
                self._down_until = time.monotonic() + _ROUND_REST_S
            try:
                if len(self._spool) and time.monotonic() >= self._down_until:
                    self._drain()
            except Exception:
                log.exception("time-series store: draining the spool failed; trying again in %g s", _ROUND_REST_S)
                self._down_until = time.monotonic() + _ROUND_REST_S
            if stop:
                try:
                    self._finish()
                except Exception:
                    log.exception("time-series store: closing failed; what was queued may be lost")
                return

    def _finish(self) -> None:
        """On close: what is queued goes to the store while it answers, within close_timeout_s; the rest to disk."""
        rest: list[str] = []
        while not self._q.empty():
            item = self._q.get_nowait()
            if item is not None:
                rest.append(item)
        deadline = time.monotonic() + self.settings.close_timeout_s
        for i in range(0, len(rest), self.settings.batch_size):
            chunk = rest[i:i + self.settings.batch_size]
            if len(self._spool) or time.monotonic() > deadline or not self._try(chunk):
                self._to_spool(chunk)
        while len(self._spool) and time.monotonic() < deadline and time.monotonic() >= self._down_until:
            if not self._drain():
                break

    def _take(self, n: int, wait_s: float) -> tuple[list[str], bool]:
        out: list[str] = []
        end = time.monotonic() + wait_s
        while len(out) < n:
            left = end - time.monotonic()
            try:
                item = self._q.get(timeout=left) if left > 0 else self._q.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return out, True
            out.append(item)
        return out, False

    def _drain(self) -> bool:
        """Send spooled batches, oldest first, until the spool is empty (True) or a write fails (False)."""
        while True:
            got = self._spool.oldest()
            if got is None:
                return True
            path, lines = got
            if not self._try(lines):
                return False
            with self._lock:
                self._spool.done(path)

    def _try(self, lines: list[str]) -> bool:
        """One write. True: written, or refused as malformed and set aside. False: failed; the server rests
        for the current backoff (retry_initial_s doubling to retry_max_s) before the next attempt."""
        try:
            self._write(lines)
        except WriteRefused as exc:
            path = self._spool.reject(lines, str(exc))
            log.error("influxdb refused %d points (%s); kept in %s", len(lines), exc, path)
            with self._lock:
                self._stats["rejected"] += len(lines)
            return True
        except Exception as exc:  # connection refused, timeout, 5xx, 429: the server may come back
            with self._lock:
                self._stats["errors"] += 1
            log.warning("influxdb write of %d points failed, next attempt in %.1f s: %s", len(lines), self._delay, exc)
            self._down_until = time.monotonic() + self._delay
            self._delay = min(self._delay * 2.0, self.settings.retry_max_s)
            return False
        self._delay = self.settings.retry_initial_s
        with self._lock:
            self._stats["written"] += len(lines)
            self._stats["batches"] += 1
        return True

    def _write(self, lines: list[str]) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._api.write(bucket=self.settings.bucket, org=self.settings.org, record=lines,
                            write_precision=WritePrecision.MS)  # type: ignore[arg-type]  # a str constant
        except ApiException as exc:
            status = int(exc.status or 0)
            if 400 <= status < 500 and status != 429:
                raise WriteRefused(f"HTTP {status}: {(exc.body or exc.reason or '')!s:.300}") from exc
            raise

    def _to_spool(self, lines: list[str]) -> None:
        with self._lock:
            self._spool.put(lines)
            self._stats["spooled"] += len(lines)
