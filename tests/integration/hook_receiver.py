"""Webhook receivers on one loopback port, as a department's server would run them: one path per receiver
(``/control_centre``, ``/gas_company`` ...), each with its own shared secret. Every POST is checked the way
docs/delivery.md tells a receiver to check it (HMAC-SHA256 of ``<timestamp>.<body>``; the key in the header,
the body and derived from (alert id, transition seq, receiver) all agree) and recorded, repeats included, so
a test can count each idempotency key. The server can be stopped (the port then refuses connections, as a
receiver that is down does) and started again on the same port.

Used by ``tests/integration/test_outbox_engine_kill.py`` and ``benchmarks/delivery_outage.py``.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from lifeline.notifiers.base import notification_key
from lifeline.notifiers.webhook import verify


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST the receiver accepted (2xx)."""

    receiver: str  # from the path
    key: str  # X-Lifeline-Key
    alert: str  # the alert event's id ...
    seq: int  # ... and transition number
    event: str  # fired, escalated, ...
    signed: bool  # X-Lifeline-Signature verifies with this receiver's secret
    consistent: bool  # header key == body key (== notification_key(alert, seq, receiver) unless a notice);
    # body receiver == path
    at: float  # time.monotonic() when it arrived


class HookReceiver:
    """``secrets``: receiver name -> shared secret; the receiver ``name`` listens on ``url(name)``. A POST
    whose signature does not verify is answered 401 (lifeline records that as a permanent failure) and
    counted in ``refused``; one to an unknown path, 404. ``requests`` counts every POST that reached it."""

    def __init__(self, port: int, secrets: Mapping[str, str]) -> None:
        self.port = port
        self.secrets = dict(secrets)
        self.deliveries: list[Delivery] = []
        self.refused: list[tuple[str, str]] = []  # (path, reason)
        self.requests = 0
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, receiver: str) -> str:
        return f"http://127.0.0.1:{self.port}/{receiver}"

    @property
    def up(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code = outer._receive(self.path.strip("/"), dict(self.headers.items()), body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"hook-receiver-{self.port}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket: from here on a connection is refused until ``start``."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _receive(self, receiver: str, headers: Mapping[str, str], body: bytes) -> int:
        with self._lock:
            self.requests += 1
        secret = self.secrets.get(receiver)
        if secret is None:
            with self._lock:
                self.refused.append((receiver, "unknown path"))
            return 404
        key = headers.get("X-Lifeline-Key", "")
        signed = verify(secret, headers.get("X-Lifeline-Timestamp", ""), body, headers.get("X-Lifeline-Signature", ""))
        if not signed:
            with self._lock:
                self.refused.append((receiver, f"bad signature on {key or 'no key'}"))
            return 401
        doc = orjson.loads(body)
        alert = doc["alert"]
        # a notice (flapping, a reminder) carries a key of its own, tagged; a transition the plain one
        plain = notification_key(alert["id"], alert["seq"], receiver)
        consistent = (doc["key"] == key and (key == plain or bool(alert.get("notice")))
                      and doc["receiver"] == receiver)
        with self._lock:
            self.deliveries.append(Delivery(receiver, key, alert["id"], int(alert["seq"]), alert["event"], signed,
                                            consistent, time.monotonic()))
        return 200

    # ---- what arrived -------------------------------------------------------------------------
    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def keys(self) -> Counter[str]:
        """Idempotency key -> how many times it arrived (more than once: a duplicate)."""
        return Counter(d.key for d in self.snapshot())

    def triples(self) -> set[tuple[str, int, str]]:
        """(alert id, transition seq, receiver) of everything delivered."""
        return {(d.alert, d.seq, d.receiver) for d in self.snapshot()}
