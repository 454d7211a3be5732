"""The e-mail channel against a real SMTP server (aiosmtpd) on loopback, with STARTTLS and login, through the
routing file and the outbox: one message per notification, in Chinese, with the key as Message-ID; a
refused recipient fails for good; a server down is retried; a server without STARTTLS is never used in clear."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from lifeline.alerting.outbox import Dispatcher
from lifeline.alerting.routing import load_routing
from lifeline.clock import ManualClock
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level
from lifeline.notifiers.base import Notification
from lifeline.sinks.store import AlertStore, OutboxRow
from lifeline.testing_broker import free_port

pytestmark = pytest.mark.integration
T = 1784044800.0


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (the test command installs openssl)."""
    exe = shutil.which("openssl")
    if exe is None:
        pytest.fail("openssl is not installed (apt-get install openssl)", pytrace=False)
    d = tmp_path_factory.mktemp("tls")
    subprocess.run([exe, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "key.pem"), "-out",
                    str(d / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


@dataclass
class Mailbox:
    port: int
    refuse: set[str] = field(default_factory=set)
    messages: list[tuple[list[str], Message, bool]] = field(default_factory=list)  # (rcpts, message, over TLS)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg, session.ssl is not None))
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"lifeline", b"pw")
    return AuthResult(success=ok, handled=False, auth_data=data)


@pytest.fixture()
def smtp(cert: tuple[Path, Path]) -> Iterator[Mailbox]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    box = Mailbox(free_port())
    c = Controller(box, hostname="127.0.0.1", port=box.port, tls_context=ctx, require_starttls=True,
                   authenticator=_auth, auth_require_tls=True)
    c.start()
    yield box
    c.stop()


def _routes(tmp_path: Path, port: int, cert: Path, *, to: str = "duty@gas.example", lang: str = "zh") -> Path:
    p = tmp_path / "routes.yaml"
    p.write_text(f"""\
receivers:
  - name: duty
    email: {{host: 127.0.0.1, port: {port}, from: lifeline@city.example, to: [{to}], cafile: "{cert}",
            username_env: SMTP_USER, password_env: SMTP_PASSWORD, lang: {lang}, console_url: "https://console.example",
            timeout: 5s}}
route:
  receiver: duty
""")
    return p


def _event(i: int, level: Level = Level.RED) -> AlertEvent:
    return AlertEvent(id=f"alert{i:03d}", seq=1, rule="gas.methane.high", kind=AlertKind.SAFETY,
                      subject="LY-GAS-C1-W04", sensor="LY-GAS-C1-W04", domain="gas", district="LY", level=level,
                      state=AlertState.FIRING, event=EventKind.FIRED, started=T, ts=T + i, value=52.5,
                      message="CH4 52.5 %LEL at LY-GAS-C1-W04", title="Combustible gas in an adjacent space")


def _queue(db: Path, events: list[AlertEvent], now: float) -> list[Notification]:
    notes = [Notification.of(e, "duty", now) for e in events]
    with AlertStore(db) as store:
        store.commit_batch(events, notifications=notes)
    return notes


ENV = {"SMTP_USER": "lifeline", "SMTP_PASSWORD": "pw"}


def _one(routes: Path, db: Path, event: AlertEvent, clock: ManualClock, **kw: float) -> OutboxRow:
    """Queue one notification of ``event`` for the routing file's receiver, run the dispatcher once: its row."""
    _queue(db, [event], clock.now())
    d = Dispatcher(db, load_routing(routes, ENV).notifiers(), clock=clock, **kw)
    try:
        d.run_once()
        (row,) = d.store.outbox_rows()
        return row
    finally:
        d.stop()


def test_each_notification_is_one_mail_over_starttls_in_chinese(smtp: Mailbox, cert: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    routing = load_routing(_routes(tmp_path, smtp.port, cert[0]), ENV)
    db, clock = tmp_path / "lifeline.db", ManualClock(T + 10)
    notes = _queue(db, [_event(i) for i in range(3)], clock.now())
    d = Dispatcher(db, routing.notifiers(), clock=clock)
    assert d.run_once() == 3
    counts = d.store.outbox_counts()
    d.stop()
    assert counts == {"sent": 3} and len(smtp.messages) == 3
    rcpts, msg, tls = smtp.messages[0]
    assert rcpts == ["duty@gas.example"] and tls  # delivered inside STARTTLS, after login
    assert msg["Message-ID"] == f"<{notes[0].key}@lifeline>" and msg["X-Lifeline-Key"] == notes[0].key
    assert str(msg["Subject"]) == ("【红色（一级）】安全预警发布：Combustible gas in an adjacent space"
                                   "（LY / LY-GAS-C1-W04）")
    body = msg.get_content()  # type: ignore[attr-defined]
    assert "CH4 52.5 %LEL at LY-GAS-C1-W04" in body and "监测值: 52.5" in body
    assert "处置预案: https://console.example/rules/gas.methane.high#playbook" in body
    assert "确认预警: https://console.example/alerts/alert000" in body


def test_a_refused_recipient_fails_for_good_and_a_down_server_is_retried(smtp: Mailbox, cert: tuple[Path, Path],
                                                                        tmp_path: Path) -> None:
    smtp.refuse.add("nobody@gas.example")
    clock = ManualClock(T + 10)
    row = _one(_routes(tmp_path, smtp.port, cert[0], to="nobody@gas.example"), tmp_path / "refused.db", _event(0),
               clock)
    assert row.state == "failed" and "550" in row.last_error and smtp.messages == []
    down = _routes(tmp_path, free_port(), cert[0], lang="en")  # nothing listens there
    row = _one(down, tmp_path / "down.db", _event(1, Level.ORANGE), clock, retry_initial_s=30)
    assert row.state == "pending" and row.attempts == 1 and row.next_at == clock.now() + 30


def test_a_server_without_starttls_is_never_used_in_clear(cert: tuple[Path, Path], tmp_path: Path) -> None:
    box = Mailbox(free_port())
    c = Controller(box, hostname="127.0.0.1", port=box.port)  # no TLS offered
    c.start()
    try:
        row = _one(_routes(tmp_path, box.port, cert[0]), tmp_path / "clear.db", _event(0), ManualClock(T + 10))
    finally:
        c.stop()
    assert row.state == "failed" and "does not offer STARTTLS" in row.last_error and box.messages == []
