"""The outbox and the webhook channel over a real HTTP receiver on loopback: stored before sent, signed,
retried while the receiver is down, delivered exactly once per key across a dispatcher restart; refusals and
expiries stay visible with their reason."""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lifeline.alerting.outbox import Dispatcher
from lifeline.alerting.routing import load_routing
from lifeline.clock import ManualClock
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level
from lifeline.notifiers.base import Notification
from lifeline.notifiers.webhook import WebhookNotifier, WebhookSettings, verify
from lifeline.sinks.store import AlertStore
from lifeline.testing_broker import free_port
from tests.integration.conftest import Broker
from tests.integration.helpers import WALK_EVENTS, Publisher, config, publish_walk, start_thread_runner, wait_for

pytestmark = pytest.mark.integration

SECRET = "s3cret"
T = 1784044800.0


class Receiver:
    """A webhook receiver on a fixed loopback port: records (key, signature ok, body); can be stopped and
    started again on the same port; answers ``status`` (a list: the next answers, then 200)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.got: list[tuple[str, bool, dict[str, object]]] = []
        self.status: list[int] = []
        self._server: http.server.HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code = outer.status.pop(0) if outer.status else 200
                if code == 200:
                    ok = verify(SECRET, self.headers["X-Lifeline-Timestamp"], body,
                                self.headers.get("X-Lifeline-Signature", ""))
                    outer.got.append((self.headers["X-Lifeline-Key"], ok, orjson.loads(body)))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    yield r
    r.stop()


def _events(n: int) -> list[AlertEvent]:
    return [AlertEvent(id=f"alert{i:03d}", seq=1 + i % 2, rule="gas.methane.high", kind=AlertKind.SAFETY,
                       subject=f"S{i}", sensor=f"S{i}", domain="gas", district="LY", level=Level.RED,
                       state=AlertState.FIRING, event=EventKind.FIRED, started=T, ts=T + i, value=30.0 + i,
                       message=f"CH4 {30 + i} %LEL") for i in range(n)]


def _commit(db: Path, events: list[AlertEvent], receivers: list[str], now: float) -> list[Notification]:
    notes = [Notification.of(e, r, now) for e in events for r in receivers]
    with AlertStore(db) as store:
        store.commit_batch(events, notifications=notes)
        store.commit_batch(events, notifications=notes)  # a re-processed batch (replay after a crash) adds nothing
        assert store.outbox_counts() == {"pending": len(notes)}
    return notes


def test_receiver_down_then_back_every_notification_once_across_a_dispatcher_restart(receiver: Receiver,
                                                                                     tmp_path: Path) -> None:
    db = tmp_path / "lifeline.db"
    clock = ManualClock(T + 10)
    notes = _commit(db, _events(12), ["gas_company", "control_centre"], clock.now())
    hooks = {r: WebhookNotifier(WebhookSettings(receiver.url, SECRET, timeout_s=2)) for r in ("gas_company",
                                                                                              "control_centre")}
    first = Dispatcher(db, hooks, clock=clock, retry_initial_s=30, retry_max_s=120)
    assert first.run_once() == 2  # the receiver is down: one attempt per receiver fails, and each rests ...
    assert receiver.got == [] and first.store.outbox_counts() == {"pending": 24}
    clock.advance(10)
    assert first.run_once() == 0  # ... for its backoff
    first.stop()  # the engine's process dies while the receiver is down
    receiver.start()
    second = Dispatcher(db, hooks, clock=clock, retry_initial_s=30, retry_max_s=120)  # the restarted process
    clock.advance(25)
    assert second.run_once() == 24
    counts, rows = second.store.outbox_counts(), second.store.outbox_rows()
    second.stop()
    keys = [k for k, _, _ in receiver.got]
    assert sorted(keys) == sorted(n.key for n in notes) and len(set(keys)) == 24  # each exactly once
    assert all(ok for _, ok, _ in receiver.got)  # every body signed with the shared secret
    assert counts == {"sent": 24} and sorted(r.attempts for r in rows) == [1] * 22 + [2] * 2
    body = next(b for k, _, b in receiver.got if k == notes[0].key)
    assert body["receiver"] == notes[0].receiver and body["alert"] == notes[0].payload


def test_server_errors_are_retried_refusals_fail_and_old_ones_expire(receiver: Receiver, tmp_path: Path) -> None:
    db = tmp_path / "lifeline.db"
    clock = ManualClock(T + 10)
    notes = _commit(db, _events(3), ["venue"], clock.now())
    receiver.start()
    receiver.status = [503, 500, 400]  # the first two answers are retried (then 200), the third refuses for good
    hook = WebhookNotifier(WebhookSettings(receiver.url, SECRET, timeout_s=2))
    d = Dispatcher(db, {"venue": hook}, clock=clock, retry_initial_s=5, retry_max_s=60, ttl_s=3600)
    for _ in range(4):  # each failure that may pass rests the receiver 5 s (then 10 s)
        d.run_once()
        clock.advance(10)
    rows = d.store.outbox_rows()
    sent = sorted(r.key for r in rows if r.state == "sent")
    (failed,) = [r for r in rows if r.state == "failed"]
    assert len(sent) == 2 and {r.attempts for r in rows if r.state == "sent"} == {2}
    assert "HTTP 400" in failed.last_error and failed.attempts == 1
    assert sorted(k for k, _, _ in receiver.got) == sent and {n.key for n in notes} == {*sent, failed.key}
    # a notification nobody accepts within its time to live expires, with the last error kept
    receiver.stop()
    late = _commit(tmp_path / "late.db", _events(1), ["venue"], clock.now())
    e = Dispatcher(tmp_path / "late.db", {"venue": hook}, clock=clock, retry_initial_s=600, retry_max_s=600,
                   ttl_s=1800)
    e.run_once()
    clock.advance(1800)
    e.run_once()
    (row,) = e.store.outbox_rows()
    assert row.key == late[0].key and row.state == "expired" and row.attempts == 2 and "not delivered" in row.last_error
    d.stop()
    e.stop()


def test_unknown_receiver_fails_visibly(tmp_path: Path) -> None:
    db = tmp_path / "lifeline.db"
    clock = ManualClock(T)
    _commit(db, _events(1), ["nobody"], clock.now())
    d = Dispatcher(db, {}, clock=clock)
    d.run_once()
    (row,) = d.store.outbox_rows("failed")
    d.stop()
    assert row.receiver == "nobody" and "no such receiver" in row.last_error


def test_runner_routes_each_transition_to_its_receivers_once(mosquitto: Broker, tmp_path: Path) -> None:
    """`lifeline run --routes`: readings over real MQTT walk an alert through five transitions; the gas company
    hears all five, the control centre (a continue route, level >= orange) the three at orange or red - each
    once, signed, and every delivery is recorded in the outbox."""
    gas_hook, cc_hook = Receiver(free_port()), Receiver(free_port())
    gas_hook.start()
    cc_hook.start()
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"""\
receivers:
  - name: control_centre
    webhook: {{url: "{cc_hook.url}", secret_env: HOOK_SECRET}}
  - name: gas_company
    webhook: {{url: "{gas_hook.url}", secret_env: HOOK_SECRET}}
route:
  receiver: control_centre
  routes:
    - match: {{domain: gas}}
      receiver: gas_company
      continue: true
    - match: {{domain: gas, level: ">=orange"}}
noise: {{resolve_hold: 0s}}    # send "resolved" at once (the default waits 2 min for a bounce)
""")
    cfg = config(mosquitto.port, tmp_path, client_id="it-routes", routing=load_routing(routes, {"HOOK_SECRET": SECRET}),
                 metrics_addr=("127.0.0.1", 0))
    runner = start_thread_runner(cfg)
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        publish_walk(pub)
        wait_for(lambda: len(gas_hook.got) >= 5 and len(cc_hook.got) >= 3, 20, "8 webhook deliveries")
        wait_for(lambda: _outbox_metric(runner.runner.metrics_port, "sent") == 8, 10, "8 sent in the metrics")
        assert _outbox_metric(runner.runner.metrics_port, "pending") == 0
    finally:
        pub.close()
        runner.stop()
        gas_hook.stop()
        cc_hook.stop()
    seen = {name: [(b["alert"]["event"], b["alert"]["level"]) for _, _, b in hook.got]  # type: ignore[index]
            for name, hook in (("gas", gas_hook), ("cc", cc_hook))}
    assert seen["gas"] == WALK_EVENTS
    assert seen["cc"] == [("escalated", "red"), ("deescalated", "orange"), ("resolved", "orange")]
    assert all(ok for hook in (gas_hook, cc_hook) for _, ok, _ in hook.got)
    assert len({k for hook in (gas_hook, cc_hook) for k, _, _ in hook.got}) == 8
    with AlertStore(tmp_path / "lifeline.db") as store:  # 8 rows in all: one extra would be pending or sent
        assert store.outbox_counts() == {"sent": 8}


def _outbox_metric(port: int | None, state: str) -> float:
    assert port is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return next(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                if s.name == "lifeline_outbox_notifications" and s.labels == {"state": state})


def test_a_receiver_that_never_answers_does_not_delay_the_others(receiver: Receiver, tmp_path: Path) -> None:
    """Each receiver has its own lane: while one waits out its timeouts on a socket that accepts and never
    answers, the other receiver gets everything at once."""
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # accepts connections (the kernel does), never reads, never answers
    receiver.start()
    db = tmp_path / "lifeline.db"
    _commit(db, _events(10), ["stuck", "fine"], time.time())  # this dispatcher runs on the system clock
    hooks = {"stuck": WebhookNotifier(WebhookSettings(f"http://127.0.0.1:{silent.getsockname()[1]}/", SECRET,
                                                      timeout_s=5)),
             "fine": WebhookNotifier(WebhookSettings(receiver.url, SECRET, timeout_s=3))}
    d = Dispatcher(db, hooks, retry_initial_s=60, retry_max_s=60, poll_s=0.05)
    t0 = time.monotonic()
    d.start()
    try:
        while len(receiver.got) < 10 and time.monotonic() - t0 < 20:
            time.sleep(0.02)
        took = time.monotonic() - t0
    finally:
        d.stop()
        silent.close()
    assert len(receiver.got) == 10 and took < 4.0  # not behind the stuck lane's 5-s timeout
    with AlertStore(db) as store:
        rows = store.outbox_rows()
    assert {r.state for r in rows if r.receiver == "fine"} == {"sent"}
    stuck = [r for r in rows if r.receiver == "stuck"]
    assert {r.state for r in stuck} == {"pending"} and sum(r.attempts for r in stuck) == 1  # tried once, resting
    assert "timed out" in next(r.last_error for r in stuck if r.attempts)
