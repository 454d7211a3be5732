"""IM group robots: DingTalk (钉钉), WeCom (企业微信) and Feishu (飞书) custom robots, in their documented
message formats and signing schemes. One message per notification, rendered from the same templates as
e-mail (Chinese by default), with the level's colour where the platform has one.

* **DingTalk**: POST ``{"msgtype": "markdown", "markdown": {"title", "text"}}`` to the robot's URL (with its
  ``access_token``). With a signing secret ("加签"), ``timestamp`` (ms) and ``sign`` =
  urlencode(base64(HMAC-SHA256(key=secret, msg="<timestamp>\\n<secret>"))) are added to the query.
  Answer ``{"errcode": 0}``; 130101 (sending too fast) is retried, other codes are permanent.
* **WeCom**: POST ``{"msgtype": "markdown", "markdown": {"content"}}`` to the robot's URL (with its
  ``key``); no signing. Answer ``{"errcode": 0}``; 45009 (rate limit) is retried.
* **Feishu**: POST ``{"msg_type": "interactive", "card": {...}}`` with a header in the level's colour
  (red, orange, yellow, blue templates); with a signing secret, ``timestamp`` (s) and ``sign`` =
  base64(HMAC-SHA256(key="<timestamp>\\n<secret>", msg="")) in the body. Answer ``{"code": 0}``;
  11232 (frequency limit) is retried.

The robot URL holds a credential (the token or key): it comes from an environment variable
(``url_env``) and never appears in logs or errors. The idempotency key is in the message's last line, so
a repeat after a crash can be told apart by people and tools. A message is signed when it is sent (the
platforms accept a timestamp within the hour), so a retry a day later is still accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import orjson

from lifeline.notifiers.base import DeliveryError, Notification, Notifier, channel_problems, require_valid
from lifeline.notifiers.templates import render
from lifeline.notifiers.webhook import post

# what each platform answers when it only asks us to slow down (retry); any other error code is permanent
RETRY_CODES = {"dingtalk": {130101}, "wecom": {45009}, "feishu": {11232}}
WECOM_COLOURS = {"red": "warning", "orange": "warning", "yellow": "comment", "blue": "info"}


@dataclass(frozen=True)
class RobotSettings:
    platform: str  # dingtalk, wecom or feishu
    url: str = field(repr=False)  # holds the robot's token or key
    secret: str = field(default="", repr=False)  # DingTalk and Feishu signing secret ("加签" / "签名校验")
    lang: str = "zh"
    console_url: str = ""
    timeout_s: float = 10.0

    def problems(self) -> list[str]:
        out = []
        if self.platform not in RETRY_CODES:
            out.append(f"platform: must be one of {', '.join(RETRY_CODES)} (got {self.platform!r})")
        if not self.url.startswith(("http://", "https://")):
            out.append("url: expected http(s)://... (from its environment variable)")
        out.extend(channel_problems(self.lang, self.timeout_s))
        return out


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(mac))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    mac = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


class _Robot(Notifier):
    def __init__(self, settings: RobotSettings) -> None:
        require_valid(settings, self.kind)
        self.settings = settings

    def send(self, n: Notification) -> None:
        url, body = self.request(n)
        answer = post(url, orjson.dumps(body), {"Content-Type": "application/json", "User-Agent": "lifeline"},
                      self.settings.timeout_s, shown=f"{self.kind} robot")
        try:
            got = orjson.loads(answer) if answer else {}
        except orjson.JSONDecodeError as exc:
            raise DeliveryError(f"{self.kind} robot answered, not in JSON: {answer[:200]!r}") from exc
        code = int(got.get("errcode", got.get("code", got.get("StatusCode", 0))) or 0)
        if code != 0:
            msg = got.get("errmsg") or got.get("msg") or got.get("StatusMessage") or ""
            raise DeliveryError(f"{self.kind} robot error {code}: {msg}",
                                permanent=code not in RETRY_CODES[self.kind])

    def request(self, n: Notification) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def _lines(self, n: Notification) -> tuple[str, list[str]]:
        r = render(n.payload, self.settings.lang, self.settings.console_url)
        return r.title, [*r.text.rstrip("\n").split("\n"), f"key: {n.key}"]


class DingTalkNotifier(_Robot):
    kind = "dingtalk"

    def request(self, n: Notification) -> tuple[str, dict[str, Any]]:
        title, lines = self._lines(n)
        text = f"### {title}\n\n" + "\n\n".join(line for line in lines if line)
        url = self.settings.url
        if self.settings.secret:
            ts = int(time.time() * 1000)  # signed when sent: the platform wants a time within the hour
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={dingtalk_sign(self.settings.secret, ts)}"
        return url, {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


class WeComNotifier(_Robot):
    kind = "wecom"

    def request(self, n: Notification) -> tuple[str, dict[str, Any]]:
        title, lines = self._lines(n)
        colour = WECOM_COLOURS.get(str(n.payload.get("level")), "comment")
        content = f'<font color="{colour}">**{title}**</font>\n' + "\n".join(f"> {line}" for line in lines if line)
        return self.settings.url, {"msgtype": "markdown", "markdown": {"content": content}}


class FeishuNotifier(_Robot):
    kind = "feishu"

    def request(self, n: Notification) -> tuple[str, dict[str, Any]]:
        title, lines = self._lines(n)
        level = str(n.payload.get("level"))
        body: dict[str, Any] = {"msg_type": "interactive", "card": {
            "header": {"title": {"tag": "plain_text", "content": title},
                       "template": level if level in ("red", "orange", "yellow", "blue") else "grey"},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "\n".join(lines)}}]}}
        if self.settings.secret:
            ts = int(time.time())
            body = {"timestamp": str(ts), "sign": feishu_sign(self.settings.secret, ts), **body}
        return self.settings.url, body


ROBOTS: dict[str, type[_Robot]] = {"dingtalk": DingTalkNotifier, "wecom": WeComNotifier, "feishu": FeishuNotifier}


def robot_notifier(settings: RobotSettings) -> Notifier:
    return ROBOTS[settings.platform](settings)
