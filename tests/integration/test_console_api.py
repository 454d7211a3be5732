"""The console's JSON API over a real HTTP socket (uvicorn on loopback): every endpoint, every role, the
unauthorised and malformed requests (a clear 4xx with the reason, never a 500), CSRF, API tokens, the audit
log, and the live feed (server-sent events)."""

from __future__ import annotations

import http.cookiejar
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from lifeline.console.accounts import Accounts
from lifeline.console.app import ENDPOINTS, Console
from lifeline.console.server import ConsoleServer
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level
from lifeline.notifiers.base import Notification
from lifeline.sinks.store import AlertStore
from tests.integration.conftest import Broker
from tests.integration.helpers import Publisher, config, gas, start_thread_runner

pytestmark = pytest.mark.integration

T0 = 1_764_403_200.0
PASSWORD = "correct horse battery"
ROLES = ("viewer", "operator", "engineer", "admin")


def _ev(i: int, level: Level, domain: str = "gas", district: str = "BH") -> AlertEvent:
    return AlertEvent(id=f"A{i}", seq=1, rule=f"{domain}.rule", kind=AlertKind.SAFETY, subject=f"S{i}",
                      sensor=f"S{i}", domain=domain, district=district, level=level, state=AlertState.FIRING,
                      event=EventKind.FIRED, started=T0 + i, ts=T0 + i, value=float(i), message=f"m{i}",
                      owner=f"{domain}_dept")


class Client:
    """A browser-like client: keeps cookies, sends JSON, records every status it got."""

    statuses: list[int] = []  # noqa: RUF012 - shared on purpose: the never-a-500 check covers every client

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""
        self.token = ""

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, csrf: bool = True,
             content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if csrf and self.csrf:
            req.add_header("X-CSRF-Token", self.csrf)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with self.opener.open(req, timeout=10) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        Client.statuses.append(status)
        doc = orjson.loads(text) if text else {}
        assert status < 400 or (isinstance(doc.get("error"), str) and doc["error"]), (status, doc)
        return status, doc

    def login(self, user: str, password: str = PASSWORD) -> int:
        status, doc = self.call("POST", "/api/login", {"user": user, "password": password})
        self.csrf = doc.get("csrf", "")
        return status


@pytest.fixture()
def console(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    db = tmp_path / "lifeline.db"
    with AlertStore(db) as store:
        events = [_ev(1, Level.RED), _ev(2, Level.YELLOW, "water", "LY"), _ev(3, Level.ORANGE), _ev(4, Level.BLUE)]
        held = Notification("k-public", "public_warning", "A1", 1, T0, events[0].to_dict(), "awaiting_approval",
                            "needs approval")
        store.commit_batch(events, notifications=[held])
    accounts = Accounts(db)
    for role in ROLES:
        accounts.add_user(role, role, PASSWORD, T0)
    accounts.close()
    server = ConsoleServer(Console(db), "127.0.0.1", 0)
    port = server.start()
    Client.statuses = []
    try:
        yield f"http://127.0.0.1:{port}", db
    finally:
        server.stop()
    assert 500 not in Client.statuses  # no request of the test was answered with a server error


def test_public_endpoints_and_the_openapi_document_lists_every_endpoint(console: tuple[str, Path]) -> None:
    c = Client(console[0])
    assert c.call("GET", "/api/health") == (200, {"ok": True, "open_alerts": 4})
    status, doc = c.call("GET", "/api/openapi.json")
    assert status == 200 and doc["openapi"] == "3.1.0"
    assert {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops} == {(e.path, e.method) for e in ENDPOINTS}
    assert doc["paths"]["/api/alerts/{id}/ack"]["post"]["description"] == "Needs the role operator or above."


def test_unauthenticated_and_bad_logins_are_refused_with_reasons(console: tuple[str, Path]) -> None:
    c = Client(console[0])
    status, doc = c.call("GET", "/api/alerts")
    assert status == 401 and "not logged in" in doc["error"]
    assert c.call("POST", "/api/alerts/A1/ack", {})[0] == 401
    assert c.login("operator", "wrong password") == 401
    assert c.call("POST", "/api/login", {"user": "operator"})[1] == {"error": "'password' is required"}
    for _ in range(4):
        c.login("operator", "wrong password")
    status, doc = c.call("POST", "/api/login", {"user": "operator", "password": PASSWORD})
    assert status == 429 and "too many failed logins" in doc["error"]  # locked, even with the right password
    bad = Client(console[0])
    bad.token = "llt_not-a-token"
    assert bad.call("GET", "/api/alerts") == (401, {"error": "unknown or revoked API token"})


def test_a_viewer_reads_but_cannot_act_and_the_server_refuses_it(console: tuple[str, Path]) -> None:
    c = Client(console[0])
    assert c.login("viewer") == 200
    status, doc = c.call("GET", "/api/alerts")
    assert status == 200 and [a["id"] for a in doc["alerts"]] == ["A1", "A3", "A2", "A4"]  # worst level first
    assert doc["counts"] == {"blue": 1, "yellow": 1, "orange": 1, "red": 1}
    assert c.call("GET", "/api/alerts?level=orange")[1]["alerts"][1]["id"] == "A3"
    assert [a["id"] for a in c.call("GET", "/api/alerts?domain=water&district=LY")[1]["alerts"]] == ["A2"]
    status, doc = c.call("POST", "/api/alerts/A1/ack", {"reason": "seen"})
    assert status == 403 and doc["error"] == ("viewer is a viewer; POST /api/alerts/{id}/ack needs operator or "
                                              "above")
    with AlertStore(console[1]) as store:
        assert store.get("A1").state == "firing"  # type: ignore[union-attr]
    for path, body in (("/api/silences", {"match": {"domain": "gas"}, "duration": "1h", "reason": "x"}),
                       ("/api/outbox/k-public/approve", {"reason": "x"}),
                       ("/api/users", {"name": "x", "role": "viewer", "password": PASSWORD})):
        assert c.call("POST", path, body)[0] == 403
    assert c.call("GET", "/api/audit")[0] == 403


def test_an_operator_acts_with_csrf_and_every_act_is_in_the_history_and_the_audit_log(
        console: tuple[str, Path]) -> None:
    c = Client(console[0])
    assert c.login("operator") == 200
    status, doc = c.call("POST", "/api/alerts/A1/ack", {"reason": "crew sent"}, csrf=False)
    assert status == 403 and "x-csrf-token" in doc["error"]
    status, doc = c.call("POST", "/api/alerts/A1/ack", {"reason": "crew sent"})
    assert status == 200 and doc["alert"]["state"] == "acknowledged" and doc["alert"]["acked_by"] == "operator"
    assert c.call("POST", "/api/alerts/A1/assign", {"department": "gas_company"})[1]["alert"]["assigned"] == \
        "gas_company"
    assert c.call("POST", "/api/alerts/A1/comment", {"text": "valve closed 14:20"})[0] == 200
    assert c.call("POST", "/api/alerts/A1/verdict", {"verdict": "confirmed"})[1]["alert"]["verdict"] == "confirmed"
    assert c.call("POST", "/api/alerts/A1/resolve", {"reason": "repaired"})[1]["alert"]["state"] == "resolved"
    status, doc = c.call("GET", "/api/alerts/A1")
    events = [(h["event"], h["actor"]) for h in doc["history"]]
    assert events == [("fired", "engine"), ("acknowledged", "operator"), ("assigned", "operator"),
                      ("comment", "operator"), ("verdict: confirmed", "operator"), ("resolved", "operator")]
    assert [d["receiver"] for d in doc["deliveries"]] == ["public_warning"]
    admin = Client(console[0])
    admin.login("admin")
    actions = [(a["actor"], a["action"], a["object"]) for a in admin.call("GET", "/api/audit")[1]["audit"]]
    assert actions[0] == ("admin", "login", "session")
    assert actions[1:6] == [("operator", f"alert.{a}", "A1") for a in ("resolve", "verdict", "comment", "assign",
                                                                        "ack")]
    assert ("operator", "login", "session") in actions


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), [
    ("POST", "/api/alerts/A1/ack", b"{not json", 400, "not valid JSON"),
    ("POST", "/api/alerts/A1/ack", b"[1, 2]", 400, "must be a JSON object"),
    ("POST", "/api/alerts/A1/ack", b'{"reason": "x", "colour": "red"}', 400, "unknown field 'colour'"),
    ("POST", "/api/alerts/A1/ack", b'{"reason": 5}', 400, "'reason' must be a string"),
    ("POST", "/api/alerts/A1/resolve", b"{}", 400, "'reason' is required"),
    ("POST", "/api/alerts/A1/verdict", b'{"verdict": "bad luck"}', 400, "verdict must be one of"),
    ("POST", "/api/alerts/NOPE/ack", b"{}", 404, "no alert with id 'NOPE'"),
    ("GET", "/api/alerts?level=purple", None, 400, "level must be one of"),
    ("GET", "/api/alerts?limit=many", None, 400, "limit must be an integer"),
    ("GET", "/api/alerts?colour=red", None, 400, "unknown parameter 'colour'"),
    ("GET", "/api/nothing-here", None, 404, "no such endpoint"),
    ("DELETE", "/api/alerts", None, 405, "DELETE is not allowed"),
    ("GET", "/api/stats/response-times?since=soon", None, 400, "since:"),
])
def test_malformed_requests_get_a_clear_4xx(console: tuple[str, Path], method: str, path: str, body: bytes | None,
                                           status: int, message: str) -> None:
    c = Client(console[0])
    c.login("operator")
    got, doc = c.call(method, path, raw=body)
    assert got == status and message in doc["error"], doc


def test_a_body_that_is_not_json_is_refused(console: tuple[str, Path]) -> None:
    c = Client(console[0])
    c.login("operator")
    status, doc = c.call("POST", "/api/alerts/A1/ack", raw=b"reason=x",
                         content_type="application/x-www-form-urlencoded")
    assert status == 415 and "JSON" in doc["error"]


def test_an_engineer_manages_silences_and_an_admin_approves_users_and_tokens(console: tuple[str, Path]) -> None:
    eng = Client(console[0])
    eng.login("engineer")
    status, doc = eng.call("POST", "/api/silences", {"match": {"domain": "gas", "level": ">=orange"},
                                                      "polygon": [[117.0, 31.0], [117.5, 31.0], [117.5, 32.0]],
                                                      "duration": "2h", "reason": "roadworks"})
    assert status == 200
    sid = doc["silence"]["id"]
    assert eng.call("POST", "/api/silences", {"match": {"colour": "red"}, "duration": "1h", "reason": "x"})[1] == {
        "error": "match.colour: unknown matcher 'colour' (one of domain, kind, level, district, rule, sensor, "
                 "owner, labels)"}
    assert eng.call("POST", "/api/silences", {"match": {"domain": "gas"}, "reason": "x"})[0] == 400
    assert [s["id"] for s in eng.call("GET", "/api/silences")[1]["silences"]] == [sid]
    assert eng.call("POST", f"/api/silences/{sid}/expire", {"reason": "done"})[0] == 200
    assert eng.call("GET", "/api/silences")[1]["silences"] == []
    assert eng.call("POST", "/api/silences/S-nope/expire", {})[0] == 404
    assert eng.call("POST", "/api/outbox/k-public/approve", {"reason": "x"})[0] == 403

    admin = Client(console[0])
    admin.login("admin")
    assert [n["key"] for n in admin.call("GET", "/api/outbox?state=awaiting_approval")[1]["notifications"]] == [
        "k-public"]
    status, doc = admin.call("POST", "/api/outbox/k-public/approve", {"reason": "confirmed on site"})
    assert status == 200 and doc["notification"]["state"] == "pending"
    assert admin.call("POST", "/api/outbox/k-public/approve", {"reason": "again"})[0] == 409
    assert admin.call("POST", "/api/users", {"name": "li.na", "role": "operator", "password": "short"})[0] == 400
    assert admin.call("POST", "/api/users", {"name": "li.na", "role": "operator", "password": PASSWORD})[0] == 200
    assert admin.call("POST", "/api/users", {"name": "li.na", "role": "operator", "password": PASSWORD})[0] == 409
    assert {u["name"] for u in admin.call("GET", "/api/users")[1]["users"]} == {*ROLES, "li.na"}
    status, doc = admin.call("POST", "/api/tokens", {"user": "li.na", "label": "dispatch system"})
    assert status == 200 and doc["token"].startswith("llt_")
    machine = Client(console[0])
    machine.token = doc["token"]  # a machine client: no cookie, no CSRF, the user's role
    assert machine.call("POST", "/api/alerts/A3/ack", {"reason": "dispatch system took it"})[0] == 200
    assert machine.call("POST", "/api/silences", {"match": {"domain": "gas"}, "duration": "1h", "reason": "x"})[0] \
        == 403
    assert admin.call("GET", "/api/stats/response-times?since=100000d")[1]["departments"][0]["department"] == \
        "gas_dept"


def test_the_live_feed_pushes_a_change_within_a_second(console: tuple[str, Path]) -> None:
    viewer, operator = Client(console[0]), Client(console[0])
    viewer.login("viewer")
    operator.login("operator")
    got: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()

    def listen() -> None:
        req = urllib.request.Request(console[0] + "/api/stream")
        with viewer.opener.open(req, timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            event = ""
            for raw in r:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    got.append((event, orjson.loads(line[6:])))
                    ready.set()
                    if event == "alerts":
                        return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert ready.wait(5) and got[0][0] == "hello"
    t0 = time.monotonic()
    operator.call("POST", "/api/alerts/A2/ack", {"reason": "water utility informed"})
    t.join(5)
    took = time.monotonic() - t0
    assert got[-1][0] == "alerts" and [a["id"] for a in got[-1][1]["alerts"]] == ["A2"]
    assert got[-1][1]["alerts"][0]["state"] == "acknowledged" and took < 1.5, took
    assert Client(console[0]).call("GET", "/api/stream")[0] == 401


def test_lifeline_run_serves_the_console_and_a_new_alert_reaches_the_feed_within_2_s(mosquitto: Broker,
                                                                                     tmp_path: Path) -> None:
    """`lifeline run --console`: readings over real MQTT raise an alert; a logged-in viewer's live feed has it
    within 2 s of the reading being published."""
    accounts = Accounts(tmp_path / "lifeline.db")
    accounts.add_user("viewer", "viewer", PASSWORD, T0)
    accounts.close()
    runner = start_thread_runner(config(mosquitto.port, tmp_path, client_id="it-console",
                                        console_addr=("127.0.0.1", 0)))
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        assert runner.runner.console is not None
        c = Client(f"http://127.0.0.1:{runner.runner.console.port}")
        assert c.login("viewer") == 200
        got: list[tuple[float, dict[str, Any]]] = []
        ready = threading.Event()

        def listen() -> None:
            with c.opener.open(urllib.request.Request(c.base + "/api/stream"), timeout=15) as r:
                for raw in r:
                    line = raw.decode()
                    if line.startswith("data: "):
                        ready.set()
                        doc = orjson.loads(line[6:])
                        if doc.get("alerts"):
                            got.append((time.monotonic(), doc))
                            return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        assert ready.wait(5)
        t0 = time.monotonic()
        pub.publish(*gas(1, time.time(), 30.0, seq=1))  # orange
        t.join(10)
        assert got, "no alert on the live feed"
        took = got[0][0] - t0
        (alert,) = got[0][1]["alerts"]
        assert alert["sensor"] == "gas-0001" and alert["level"] == "orange" and took < 2.0, took
        # the detail chart's data: the reading that raised it, and the rule's bounds on the metric's scale
        status, doc = c.call("GET", f"/api/alerts/{alert['id']}/readings?hours=1")
        assert status == 200 and doc["metric"] == "ch4_lel" and doc["series"]["ch4_lel"][-1][1] == 30.0
        assert [(x["level"], x["value"]) for x in doc["thresholds"]] == [("blue", 5.0), ("yellow", 10.0),
                                                                          ("orange", 20.0), ("red", 50.0)]
        assert c.call("GET", f"/api/alerts/{alert['id']}/readings?hours=99")[0] == 400
    finally:
        pub.close()
        runner.stop()
    # restarted, the chart still has the reading: the console fills its recent readings from the journal
    runner = start_thread_runner(config(mosquitto.port, tmp_path, client_id="it-console",
                                        console_addr=("127.0.0.1", 0)))
    try:
        assert runner.runner.console is not None
        c = Client(f"http://127.0.0.1:{runner.runner.console.port}")
        assert c.login("viewer") == 200
        status, doc = c.call("GET", f"/api/alerts/{alert['id']}/readings?hours=1")
        assert status == 200 and doc["series"]["ch4_lel"][-1][1] == 30.0, doc
    finally:
        runner.stop()


def test_the_map_and_the_page_are_served(tmp_path: Path) -> None:
    """The demo city's map (districts, sensors), the live risk colours, and the page with its assets, all from
    the console itself (no CDN) and under a strict Content-Security-Policy."""
    from lifeline import paths
    from lifeline.registry import load_registry

    reg = load_registry(paths.default_registry(), paths.default_districts())
    bridge = next(s for s in reg.sensors.values() if s.asset_type == "bridge")
    db = tmp_path / "lifeline.db"
    with AlertStore(db) as store:
        e = _ev(1, Level.ORANGE, "bridge", bridge.district)
        store.commit_batch([AlertEvent(**{**{f: getattr(e, f) for f in AlertEvent.__slots__},
                                          "sensor": bridge.id, "subject": bridge.id})])
    accounts = Accounts(db)
    accounts.add_user("viewer", "viewer", PASSWORD, T0)
    accounts.close()
    server = ConsoleServer(Console(db, registry=reg), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.start()}"
    try:
        c = Client(base)
        c.login("viewer")
        doc = c.call("GET", "/api/map")[1]
        assert len(doc["districts"]) == len(reg.districts) and len(doc["sensors"]) == len(reg)
        risk = c.call("GET", "/api/map/risk")[1]
        assert risk["districts"][bridge.district]["level"] == "red"  # an orange on a bridge (criticality 3)
        assert risk["sensors"] == {bridge.id: "orange"}
        near = c.call("GET", "/api/alerts/A1")[1]["nearby"]  # the bridge's other sensors are within 1 km
        assert near and all(n["distance_m"] <= 1000 for n in near)
        assert any(n["sensor"].startswith(bridge.id.rsplit("-", 1)[0]) for n in near)
        with urllib.request.urlopen(base + "/", timeout=10) as r:
            page = r.read().decode()
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        assert '<script src="/static/app.js"' in page and "http" not in page.split("<body>")[0].replace(
            'href="/static', "")
        for asset in ("/static/app.js", "/static/app.css"):
            with urllib.request.urlopen(base + asset, timeout=10) as r:
                assert r.status == 200 and len(r.read()) > 1000
    finally:
        server.stop()


def test_the_overview(tmp_path: Path) -> None:
    """Sensors online per domain (an open no-data alert takes one offline), alerts per level and domain in the
    last 24 h and 7 days, and the noisiest rules by the operators' verdicts."""
    from lifeline.testing import registry_of, sensors

    reg = registry_of(sensors("gas", 3), sensors("water", 2))
    now = time.time()
    db = tmp_path / "lifeline.db"

    def ev(i: int, level: Level, domain: str, started: float, kind: AlertKind = AlertKind.SAFETY,
           rule: str = "gas.rule") -> AlertEvent:
        return AlertEvent(id=f"E{i}", seq=1, rule=rule, kind=kind, subject=f"{domain}-000{i % 2}",
                          sensor=f"{domain}-000{i % 2}", domain=domain, district="Luyang", level=level,
                          state=AlertState.FIRING, event=EventKind.FIRED, started=started, ts=started, value=1.0,
                          message="m", owner=f"{domain}_dept")

    with AlertStore(db) as store:
        store.commit_batch([ev(1, Level.RED, "gas", now - 3600), ev(2, Level.YELLOW, "gas", now - 3 * 86_400),
                            ev(3, Level.ORANGE, "water", now - 600, rule="water.rule"),
                            ev(4, Level.BLUE, "gas", now - 60, AlertKind.NODATA, "gas.sensor.nodata")])
        store.set_verdict("E1", "false_alarm", "op", "", now)
        store.set_verdict("E2", "confirmed", "op", "", now)
    accounts = Accounts(db)
    accounts.add_user("viewer", "viewer", PASSWORD, T0)
    accounts.close()
    server = ConsoleServer(Console(db, registry=reg), "127.0.0.1", 0)
    try:
        c = Client(f"http://127.0.0.1:{server.start()}")
        c.login("viewer")
        status, doc = c.call("GET", "/api/overview")
    finally:
        server.stop()
    assert status == 200
    assert doc["sensors"] == {"gas": {"sensors": 3, "online": 2}, "water": {"sensors": 2, "online": 2}}
    assert doc["alerts_24h"] == {"gas": {"blue": 0, "yellow": 0, "orange": 0, "red": 1},
                                 "water": {"blue": 0, "yellow": 0, "orange": 1, "red": 0}}
    assert doc["alerts_7d"]["gas"]["yellow"] == 1
    top = doc["rules"][0]
    assert (top["rule"], top["alerts"], top["judged"], top["false_alarm"], top["precision"]) == ("gas.rule", 2, 2, 1,
                                                                                                 0.5)


def test_every_endpoint_refuses_a_caller_without_a_login_and_a_role_too_low(console: tuple[str, Path]) -> None:
    """Each endpoint that needs a role answers 401 without a session or token, and 403 to a user whose role is
    below it - checked over the whole table, so a new endpoint cannot forget it."""
    anon = Client(console[0])
    users = {role: Client(console[0]) for role in ROLES}
    for role, c in users.items():
        assert c.login(role) == 200
    body = {"reason": "x"}
    for ep in ENDPOINTS:
        path = ep.path.replace("{id}", "A4").replace("{key}", "k-public")
        if ep.role is None or ep.handler == "stream":
            continue
        status, doc = anon.call(ep.method, path, body if ep.method == "POST" else None)
        assert status == 401, (ep.path, status, doc)
        for role in ROLES[:ROLES.index(ep.role)]:
            status, doc = users[role].call(ep.method, path, body if ep.method == "POST" else None)
            assert status == 403 and f"needs {ep.role}" in doc["error"], (ep.path, role, status, doc)


def test_me_logout_and_reject(console: tuple[str, Path]) -> None:
    c = Client(console[0])
    c.login("admin")
    status, doc = c.call("GET", "/api/me")
    assert status == 200 and doc["user"] == "admin" and doc["role"] == "admin" and doc["csrf"] == c.csrf
    status, doc = c.call("POST", "/api/outbox/k-public/reject", {"reason": "sensor fault, no public warning"})
    assert status == 200 and doc["notification"]["state"] == "rejected"
    sid = next(k.value for k in c.jar if k.name == "lifeline_session")
    assert c.call("POST", "/api/logout", {})[0] == 200
    assert c.call("GET", "/api/me")[0] == 401
    replay = urllib.request.Request(console[0] + "/api/me", headers={"Cookie": f"lifeline_session={sid}"})
    with pytest.raises(urllib.error.HTTPError) as exc:  # the old session id is dead on the server too
        urllib.request.urlopen(replay, timeout=10)
    assert exc.value.code == 401


def test_every_endpoint_answers_malformed_requests_with_a_clear_4xx(console: tuple[str, Path]) -> None:
    """Over the whole endpoint table, as an admin (allowed everywhere): an unknown query parameter, and for
    every POST a body that is not JSON, one that is not an object and one with an unknown field - each a 4xx
    that names the problem (the fixture checks that no request got a 500)."""
    admin = Client(console[0])
    assert admin.login("admin") == 200
    for ep in ENDPOINTS:
        if ep.handler in ("login", "logout"):
            continue  # malformed logins are above; a logout would end this session
        path = ep.path.replace("{id}", "A4").replace("{key}", "k-public")
        status, doc = admin.call(ep.method, path + "?bogus=1", {} if ep.method == "POST" else None)
        assert status == 400 and "unknown parameter 'bogus'" in doc["error"], (ep.path, status, doc)
        if ep.method != "POST":
            continue
        for raw, message in ((b"{oops", "not valid JSON"), (b'"text"', "must be a JSON object"),
                             (b'{"zzz": 1}', "unknown field 'zzz'")):
            status, doc = admin.call("POST", path, raw=raw)
            assert status == 400 and message in doc["error"], (ep.path, raw, status, doc)
