"""DingTalk, WeCom and Feishu group robots through the routing file and the outbox, against a robot-format
receiver on loopback that checks each platform's documented message format and signature (a stand-in for
the platforms' servers, which tests never reach: real HTTP over a real socket). One message per
notification; a rate-limit answer is retried; a signature the platform rejects fails for good."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from lifeline.alerting.outbox import Dispatcher
from lifeline.alerting.routing import load_routing
from lifeline.clock import ManualClock
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level
from lifeline.notifiers.base import Notification
from lifeline.sinks.store import AlertStore

pytestmark = pytest.mark.integration
T = 1784044800.0
SECRET = "SEC0123456789abcdef"


class RobotServer:
    """Answers as the platforms do: /dingtalk (token + signed query), /wecom (key), /feishu (signed body)."""

    def __init__(self) -> None:
        self.got: dict[str, list[dict[str, Any]]] = {"dingtalk": [], "wecom": [], "feishu": []}
        self.rate_limit_next = 0  # answer this many requests with the platform's rate-limit code
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                platform = url.path.strip("/")
                answer = outer.check(platform, q, body)
                data = orjson.dumps(answer)
                self.send_response(200)  # the platforms answer 200 and put the error in the body
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def check(self, platform: str, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if self.rate_limit_next:
            self.rate_limit_next -= 1
            return {"dingtalk": {"errcode": 130101, "errmsg": "send too fast"},
                    "wecom": {"errcode": 45009, "errmsg": "api freq out of limit"},
                    "feishu": {"code": 11232, "msg": "frequency limited"}}[platform]
        if platform == "dingtalk":
            ts = q["timestamp"]
            mac = hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest()
            if q.get("access_token") != "tok" or q.get("sign") != base64.b64encode(mac).decode():
                return {"errcode": 310000, "errmsg": "sign not match"}
            assert body["msgtype"] == "markdown" and {"title", "text"} <= set(body["markdown"])
        elif platform == "wecom":
            if q.get("key") != "k3y":
                return {"errcode": 93000, "errmsg": "invalid webhook url"}
            assert body["msgtype"] == "markdown" and "content" in body["markdown"]
        else:
            ts = body["timestamp"]
            mac = hmac.new(f"{ts}\n{SECRET}".encode(), b"", hashlib.sha256).digest()
            if body.get("sign") != base64.b64encode(mac).decode():
                return {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
            assert body["msg_type"] == "interactive" and body["card"]["header"]["template"] in ("red", "orange")
        self.got[platform].append(body)
        return {"code": 0, "msg": "success"} if platform == "feishu" else {"errcode": 0, "errmsg": "ok"}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def robots() -> Iterator[RobotServer]:
    r = RobotServer()
    yield r
    r.stop()


def _routing(tmp_path: Path, base: str, secret: str = SECRET) -> Any:
    p = tmp_path / "routes.yaml"
    p.write_text("""\
receivers:
  - name: gas_group
    dingtalk: {url_env: DT_URL, secret_env: DT_SECRET, console_url: "https://console.example"}
  - name: water_group
    wecom: {url_env: WC_URL, lang: en}
  - name: duty_group
    feishu: {url_env: FS_URL, secret_env: FS_SECRET}
route:
  receiver: duty_group
  routes:
    - match: {domain: gas}
      receiver: gas_group
      continue: true
    - match: {domain: water}
      receiver: water_group
      continue: true
    - match: {level: ">=orange"}
""")
    env = {"DT_URL": f"{base}/dingtalk?access_token=tok", "DT_SECRET": secret, "WC_URL": f"{base}/wecom?key=k3y",
           "FS_URL": f"{base}/feishu", "FS_SECRET": secret}
    return load_routing(p, env)


def _event(i: int, domain: str, level: Level) -> AlertEvent:
    return AlertEvent(id=f"{domain}{i}", seq=1, rule=f"{domain}.x", kind=AlertKind.SAFETY, subject=f"S{i}",
                      sensor=f"S{i}", domain=domain, district="LY", level=level, state=AlertState.FIRING,
                      event=EventKind.FIRED, started=T, ts=T + i, value=1.5, message=f"{domain} alert {i}")


def _run(tmp_path: Path, routing: Any, events: list[AlertEvent], rounds: int = 1) -> AlertStore:
    clock = ManualClock(T + 30)
    notes = [Notification.of(e, r, clock.now()) for e in events for r in routing.receivers_for(e)]
    db = tmp_path / "lifeline.db"
    with AlertStore(db) as store:
        store.commit_batch(events, notifications=notes)
    d = Dispatcher(db, routing.notifiers(), clock=clock, retry_initial_s=5)
    for _ in range(rounds):
        d.run_once()
        clock.advance(10)
    d.stop()
    return AlertStore(db)


def test_each_robot_gets_its_platforms_format_signed_once_per_notification(robots: RobotServer,
                                                                          tmp_path: Path) -> None:
    events = [_event(0, "gas", Level.RED), _event(1, "gas", Level.YELLOW), _event(2, "water", Level.ORANGE)]
    robots.rate_limit_next = 1  # the first request is told to slow down: retried, not lost
    with _run(tmp_path, _routing(tmp_path, robots.base), events, rounds=3) as store:
        assert store.outbox_counts() == {"sent": 5}
    # gas red: gas group + duty (>= orange); gas yellow: gas group; water orange: water group + duty
    assert [b["markdown"]["title"][:8] for b in robots.got["dingtalk"]] == ["【红色（一级）】", "【黄色（三级）】"]
    assert "https://console.example/alerts/gas0" in robots.got["dingtalk"][0]["markdown"]["text"]
    (wecom,) = robots.got["wecom"]
    assert wecom["markdown"]["content"].startswith('<font color="warning">**[ORANGE (level 2)] alert: water.x')
    # the rate-limited one (duty's lane runs first) came after its retry
    assert sorted(b["card"]["header"]["template"] for b in robots.got["feishu"]) == ["orange", "red"]
    last = [b["card"]["elements"][0]["text"]["content"].splitlines()[-1] for b in robots.got["feishu"]]
    assert all(line.startswith("key: ") and len(line) == 5 + 24 for line in last)  # the idempotency key, shown


def test_a_rejected_signature_fails_for_good_with_the_platforms_reason(robots: RobotServer, tmp_path: Path) -> None:
    with _run(tmp_path, _routing(tmp_path, robots.base, secret="wrong"), [_event(0, "gas", Level.RED)]) as store:
        rows = {r.receiver: r for r in store.outbox_rows()}
    assert rows["gas_group"].state == "failed" and "310000" in rows["gas_group"].last_error
    assert rows["duty_group"].state == "failed" and "19021" in rows["duty_group"].last_error
    assert "tok" not in rows["gas_group"].last_error  # the robot's token never shows in errors
    assert robots.got == {"dingtalk": [], "wecom": [], "feishu": []}
