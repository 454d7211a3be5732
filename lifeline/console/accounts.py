"""Console accounts: users with roles, password hashes, browser sessions with CSRF tokens, API tokens.

Roles, each allowing what the one before allows: ``viewer`` (read), ``operator`` (act on alerts:
acknowledge, assign, comment, give a verdict, resolve), ``engineer`` (silences, rule files), ``admin``
(users, tokens; approves public warnings as the supervisor).

Passwords are hashed with scrypt (RFC 7914, memory-hard; Python's ``hashlib.scrypt``), N=2^14, r=8, p=1,
a 16-byte random salt, stored as ``scrypt$N$r$p$salt$hash``. Session ids and API tokens are 32 random bytes;
only their SHA-256 is stored, so a copy of the database opens no session. A session lasts 12 hours from
its last use (a shift) and carries a CSRF token that every state-changing request must echo in the
``X-CSRF-Token`` header. Five failed logins within 15 minutes lock that user out for the rest of the
15 minutes. The tables live in the alert store's SQLite file; this module never talks to the network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from lifeline.sinks.store import immediate

ROLES = ("viewer", "operator", "engineer", "admin")
SESSION_S = 12 * 3600.0
LOCK_FAILURES, LOCK_WINDOW_S = 5, 900.0
_N, _R, _P = 2**14, 8, 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, pwhash TEXT NOT NULL, created REAL NOT NULL, disabled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL, expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY, user TEXT NOT NULL, label TEXT NOT NULL, created REAL NOT NULL, last_used REAL
);
CREATE TABLE IF NOT EXISTS login_failures (user TEXT NOT NULL, ts REAL NOT NULL);
"""


class AuthError(Exception):
    """Not authenticated (401) or not allowed (403, ``forbidden``); the message says which and why."""

    def __init__(self, message: str, *, forbidden: bool = False, locked: bool = False) -> None:
        super().__init__(message)
        self.forbidden, self.locked = forbidden, locked


def allows(role: str, needed: str) -> bool:
    """Does ``role`` include what ``needed`` may do?"""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32, maxmem=64 * 1024 * 1024)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=32, maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.urlsafe_b64decode(digest))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user and role; ``csrf`` set for a browser session (None for an API token)."""

    user: str
    role: str
    csrf: str | None = None
    session: str | None = None  # the session id's digest (to log out)


class Accounts:
    """Users, sessions and tokens in one SQLite file. One instance per thread (it holds a connection)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db)

    # ---- users ------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str, now: float) -> None:
        if not name.strip() or any(c.isspace() for c in name):
            raise ValueError(f"user name must be non-empty without spaces (got {name!r})")
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
        if len(password) < 10:
            raise ValueError("password must be at least 10 characters")
        with self._tx() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"user {name!r} exists")
            db.execute("INSERT INTO users VALUES (?, ?, ?, ?, 0)", (name, role, hash_password(password), now))

    def set_role(self, name: str, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
        with self._tx() as db:
            if db.execute("UPDATE users SET role = ? WHERE name = ?", (role, name)).rowcount == 0:
                raise ValueError(f"no user {name!r}")

    def users(self) -> list[tuple[str, str, bool]]:
        """(name, role, disabled), by name."""
        return [(n, r, bool(d)) for n, r, d in self._db.execute("SELECT name, role, disabled FROM users ORDER BY name")]

    def role_of(self, name: str) -> str | None:
        row = self._db.execute("SELECT role FROM users WHERE name = ? AND disabled = 0", (name,)).fetchone()
        return None if row is None else str(row[0])

    # ---- sessions -----------------------------------------------------------------------------
    def login(self, name: str, password: str, now: float) -> tuple[str, Principal]:
        """A new session (its id, to put in a cookie, and who it is); AuthError when the name or password is
        wrong (one message for both) or the user is locked out after repeated failures."""
        with self._tx() as db:
            db.execute("DELETE FROM login_failures WHERE ts < ?", (now - LOCK_WINDOW_S,))
            fails = db.execute("SELECT count(*) FROM login_failures WHERE user = ?", (name,)).fetchone()[0]
            row = db.execute("SELECT role, pwhash FROM users WHERE name = ? AND disabled = 0", (name,)).fetchone()
            ok = fails < LOCK_FAILURES and row is not None and verify_password(password, row[1])
            if not ok:  # recorded (this transaction commits), then refused below
                db.execute("INSERT INTO login_failures VALUES (?, ?)", (name, now))
            else:
                db.execute("DELETE FROM login_failures WHERE user = ?", (name,))
                db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
                sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
                db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (_digest(sid), name, csrf, now + SESSION_S))
        if fails >= LOCK_FAILURES:
            raise AuthError(f"too many failed logins for {name!r}; try again in {LOCK_WINDOW_S / 60:g} minutes",
                            locked=True)
        if not ok or row is None:
            raise AuthError("wrong user name or password")
        return sid, Principal(name, str(row[0]), csrf, _digest(sid))

    def session(self, sid: str, now: float) -> Principal:
        """Who holds this session (and extend it); AuthError when unknown or expired."""
        d = _digest(sid)
        row = self._db.execute(
            "SELECT s.user, u.role, s.csrf, s.expires FROM sessions s JOIN users u ON u.name = s.user "
            "WHERE s.id = ? AND u.disabled = 0", (d,)).fetchone()
        if row is None or row[3] < now:
            raise AuthError("not logged in (or the session expired): log in again")
        self._db.execute("UPDATE sessions SET expires = ? WHERE id = ?", (now + SESSION_S, d))
        return Principal(str(row[0]), str(row[1]), str(row[2]), d)

    def logout(self, session_digest: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE id = ?", (session_digest,))

    # ---- API tokens ---------------------------------------------------------------------------
    def create_token(self, user: str, label: str, now: float) -> str:
        """A new API token for ``user`` (shown once; only its digest is kept); it acts with the user's role."""
        if self.role_of(user) is None:
            raise ValueError(f"no (enabled) user {user!r}")
        token = "llt_" + secrets.token_urlsafe(32)
        self._db.execute("INSERT INTO api_tokens VALUES (?, ?, ?, ?, NULL)", (_digest(token), user, label, now))
        return token

    def token(self, token: str, now: float) -> Principal:
        row = self._db.execute(
            "SELECT t.user, u.role FROM api_tokens t JOIN users u ON u.name = t.user WHERE t.id = ? AND u.disabled = 0",
            (_digest(token),)).fetchone()
        if row is None:
            raise AuthError("unknown or revoked API token")
        self._db.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", (now, _digest(token)))
        return Principal(str(row[0]), str(row[1]))

    def revoke_tokens(self, user: str) -> int:
        return self._db.execute("DELETE FROM api_tokens WHERE user = ?", (user,)).rowcount
