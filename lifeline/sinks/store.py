"""The alert store: SQLite (WAL), the system of record for alerts, their history and the engine checkpoint.

A batch of engine output is written in ONE transaction: its alert events, the dead-letter counts and
the journal offset it reaches (``committed_offset``); every few seconds the same transaction also
carries the engine checkpoint (snapshot + the journal offset it reflects). On restart the runner
restores the checkpoint and replays the journal from the checkpoint's offset to the committed offset.
Events are keyed (id, seq) and inserted with ``INSERT OR IGNORE``, so re-processing a batch after a
crash never duplicates anything.

Operator actions (ack, manual resolve, comment) are appended to a separate, append-only action log
with actor and reason; ``history`` merges both. This module must never talk to the network.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lifeline.alerting.matchers import Match, match_from
from lifeline.alerting.silences import Window
from lifeline.errors import StoreError
from lifeline.model import AlertEvent, EventKind, Level
from lifeline.notifiers.base import Notification
from lifeline.timefmt import rfc3339

__all__ = ["VERDICTS", "AlertRow", "AlertStore", "Checkpoint", "HistoryEntry", "OutboxRow", "StoreError"]

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_events (
    id TEXT NOT NULL, seq INTEGER NOT NULL, rule TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    sensor TEXT NOT NULL, domain TEXT NOT NULL, district TEXT NOT NULL, level TEXT NOT NULL,
    state TEXT NOT NULL, event TEXT NOT NULL, started REAL NOT NULL, ts REAL NOT NULL, value REAL,
    message TEXT NOT NULL, title TEXT NOT NULL, owner TEXT NOT NULL, playbook TEXT NOT NULL,
    actor TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, rule TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    sensor TEXT NOT NULL, domain TEXT NOT NULL, district TEXT NOT NULL, level TEXT NOT NULL,
    level_n INTEGER NOT NULL, state TEXT NOT NULL, last_event TEXT NOT NULL, started REAL NOT NULL,
    updated REAL NOT NULL, value REAL, message TEXT NOT NULL, title TEXT NOT NULL, owner TEXT NOT NULL,
    playbook TEXT NOT NULL, acked_by TEXT, acked_at REAL, ack_reason TEXT,
    resolved_by TEXT, resolved_at REAL, suppressed TEXT, assigned TEXT, verdict TEXT,
    changed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, level_n);
CREATE TABLE IF NOT EXISTS alert_actions (
    n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, ts REAL NOT NULL, action TEXT NOT NULL,
    actor TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_actions_id ON alert_actions (id);
CREATE TABLE IF NOT EXISTS checkpoint (
    k INTEGER PRIMARY KEY CHECK (k = 1), snapshot BLOB NOT NULL, journal_offset INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deadletters (reason TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT PRIMARY KEY, receiver TEXT NOT NULL, alert TEXT NOT NULL, seq INTEGER NOT NULL, created REAL NOT NULL,
    payload BLOB NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, next_at REAL NOT NULL,
    last_error TEXT NOT NULL, done_at REAL, note TEXT NOT NULL DEFAULT '', grp TEXT NOT NULL DEFAULT '',
    grp_wait REAL NOT NULL DEFAULT 0, grp_interval REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox_groups (
    receiver TEXT NOT NULL, grp TEXT NOT NULL, last_sent REAL NOT NULL, PRIMARY KEY (receiver, grp)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox (alert);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, match TEXT NOT NULL, polygon TEXT, starts REAL NOT NULL, ends REAL NOT NULL,
    created_by TEXT NOT NULL, created_at REAL NOT NULL, reason TEXT NOT NULL, expired_by TEXT, expired_at REAL
);
CREATE TABLE IF NOT EXISTS audit (
    n INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    object TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS escalations (
    alert TEXT NOT NULL, seq INTEGER NOT NULL, step INTEGER NOT NULL, ts REAL NOT NULL, receivers TEXT NOT NULL,
    PRIMARY KEY (alert, seq, step)
) WITHOUT ROWID;
"""

# Columns added since schema 1 (CREATE TABLE IF NOT EXISTS leaves an existing table as it was): (table,
# column, definition), added when missing.
_ADDED_COLUMNS = (
    ("outbox", "note", "TEXT NOT NULL DEFAULT ''"),
    ("outbox", "grp", "TEXT NOT NULL DEFAULT ''"),
    ("outbox", "grp_wait", "REAL NOT NULL DEFAULT 0"),
    ("outbox", "grp_interval", "REAL NOT NULL DEFAULT 0"),
    ("alerts", "suppressed", "TEXT"),
    ("alerts", "assigned", "TEXT"),
    ("alerts", "verdict", "TEXT"),
    ("alerts", "changed", "INTEGER NOT NULL DEFAULT 0"),
)

_EVENT_COLS = ("id", "seq", "rule", "kind", "subject", "sensor", "domain", "district", "level", "state", "event",
               "started", "ts", "value", "message", "title", "owner", "playbook", "actor", "reason")
_INSERT_EVENT = (f"INSERT OR IGNORE INTO alert_events ({', '.join(_EVENT_COLS)}) "
                 f"VALUES ({', '.join('?' * len(_EVENT_COLS))})")

# An engine event moves the current alert only forward (higher seq). An acknowledgement survives a
# de-escalation but not an escalation (a worse level must be acknowledged again); an engine event
# other than "resolved" after a manual resolve re-opens the alert (the condition is still there).
_UPSERT_ALERT = """
INSERT INTO alerts (id, seq, rule, kind, subject, sensor, domain, district, level, level_n, state, last_event,
                    started, updated, value, message, title, owner, playbook)
VALUES (:id, :seq, :rule, :kind, :subject, :sensor, :domain, :district, :level, :level_n, :state, :event,
        :started, :ts, :value, :message, :title, :owner, :playbook)
ON CONFLICT (id) DO UPDATE SET
    seq = excluded.seq, level = excluded.level, level_n = excluded.level_n, last_event = excluded.last_event,
    updated = MAX(alerts.updated, excluded.updated), value = excluded.value, message = excluded.message,
    state = CASE
        WHEN excluded.state = 'resolved' THEN 'resolved'
        WHEN excluded.last_event = 'deescalated' AND alerts.state = 'acknowledged' THEN 'acknowledged'
        ELSE 'firing' END
WHERE excluded.seq > alerts.seq
"""


VERDICTS = ("false_alarm", "sensor_fault", "maintenance", "confirmed")
_QUEUED = ("pending", "awaiting_approval")  # outbox states that may still be sent
_INSERT_OUTBOX = ("INSERT OR IGNORE INTO outbox (key, receiver, alert, seq, created, payload, state, attempts, "
                  "next_at, last_error, done_at, note, grp, grp_wait, grp_interval) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, '', ?, ?, ?, ?, ?)")


def _outbox_params(n: Notification, done_at: float | None) -> tuple[Any, ...]:
    return (n.key, n.receiver, n.alert, n.seq, n.created, orjson.dumps(n.payload), n.state, n.created, done_at,
            n.note, n.group, n.group_wait, n.group_interval)


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE: the write lock up front, so two writers never deadlock on an
    upgrade); rolled back on any exception. ``db`` must be in autocommit mode (``isolation_level=None``)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    snapshot: dict[str, Any]
    journal_offset: int
    updated: float


@dataclass(frozen=True, slots=True)
class AlertRow:
    """The current state of one alert (one row of ``alerts``)."""

    id: str
    seq: int
    rule: str
    kind: str
    subject: str
    sensor: str
    domain: str
    district: str
    level: Level
    state: str
    last_event: str
    started: float
    updated: float
    value: float | None
    message: str
    title: str
    owner: str
    playbook: str
    acked_by: str | None
    acked_at: float | None
    ack_reason: str | None
    resolved_by: str | None
    resolved_at: float | None
    suppressed: str | None = None  # why its latest transition was not sent (silenced, inhibited, flapping)
    assigned: str | None = None  # the department an operator handed it to
    verdict: str | None = None  # an operator's verdict (VERDICTS)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One notification's delivery record."""

    key: str
    receiver: str
    alert: str
    seq: int
    created: float
    state: str  # pending | awaiting_approval | sent | failed | expired | rejected | silenced | inhibited | ...
    attempts: int
    next_at: float
    last_error: str
    done_at: float | None
    note: str = ""  # why it was not sent (the silence, the inhibiting alert), or who approved it


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of an alert's history: an engine transition (``seq`` set) or an operator action."""

    ts: float
    event: str  # fired | escalated | deescalated | resolved | acknowledged | comment
    actor: str
    reason: str
    level: str = ""
    value: float | None = None
    message: str = ""
    seq: int | None = None


class AlertStore:
    """One SQLite database. Not thread-safe: one instance per thread (or process)."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a killed process; FULL also survives a power cut.
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA (got {synchronous!r})")
        self._db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        self._db.executescript(_SCHEMA)
        self._check_version()
        self._db.execute("CREATE INDEX IF NOT EXISTS alerts_changed ON alerts (changed)")  # after the columns

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) in (1, SCHEMA_VERSION):
            self._add_columns()
            if int(row[0]) == 1:
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {row[0]}, this lifeline reads {SCHEMA_VERSION}")

    def _add_columns(self) -> None:
        """Bring a store written by an older lifeline up to date, in place (columns added since)."""
        have = {(t, r[1]) for t in ("outbox", "alerts") for r in self._db.execute(f"PRAGMA table_info({t})")}
        missing = [(t, c, d) for t, c, d in _ADDED_COLUMNS if (t, c) not in have]
        if missing:
            with self._tx() as db:
                for table, column, definition in missing:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db)

    # ---- the engine's batch ---------------------------------------------------------------
    def commit_batch(
        self,
        events: Sequence[AlertEvent],
        *,
        dead_counts: Mapping[str, int] | None = None,
        snapshot: Mapping[str, Any] | None = None,
        journal_offset: int = 0,
        now: float = 0.0,
        committed_offset: int | None = None,
        notifications: Sequence[Notification] = (),
        marks: Mapping[str, str] | None = None,
    ) -> int:
        """Store a batch's events, dead-letter counts, notifications to send (the outbox: stored before
        anything is sent, each key once) and (optionally) checkpoint atomically; return how many events were
        new (the rest had been stored before: a re-processed batch).

        ``committed_offset``: the journal length whose inputs this commit completes (recorded with the
        batch; with a ``snapshot`` it defaults to ``journal_offset``). ``marks``: alert id -> why its latest
        transition was not sent (silenced, inhibited, ...), "" when it was (the alert's ``suppressed``)."""
        if committed_offset is None and snapshot is not None:
            committed_offset = journal_offset
        with self._tx() as db:
            before = db.total_changes
            rows = [_event_row(e) for e in events]
            db.executemany(_INSERT_EVENT, rows)
            new = db.total_changes - before
            if events:
                db.executemany(_UPSERT_ALERT, [_alert_params(e) for e in events])
                version = self._bump(db, "alerts_version")
                db.executemany("UPDATE alerts SET changed = ? WHERE id = ?",
                               [(version, i) for i in dict.fromkeys(e.id for e in events)])
            if notifications:
                db.executemany(
                    _INSERT_OUTBOX, [_outbox_params(n, None if n.state in _QUEUED else n.created)
                                     for n in notifications])
            if marks:
                db.executemany("UPDATE alerts SET suppressed = NULLIF(?, '') WHERE id = ?",
                               [(why, alert) for alert, why in marks.items()])
            if dead_counts:
                db.executemany(
                    "INSERT INTO deadletters VALUES (?, ?) ON CONFLICT (reason) DO UPDATE SET count = count + ?",
                    [(r, n, n) for r, n in dead_counts.items() if n],
                )
            if snapshot is not None:
                db.execute(
                    "INSERT OR REPLACE INTO checkpoint VALUES (1, ?, ?, ?)",
                    (orjson.dumps(snapshot), journal_offset, now),
                )
            if committed_offset is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('journal_committed', ?)", (str(committed_offset),))
        return new

    # ---- the notification outbox ----------------------------------------------------------
    def outbox_due(self, now: float, limit: int = 100, *, receiver: str | None = None,
                   exclude: Sequence[str] = ()) -> list[Notification]:
        """Pending notifications whose next attempt is due, oldest first (a batch's in the order of its events,
        so a receiver hears an alert fire before it escalates; after a retry the payload's ``seq`` orders them);
        only ``receiver``'s, or only those of receivers not in ``exclude``."""
        where = "state = 'pending' AND next_at <= ?"
        args: list[object] = [now]
        if receiver is not None:
            where += " AND receiver = ?"
            args.append(receiver)
        if exclude:
            where += f" AND receiver NOT IN ({', '.join('?' * len(exclude))})"
            args.extend(exclude)
        rows = self._db.execute(
            f"SELECT key, receiver, alert, seq, created, payload, state, note, grp, grp_wait, grp_interval "
            f"FROM outbox WHERE {where} ORDER BY next_at, rowid LIMIT ?", (*args, limit)).fetchall()
        # ties: in the order they were stored
        return [Notification(k, r, a, q, c, orjson.loads(p), s, n, g, gw, gi) for k, r, a, q, c, p, s, n, g, gw, gi
                in rows]

    def outbox_wake(self, receiver: str, now: float) -> int:
        """Make ``receiver``'s pending notifications due now (it answers again after an outage); how many."""
        with self._tx() as db:
            return db.execute("UPDATE outbox SET next_at = ? WHERE receiver = ? AND state = 'pending' AND next_at > ?",
                              (now, receiver, now)).rowcount

    def outbox_defer(self, keys: Sequence[str], next_at: float) -> None:
        """Hold pending notifications until ``next_at`` (a group waiting for its time), attempts unchanged."""
        with self._tx() as db:
            db.executemany("UPDATE outbox SET next_at = ? WHERE key = ? AND state = 'pending'",
                           [(next_at, k) for k in keys])

    def group_last_sent(self, receiver: str, group: str) -> float | None:
        row = self._db.execute("SELECT last_sent FROM outbox_groups WHERE receiver = ? AND grp = ?",
                               (receiver, group)).fetchone()
        return None if row is None else float(row[0])

    def outbox_sent_group(self, receiver: str, group: str, keys: Sequence[str], now: float) -> None:
        """A group's message was accepted: every member is sent, and the group's clock restarts."""
        with self._tx() as db:
            db.executemany("UPDATE outbox SET state = 'sent', attempts = attempts + 1, done_at = ?, last_error = '' "
                           "WHERE key = ?", [(now, k) for k in keys])
            db.execute("INSERT OR REPLACE INTO outbox_groups VALUES (?, ?, ?)", (receiver, group, now))

    def outbox_queue(self, notifications: Sequence[Notification]) -> int:
        """Queue notifications outside an engine batch (reminders); the number new (each key once)."""
        with self._tx() as db:
            before = db.total_changes
            db.executemany(_INSERT_OUTBOX, [_outbox_params(n, None) for n in notifications])
            return db.total_changes - before

    def outbox_sent(self, key: str, now: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET state = 'sent', attempts = attempts + 1, done_at = ?, last_error = '' "
                       "WHERE key = ?", (now, key))

    def outbox_retry(self, key: str, error: str, next_at: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE key = ?",
                       (next_at, error, key))

    def outbox_give_up(self, key: str, state: str, error: str, now: float) -> None:
        """``failed`` (the receiver refused it) or ``expired`` (not delivered in time): shown to operators."""
        if state not in ("failed", "expired"):
            raise ValueError(f"outbox state must be failed or expired (got {state!r})")
        with self._tx() as db:
            db.execute("UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ?, done_at = ? "
                       "WHERE key = ?", (state, error, now, key))

    def outbox_attempts(self, key: str) -> int:
        row = self._db.execute("SELECT attempts FROM outbox WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def outbox_counts(self) -> dict[str, int]:
        """Notifications by state: pending (the backlog), sent, failed, expired."""
        return dict(self._db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())

    def outbox_rows(self, state: str | None = None) -> list[OutboxRow]:
        """Outbox rows (one state, or all), oldest first: what operators see of deliveries."""
        sql = ("SELECT key, receiver, alert, seq, created, state, attempts, next_at, last_error, done_at, note "
               "FROM outbox" + (" WHERE state = ?" if state else "") + " ORDER BY created, rowid")
        return [OutboxRow(*r) for r in self._db.execute(sql, (state,) if state else ()).fetchall()]

    def outbox_of(self, alert_id: str) -> list[OutboxRow]:
        """One alert's deliveries, in the order they were queued (the console's alert detail)."""
        sql = ("SELECT key, receiver, alert, seq, created, state, attempts, next_at, last_error, done_at, note "
               "FROM outbox WHERE alert = ? ORDER BY rowid")
        return [OutboxRow(*r) for r in self._db.execute(sql, (alert_id,)).fetchall()]

    def outbox_decide(self, key: str, approve: bool, actor: str, reason: str, now: float) -> OutboxRow:
        """A supervisor approves (it is sent) or rejects a notification ``awaiting_approval``; recorded in the
        alert's history with who, when and why."""
        with self._tx() as db:
            row = db.execute("SELECT alert, receiver, state FROM outbox WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise StoreError(f"no notification with key {key!r}")
            alert, receiver, state = row
            if state != "awaiting_approval":
                raise StoreError(f"notification {key} is {state}, not awaiting approval")
            verdict = "approved" if approve else "rejected"
            db.execute("UPDATE outbox SET state = ?, next_at = ?, note = ?, done_at = ? WHERE key = ?",
                       ("pending" if approve else "rejected", now, f"{verdict} by {actor}: {reason}",
                        None if approve else now, key))
            self._action(alert, now, verdict, actor, f"publication to {receiver}: {reason}")
        return next(r for r in self.outbox_of(alert) if r.key == key)

    # ---- silences (audited) -------------------------------------------------------------------
    def silence_add(self, match: Match, starts: float, ends: float, created_by: str, reason: str, now: float,
                    polygon: Sequence[tuple[float, float]] | None = None) -> Window:
        """Silence what ``match`` (and, if given, the polygon) selects from ``starts`` to ``ends``; who and why
        are required and the creation is in the audit log."""
        if not created_by.strip() or not reason.strip():
            raise StoreError("a silence needs who made it and why")
        if not ends > starts:
            raise StoreError(f"a silence must end after it starts ({rfc3339(starts)} .. {rfc3339(ends)})")
        if polygon is not None and len(polygon) < 3:
            raise StoreError("a silence polygon needs at least 3 points")
        body = orjson.dumps([match.to_dict(), polygon, starts, ends, created_by, reason, now])
        sid = "S-" + hashlib.sha1(body, usedforsecurity=False).hexdigest()[:8]
        with self._tx() as db:
            db.execute("INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                       (sid, orjson.dumps(match.to_dict()).decode(),
                        None if polygon is None else orjson.dumps([list(p) for p in polygon]).decode(),
                        starts, ends, created_by, now, reason))
            self._audit(db, now, created_by, "silence.add", sid,
                        f"{match} {'in a polygon ' if polygon else ''}from {rfc3339(starts)} to {rfc3339(ends)}: "
                        f"{reason}")
            self._bump(db, "silences_version")
        return self.silences(include_expired=True, ids=(sid,))[0]

    def silence_expire(self, silence_id: str, actor: str, reason: str, now: float) -> Window:
        """End a silence now (it stays on record, with who ended it and why)."""
        with self._tx() as db:
            row = db.execute("SELECT ends, expired_at FROM silences WHERE id = ?", (silence_id,)).fetchone()
            if row is None:
                raise StoreError(f"no silence with id {silence_id!r}")
            if row[1] is not None or row[0] <= now:
                raise StoreError(f"silence {silence_id} has already ended")
            if not actor.strip():
                raise StoreError("ending a silence needs who ends it")
            db.execute("UPDATE silences SET ends = ?, expired_by = ?, expired_at = ? WHERE id = ?",
                       (now, actor, now, silence_id))
            self._audit(db, now, actor, "silence.expire", silence_id, reason)
            self._bump(db, "silences_version")
        return self.silences(include_expired=True, ids=(silence_id,))[0]

    def silences(self, *, at: float | None = None, include_expired: bool = False,
                 ids: Sequence[str] = ()) -> list[Window]:
        """Silences, oldest first: those not ended by ``at`` (default: all not expired by hand), or ``ids``."""
        sql = ("SELECT id, match, polygon, starts, ends, created_by, created_at, reason, expired_by, expired_at "
               "FROM silences")
        args: list[Any] = []
        if ids:
            sql += f" WHERE id IN ({', '.join('?' * len(ids))})"
            args.extend(ids)
        elif at is not None:
            sql += " WHERE ends > ?"
            args.append(at)
        elif not include_expired:
            sql += " WHERE expired_at IS NULL"
        out = []
        for sid, m, poly, starts, ends, by, created, reason, exp_by, exp_at in self._db.execute(
                sql + " ORDER BY created_at, id", args):
            match = _stored_match(sid, m)
            ring = None if poly is None else tuple((float(x), float(y)) for x, y in orjson.loads(poly))
            out.append(Window(sid, match, by, reason, starts, ends, ring, created_at=created,
                              extra={"expired_by": exp_by, "expired_at": exp_at}))
        return out

    def silences_version(self) -> int:
        """Changes whenever a silence is added or ended (the runner re-reads them only then)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'silences_version'").fetchone()
        return 0 if row is None else int(row[0])

    def audit_log(self, limit: int = 100) -> list[tuple[float, str, str, str, str]]:
        """(time, actor, action, object, detail), newest first."""
        return [tuple(r) for r in self._db.execute(
            "SELECT ts, actor, action, object, detail FROM audit ORDER BY n DESC LIMIT ?", (limit,))]

    def audit(self, actor: str, action: str, obj: str, detail: str, ts: float) -> None:
        """Record one act of a person (the console records every state-changing request here)."""
        self._audit(self._db, ts, actor, action, obj, detail)

    @staticmethod
    def _audit(db: sqlite3.Connection, ts: float, actor: str, action: str, obj: str, detail: str) -> None:
        db.execute("INSERT INTO audit (ts, actor, action, object, detail) VALUES (?, ?, ?, ?, ?)",
                   (ts, actor, action, obj, detail))

    @staticmethod
    def _bump(db: sqlite3.Connection, key: str) -> int:
        db.execute("INSERT INTO meta VALUES (?, '1') ON CONFLICT (key) DO UPDATE SET value = value + 1", (key,))
        return int(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    # ---- escalation and response clocks -------------------------------------------------------
    def overdue(self, deadlines: Mapping[Level, float], now: float) -> list[tuple[AlertRow, int, int, float]]:
        """Firing (unacknowledged, not suppressed) alerts past their level's acknowledgement deadline:
        (alert, the escalation step now due, the last step taken, when its current level began). Step k is
        due ``k`` deadlines after the current level began - its event time, or when it was first queued for
        a receiver if that was later (a reading that arrives late cannot have been acknowledged before it
        arrived); alerts whose due step was taken are left out."""
        out = []
        rows = self._db.execute(
            f"SELECT {', '.join('a.' + f for f in _ALERT_FIELDS)}, s.ts, "
            "(SELECT MIN(created) FROM outbox o WHERE o.alert = a.id AND o.seq = s.seq "
            "AND o.note NOT LIKE 'reminder %' AND o.note NOT LIKE 'repeat %'), "  # the transition's, not a reminder's
            "(SELECT MAX(step) FROM escalations x WHERE x.alert = a.id AND x.seq = a.seq) "
            "FROM alerts a JOIN alert_events s ON s.id = a.id AND s.seq = (SELECT MAX(seq) FROM alert_events e "
            "WHERE e.id = a.id AND e.event IN ('fired', 'escalated')) "
            "WHERE a.state = 'firing' AND a.suppressed IS NULL").fetchall()
        n = len(_ALERT_FIELDS)
        for r in rows:
            alert = _alert_row(r[:n])
            began, queued, done = r[n], r[n + 1], r[n + 2] or 0
            deadline = deadlines.get(alert.level)
            if not deadline:
                continue
            since = max(float(began), float(queued)) if queued is not None else float(began)
            due_steps = int((now - since) // deadline)
            if due_steps > done:
                out.append((alert, due_steps, int(done), since))
        return out

    def escalation_steps(self, alert_id: str, seq: int) -> int:
        """How many escalation steps were taken at this transition of the alert."""
        row = self._db.execute("SELECT MAX(step) FROM escalations WHERE alert = ? AND seq = ?",
                               (alert_id, seq)).fetchone()
        return int(row[0] or 0)

    def escalate(self, alert: AlertRow, step: int, receivers: Sequence[str], notifications: Sequence[Notification],
                 now: float, why: str) -> bool:
        """Record escalation ``step`` of ``alert`` (once: False if it was taken already) with its notifications,
        in one transaction, and note it in the alert's history."""
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO escalations VALUES (?, ?, ?, ?, ?)",
                             (alert.id, alert.seq, step, now, ",".join(receivers)))
            if cur.rowcount == 0:
                return False
            db.executemany(_INSERT_OUTBOX, [_outbox_params(n, None) for n in notifications])
            self._action(alert.id, now, "escalated", "lifeline", why)
        return True

    def response_times(self, since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
        """Per department (the alert's owner): alerts, how many were acknowledged and resolved, and the median
        and 90th percentile time to acknowledge and to resolve (seconds from the alert's start), over the
        safety alerts that started in [since, until)."""
        where, args = ["kind = 'safety'"], []
        if since is not None:
            where.append("started >= ?")
            args.append(since)
        if until is not None:
            where.append("started < ?")
            args.append(until)
        rows = self._db.execute(
            "SELECT owner, started, acked_at, CASE WHEN state = 'resolved' THEN COALESCE(resolved_at, updated) END "
            f"FROM alerts WHERE {' AND '.join(where)} ORDER BY owner", args).fetchall()
        by: dict[str, list[tuple[float, float | None, float | None]]] = {}
        for owner, started, acked, resolved in rows:
            by.setdefault(owner or "(no owner)", []).append((started, acked, resolved))
        out = []
        for owner, items in by.items():
            tta = sorted(a - s for s, a, _ in items if a is not None)
            ttr = sorted(r - s for s, _, r in items if r is not None)
            out.append({"department": owner, "alerts": len(items), "acknowledged": len(tta), "resolved": len(ttr),
                        "ack_median_s": _quantile(tta, 0.5), "ack_p90_s": _quantile(tta, 0.9),
                        "resolve_median_s": _quantile(ttr, 0.5), "resolve_p90_s": _quantile(ttr, 0.9)})
        return out

    def committed_offset(self) -> int | None:
        """The journal offset of the last committed batch (None: never recorded)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'journal_committed'").fetchone()
        return None if row is None else int(row[0])

    def checkpoint(self) -> Checkpoint | None:
        row = self._db.execute("SELECT snapshot, journal_offset, updated FROM checkpoint WHERE k = 1").fetchone()
        if row is None:
            return None
        return Checkpoint(orjson.loads(row[0]), int(row[1]), float(row[2]))

    def stored(self, transitions: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
        """Which of these (alert id, seq) transitions the store already holds (a redelivered alert event)."""
        out: set[tuple[str, int]] = set()
        items = list(dict.fromkeys(transitions))
        for i in range(0, len(items), 400):
            chunk = items[i:i + 400]
            where = " OR ".join(["(id = ? AND seq = ?)"] * len(chunk))
            out.update((str(a), int(b)) for a, b in self._db.execute(
                f"SELECT id, seq FROM alert_events WHERE {where}", [v for pair in chunk for v in pair]))
        return out

    def deadletter_counts(self) -> dict[str, int]:
        return {r: n for r, n in self._db.execute("SELECT reason, count FROM deadletters ORDER BY reason")}

    # ---- operator actions -----------------------------------------------------------------
    def ack(self, alert_id: str, actor: str, reason: str, ts: float) -> AlertRow:
        """Acknowledge an open alert: a person has seen it and owns it."""
        with self._tx() as db:
            row = self._require(alert_id)
            if row.state == "resolved":
                raise StoreError(f"alert {alert_id} is resolved; nothing to acknowledge")
            db.execute("UPDATE alerts SET state = 'acknowledged', acked_by = ?, acked_at = ?, ack_reason = ?, "
                       "updated = MAX(updated, ?) WHERE id = ?", (actor, ts, reason, ts, alert_id))
            self._action(alert_id, ts, "acknowledged", actor, reason)
        return self._require(alert_id)

    def resolve(self, alert_id: str, actor: str, reason: str, ts: float) -> AlertRow:
        """Resolve an alert by hand (a person closes it; the engine may re-open it while the
        condition holds)."""
        with self._tx() as db:
            row = self._require(alert_id)
            if row.state == "resolved":
                raise StoreError(f"alert {alert_id} is already resolved")
            db.execute("UPDATE alerts SET state = 'resolved', resolved_by = ?, resolved_at = ?, "
                       "updated = MAX(updated, ?) WHERE id = ?", (actor, ts, ts, alert_id))
            self._action(alert_id, ts, "resolved", actor, reason)
        return self._require(alert_id)

    def comment(self, alert_id: str, actor: str, text: str, ts: float) -> AlertRow:
        if not text.strip():
            raise StoreError(f"comment on alert {alert_id}: the text is empty")
        with self._tx():
            self._require(alert_id)
            self._action(alert_id, ts, "comment", actor, text)
        return self._require(alert_id)

    def assign(self, alert_id: str, department: str, actor: str, reason: str, ts: float) -> AlertRow:
        """Hand the alert to a department (the one that must act); recorded in its history."""
        if not department.strip():
            raise StoreError(f"assign alert {alert_id}: name the department")
        with self._tx() as db:
            self._require(alert_id)
            db.execute("UPDATE alerts SET assigned = ? WHERE id = ?", (department, alert_id))
            self._action(alert_id, ts, "assigned", actor, f"to {department}" + (f": {reason}" if reason else ""))
        return self._require(alert_id)

    def set_verdict(self, alert_id: str, verdict: str, actor: str, reason: str, ts: float) -> AlertRow:
        """An operator's verdict on what the alert was (false alarm, sensor fault, maintenance, confirmed
        incident): it feeds the per-rule precision figures; the latest verdict counts."""
        if verdict not in VERDICTS:
            raise StoreError(f"verdict must be one of {', '.join(VERDICTS)} (got {verdict!r})")
        with self._tx() as db:
            self._require(alert_id)
            db.execute("UPDATE alerts SET verdict = ? WHERE id = ?", (verdict, alert_id))
            self._action(alert_id, ts, f"verdict: {verdict}", actor, reason)
        return self._require(alert_id)

    def change_version(self) -> int:
        """The alert change counter: moves on whenever the engine or a person changes an alert."""
        return int(self._db.execute("SELECT COALESCE((SELECT value FROM meta WHERE key = 'alerts_version'), 0)")
                   .fetchone()[0])

    def changed_since(self, version: int, limit: int = 5000) -> tuple[int, list[AlertRow]]:
        """Alerts changed (by the engine or a person) after ``version`` of the change counter, and the counter
        now: the console's live feed polls this."""
        now = self.change_version()
        if now <= version:
            return now, []
        rows = self._db.execute(f"SELECT {_ALERT_SELECT} FROM alerts WHERE changed > ? ORDER BY changed LIMIT ?",
                                (version, limit)).fetchall()
        return now, [_alert_row(r) for r in rows]

    def _action(self, alert_id: str, ts: float, action: str, actor: str, reason: str) -> None:
        if not actor.strip():
            raise StoreError(f"{action} of alert {alert_id}: an actor (who) is required")
        self._db.execute("INSERT INTO alert_actions (id, ts, action, actor, reason) VALUES (?, ?, ?, ?, ?)",
                         (alert_id, ts, action, actor, reason))
        version = self._bump(self._db, "alerts_version")
        self._db.execute("UPDATE alerts SET changed = ? WHERE id = ?", (version, alert_id))

    def _require(self, alert_id: str) -> AlertRow:
        row = self.get(alert_id)
        if row is None:
            raise StoreError(f"no alert with id {alert_id!r}")
        return row

    # ---- queries --------------------------------------------------------------------------
    def get(self, alert_id: str) -> AlertRow | None:
        cur = self._db.execute(f"SELECT {_ALERT_SELECT} FROM alerts WHERE id = ?", (alert_id,))
        row = cur.fetchone()
        return None if row is None else _alert_row(row)

    def find(self, prefix: str) -> list[AlertRow]:
        """Alerts whose id starts with ``prefix`` (operators type short ids)."""
        cur = self._db.execute(f"SELECT {_ALERT_SELECT} FROM alerts WHERE id LIKE ? || '%' ORDER BY id LIMIT 10",
                               (prefix.replace("%", "").replace("_", ""),))
        return [_alert_row(r) for r in cur]

    def list_alerts(self, state: str | Iterable[str] | None = None, domain: str | None = None,
                    level: str | None = None, limit: int | None = None, *, district: str | None = None,
                    owner: str | None = None, assigned: str | None = None) -> list[AlertRow]:
        """Current alerts, worst level first, then most recently updated. ``state`` may be
        ``open`` (firing or acknowledged); ``level`` is a minimum level."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("district", district), ("owner", owner), ("assigned", assigned)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if state is not None:
            states = _states(state)
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args.extend(states)
        if domain is not None:
            where.append("domain = ?")
            args.append(domain)
        if level is not None:
            where.append("level_n >= ?")
            args.append(int(Level.parse(level)))
        sql = f"SELECT {_ALERT_SELECT} FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY level_n DESC, updated DESC, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_alert_row(r) for r in self._db.execute(sql, args)]

    def alert_counts(self, since: float, until: float | None = None) -> dict[str, dict[str, int]]:
        """Safety alerts that started in [since, until) per domain and level colour (the overview)."""
        args: list[Any] = [since]
        sql = "SELECT domain, level, count(*) FROM alerts WHERE kind = 'safety' AND started >= ?"
        if until is not None:
            sql += " AND started < ?"
            args.append(until)
        out: dict[str, dict[str, int]] = {}
        for domain, level, n in self._db.execute(sql + " GROUP BY domain, level", args):
            out.setdefault(domain, {lv.colour: 0 for lv in Level})[level] = int(n)
        return out

    def verdict_stats(self, since: float | None = None) -> list[dict[str, Any]]:
        """Per rule, the operators' verdicts on its alerts and its precision (confirmed / judged), noisiest
        first: the rules that most need tuning."""
        sql = ("SELECT rule, count(*), sum(verdict IS NOT NULL), sum(verdict = 'confirmed'), "
               "sum(verdict = 'false_alarm'), sum(verdict = 'sensor_fault'), sum(verdict = 'maintenance') FROM alerts")
        args: list[Any] = []
        if since is not None:
            sql += " WHERE started >= ?"
            args.append(since)
        out = []
        for rule, n, judged, confirmed, false_alarm, fault, maint in self._db.execute(sql + " GROUP BY rule", args):
            judged = int(judged or 0)
            out.append({"rule": rule, "alerts": int(n), "judged": judged, "confirmed": int(confirmed or 0),
                        "false_alarm": int(false_alarm or 0), "sensor_fault": int(fault or 0),
                        "maintenance": int(maint or 0),
                        "precision": (int(confirmed or 0) / judged) if judged else None})
        out.sort(key=lambda r: (-(r["false_alarm"] + r["sensor_fault"]), -r["alerts"], r["rule"]))
        return out

    def offline_sensors(self) -> list[str]:
        """Sensors with an open no-data alert."""
        return [r[0] for r in self._db.execute(
            "SELECT DISTINCT sensor FROM alerts WHERE kind = 'nodata' AND state != 'resolved' ORDER BY sensor")]

    def level_counts(self, state: str | Iterable[str] = "open") -> dict[str, int]:
        """Alerts per level colour in ``state`` (default: open), every level present."""
        states = _states(state)
        marks = ", ".join("?" * len(states))
        got = dict(self._db.execute(f"SELECT level, count(*) FROM alerts WHERE state IN ({marks}) GROUP BY level",
                                    states).fetchall())
        return {lv.colour: int(got.get(lv.colour, 0)) for lv in Level}

    def events(self, alert_id: str | None = None) -> list[AlertEvent]:
        """Engine events (all, or of one alert), in (id, seq) order."""
        sql = f"SELECT {', '.join(_EVENT_COLS)} FROM alert_events"
        args: tuple[str, ...] = ()
        if alert_id is not None:
            sql += " WHERE id = ?"
            args = (alert_id,)
        cur = self._db.execute(sql + " ORDER BY id, seq", args)
        return [AlertEvent.from_dict(dict(zip(_EVENT_COLS, r, strict=True))) for r in cur]

    def history(self, alert_id: str) -> list[HistoryEntry]:
        """Engine transitions and operator actions of one alert, in time order."""
        out = [HistoryEntry(e.ts, e.event.value, e.actor, e.reason, e.level.colour, e.value, e.message, e.seq)
               for e in self.events(alert_id)]
        cur = self._db.execute("SELECT ts, action, actor, reason FROM alert_actions WHERE id = ? ORDER BY n",
                               (alert_id,))
        out.extend(HistoryEntry(float(ts), action, actor, reason) for ts, action, actor, reason in cur)
        # stable: for equal times engine transitions (by seq) come before the actions (by insertion)
        out.sort(key=lambda h: h.ts)
        return out

    def count_events(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM alert_events").fetchone()[0])


_ALERT_FIELDS = ("id", "seq", "rule", "kind", "subject", "sensor", "domain", "district", "level", "state",
                 "last_event", "started", "updated", "value", "message", "title", "owner", "playbook",
                 "acked_by", "acked_at", "ack_reason", "resolved_by", "resolved_at", "suppressed", "assigned",
                 "verdict")
_ALERT_SELECT = ", ".join(_ALERT_FIELDS)


def outbox_counts_at(path: str | Path) -> dict[str, int]:
    """Notifications by state, read through a read-only connection of its own (safe from any thread, e.g. a
    metrics scrape, while the runner and the dispatcher write)."""
    db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=5)
    try:
        return dict(db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
    finally:
        db.close()


def _stored_match(silence_id: str, text: str) -> Match:
    problems: list[str] = []
    match = match_from(orjson.loads(text), lambda _, msg: problems.append(msg))
    if problems:
        raise StoreError(f"silence {silence_id}: stored matchers unreadable: {'; '.join(problems)}")
    return match


def _quantile(xs: Sequence[float], q: float) -> float | None:
    """The q-quantile by linear interpolation (None when empty)."""
    if not xs:
        return None
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _states(state: str | Iterable[str]) -> list[str]:
    names = [state] if isinstance(state, str) else list(state)
    out: list[str] = []
    for s in names:
        out.extend(["firing", "acknowledged"] if s == "open" else [s])
    valid = {"firing", "acknowledged", "resolved"}
    bad = [s for s in out if s not in valid]
    if bad:
        raise StoreError(f"unknown alert state {bad[0]!r} (expected open, firing, acknowledged or resolved)")
    return out


def _alert_row(r: Sequence[Any]) -> AlertRow:
    d = dict(zip(_ALERT_FIELDS, r, strict=True))
    d["level"] = Level.parse(d["level"])
    return AlertRow(**d)


def _event_row(e: AlertEvent) -> tuple[Any, ...]:
    return (e.id, e.seq, e.rule, e.kind.value, e.subject, e.sensor, e.domain, e.district, e.level.colour,
            e.state.value, e.event.value, e.started, e.ts, e.value, e.message, e.title, e.owner, e.playbook,
            e.actor, e.reason)


def _alert_params(e: AlertEvent) -> dict[str, Any]:
    return {
        "id": e.id, "seq": e.seq, "rule": e.rule, "kind": e.kind.value, "subject": e.subject, "sensor": e.sensor,
        "domain": e.domain, "district": e.district, "level": e.level.colour, "level_n": int(e.level),
        "state": "resolved" if e.event == EventKind.RESOLVED else "firing", "event": e.event.value,
        "started": e.started, "ts": e.ts, "value": e.value, "message": e.message, "title": e.title,
        "owner": e.owner, "playbook": e.playbook,
    }
