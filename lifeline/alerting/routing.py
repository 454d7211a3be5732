"""The routing tree: which receivers (departments) hear an alert transition. A YAML file, checked with
``file:line:col`` problems (docs/delivery.md):

    receivers:
      - name: control_centre
        webhook: {url: "http://10.0.0.5:9000/lifeline", secret_env: LIFELINE_HOOK_SECRET}
      - name: gas_company
        webhook: {url: "https://gas.example/hooks/lifeline", secret_env: GAS_HOOK_SECRET, timeout: 5s}
      - name: duty_engineer
        email: {host: smtp.example, port: 587, from: lifeline@city.example, to: [duty@gas.example],
                username_env: SMTP_USER, password_env: SMTP_PASSWORD, lang: zh,
                console_url: "https://lifeline.city.example"}
    route:
      receiver: control_centre          # the root: every alert no child takes
      routes:
        - match: {domain: gas}
          receiver: gas_company
          continue: true                # ... and keep looking: the next siblings may take it too
        - match: {domain: gas, level: ">=orange"}
          receiver: control_centre

Semantics as Prometheus Alertmanager's: a node's children are tried in order; the first that matches takes
the alert (recursively) and the search stops there unless that child says ``continue: true``; when no
child takes it, the node's own receiver does (a child without ``receiver`` inherits its parent's).
Matchers: ``domain``, ``kind`` (safety / health / nodata), ``level`` (``red``, or ``">=orange"``),
``district``, ``rule`` (exact, or a prefix ending in ``*``: ``"gas.*"``), ``sensor``, ``owner``, and
``labels: {name: value}`` (the sensor's registry labels). Every key of ``match`` must hold.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeline.config.yamlmarks import Checker, Document, PathKey, Problem, did_you_mean, load_yaml
from lifeline.errors import ConfigError
from lifeline.model import AlertEvent, Level
from lifeline.notifiers.base import Notifier
from lifeline.notifiers.email import EmailNotifier, EmailSettings
from lifeline.notifiers.mqtt import MqttNotifier, MqttNotifySettings
from lifeline.notifiers.robots import ROBOTS, RobotSettings, robot_notifier
from lifeline.notifiers.webhook import WebhookNotifier, WebhookSettings

Channel = WebhookSettings | EmailSettings | RobotSettings | MqttNotifySettings
CHANNELS = ("webhook", "email", "dingtalk", "wecom", "feishu", "mqtt")
MATCH_KEYS = ("domain", "kind", "level", "district", "rule", "sensor", "owner", "labels")
LEVELS = {lv.colour: lv for lv in Level}


@dataclass(frozen=True)
class Match:
    """All must hold. ``level_min``: at least this level; ``rule_prefix``: the rule starts with it."""

    fields: tuple[tuple[str, str], ...] = ()  # (event attribute, value) equalities
    level_min: Level | None = None
    rule_prefix: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def __call__(self, e: AlertEvent, labels: Mapping[str, str]) -> bool:
        for k, v in self.fields:
            if _attr(e, k) != v:
                return False
        if self.level_min is not None and e.level < self.level_min:
            return False
        if self.rule_prefix is not None and not e.rule.startswith(self.rule_prefix):
            return False
        return all(labels.get(k) == v for k, v in self.labels)


def _attr(e: AlertEvent, key: str) -> str:
    if key == "level":
        return e.level.colour
    if key == "kind":
        return e.kind.value
    return str(getattr(e, key))


@dataclass(frozen=True)
class Route:
    receiver: str
    match: Match = field(default_factory=Match)
    cont: bool = False
    routes: tuple[Route, ...] = ()

    def receivers(self, e: AlertEvent, labels: Mapping[str, str]) -> list[str]:
        """The receivers of ``e`` under this node (which matches it), in tree order, each once."""
        out: list[str] = []
        taken = False
        for child in self.routes:
            if child.match(e, labels):
                taken = True
                for r in child.receivers(e, labels):
                    if r not in out:
                        out.append(r)
                if not child.cont:
                    break
        return out if taken else [self.receiver]


@dataclass(frozen=True)
class Routing:
    route: Route
    receivers: Mapping[str, Channel]  # the channels, by receiver name

    def receivers_for(self, e: AlertEvent, labels: Mapping[str, str] | None = None) -> list[str]:
        return self.route.receivers(e, labels or {})

    def notifiers(self) -> dict[str, Notifier]:
        return {name: _notifier(s) for name, s in self.receivers.items()}


def _notifier(s: Channel) -> Notifier:
    if isinstance(s, WebhookSettings):
        return WebhookNotifier(s)
    if isinstance(s, EmailSettings):
        return EmailNotifier(s)
    if isinstance(s, MqttNotifySettings):
        return MqttNotifier(s)
    return robot_notifier(s)


class RoutingError(ConfigError):
    """The routing file has problems: each on its own line, as file:line:col: path: message."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_routing(path: str | Path, env: Mapping[str, str] | None = None) -> Routing:
    """The routing tree and receivers of ``path``; every problem at once (``RoutingError``, file:line:col)."""
    doc, problems = load_yaml(path)
    if problems:
        raise RoutingError(problems)
    routing, problems = _Reader(doc, os.environ if env is None else env).read()
    if problems or routing is None:
        raise RoutingError(problems)
    return routing


class _Reader:
    def __init__(self, doc: Document, env: Mapping[str, str]) -> None:
        self.doc, self.env, self.ck = doc, env, Checker(doc)
        self.names: set[str] = set()

    def read(self) -> tuple[Routing | None, list[Problem]]:
        top = self.ck.mapping(self.doc.data, (), ("receivers", "route"), ("receivers", "route"))
        if top is None or "receivers" not in top or "route" not in top:
            return None, self.ck.problems
        receivers = self._receivers(top["receivers"], ("receivers",))
        route = self._route(top["route"], ("route",), None)
        if route is None or self.ck.problems:
            return None, self.ck.problems
        return Routing(route, receivers), []

    def _receivers(self, value: Any, path: PathKey) -> dict[str, Channel]:
        out: dict[str, Channel] = {}
        if not isinstance(value, list) or not value:
            self.ck.report(path, "expected a list of receivers, each with a name and a channel")
            return out
        for i, item in enumerate(value):
            p = (*path, i)
            m = self.ck.mapping(item, p, ("name", *CHANNELS), ("name",))
            if m is None or "name" not in m:
                continue
            channels = [k for k in CHANNELS if k in m]
            if len(channels) != 1:
                self.ck.report(p, f"a receiver has exactly one channel ({', '.join(CHANNELS)}); got {len(channels)}")
            name = self.ck.string(m["name"], (*p, "name"))
            if name is None:
                continue
            if name in out or name in self.names:
                self.ck.report((*p, "name"), f"receiver {name!r} is defined twice")
            self.names.add(name)
            channel: Channel | None = None
            if "webhook" in m:
                channel = self._webhook(m["webhook"], (*p, "webhook"))
            elif "email" in m:
                channel = self._email(m["email"], (*p, "email"))
            elif "mqtt" in m:
                channel = self._mqtt(m["mqtt"], (*p, "mqtt"))
            else:
                kind = next((k for k in ROBOTS if k in m), None)
                if kind is not None:
                    channel = self._robot(kind, m[kind], (*p, kind))
            if channel is not None:
                out[name] = channel
        return out

    def _secret(self, m: Mapping[str, Any], key: str, path: PathKey, what: str) -> str:
        var = self.ck.string(m[key], (*path, key)) if key in m else None
        if var is None:
            return ""
        value = self.env.get(var, "")
        if not value:
            self.ck.report((*path, key), f"environment variable {var!r} is not set ({what})")
        return value

    def _common(self, m: Mapping[str, Any], path: PathKey) -> tuple[str, str, float] | None:
        """The keys every channel that renders text shares: ``lang`` (zh), ``console_url`` (none), ``timeout``
        (10 s); None when one of them is wrong (reported)."""
        lang = self.ck.string(m["lang"], (*path, "lang")) if "lang" in m else "zh"
        console = self.ck.string(m["console_url"], (*path, "console_url")) if "console_url" in m else ""
        timeout = self.ck.duration(m["timeout"], (*path, "timeout")) if "timeout" in m else 10.0
        if lang is None or console is None or timeout is None:
            return None
        return lang, console, timeout

    def _checked(self, s: Channel, path: PathKey, rename: Mapping[str, str] | None = None) -> Channel:
        """Report the settings' own problems at their keys in the file (``timeout_s`` is ``timeout`` there)."""
        keys = {"timeout_s": "timeout", **(rename or {})}
        for problem in s.problems():
            name, _, message = problem.partition(": ")
            self.ck.report((*path, keys.get(name, name)), message)
        return s

    def _mqtt(self, value: Any, path: PathKey) -> Channel | None:
        keys = ("host", "port", "topic", "client_id", "username_env", "password_env", "lang", "console_url", "timeout")
        m = self.ck.mapping(value, path, keys, ("host",))
        if m is None or "host" not in m:
            return None
        host = self.ck.string(m["host"], (*path, "host"))
        topic = self.ck.string(m["topic"], (*path, "topic")) if "topic" in m else MqttNotifySettings.topic
        client_id = self.ck.string(m["client_id"], (*path, "client_id")) if "client_id" in m else ""
        port = self.ck.number(m["port"], (*path, "port"), minimum=1) if "port" in m else 1883.0
        common = self._common(m, path)
        username = self._secret(m, "username_env", path, "the MQTT user")
        password = self._secret(m, "password_env", path, "the MQTT password")
        if host is None or topic is None or client_id is None or port is None or common is None:
            return None
        lang, console, timeout = common
        return self._checked(MqttNotifySettings(host, int(port), topic, client_id, username, password, lang, console,
                                                timeout), path)

    def _robot(self, kind: str, value: Any, path: PathKey) -> Channel | None:
        m = self.ck.mapping(value, path, ("url_env", "secret_env", "lang", "console_url", "timeout"), ("url_env",))
        if m is None or "url_env" not in m:
            return None
        url = self._secret(m, "url_env", path, "the robot's URL, with its token")
        secret = self._secret(m, "secret_env", path, "the signing secret")
        common = self._common(m, path)
        if not url or common is None:
            return None
        return self._checked(RobotSettings(kind, url, secret, *common), path, {"url": "url_env"})

    def _email(self, value: Any, path: PathKey) -> Channel | None:
        keys = ("host", "port", "from", "to", "starttls", "username_env", "password_env", "lang", "console_url",
                "timeout", "cafile")
        m = self.ck.mapping(value, path, keys, ("host", "from", "to"))
        if m is None or not {"host", "from", "to"} <= set(m):
            return None
        host = self.ck.string(m["host"], (*path, "host"))
        sender = self.ck.string(m["from"], (*path, "from"))
        to = self.ck.strings(m["to"], (*path, "to"))
        port = self.ck.number(m["port"], (*path, "port"), minimum=1) if "port" in m else 587.0
        starttls = m.get("starttls", True)
        if not isinstance(starttls, bool):
            self.ck.report((*path, "starttls"), f"expected true or false (got {starttls!r})")
            starttls = True
        common = self._common(m, path)
        cafile = self.ck.string(m["cafile"], (*path, "cafile")) if "cafile" in m else None
        username = self._secret(m, "username_env", path, "the SMTP user")
        password = self._secret(m, "password_env", path, "the SMTP password")
        if host is None or sender is None or to is None or port is None or common is None:
            return None
        lang, console, timeout = common
        return self._checked(EmailSettings(host, int(port), sender, tuple(to), starttls, username, password, lang,
                                           console, timeout, cafile), path)

    def _webhook(self, value: Any, path: PathKey) -> Channel | None:
        m = self.ck.mapping(value, path, ("url", "secret_env", "timeout"), ("url",))
        if m is None or "url" not in m:
            return None
        url = self.ck.string(m["url"], (*path, "url"))
        secret = self._secret(m, "secret_env", path, "the shared secret")
        timeout = self.ck.duration(m["timeout"], (*path, "timeout")) if "timeout" in m else 10.0
        if url is None or timeout is None:
            return None
        return self._checked(WebhookSettings(url, secret, timeout), path)

    def _route(self, value: Any, path: PathKey, parent: str | None) -> Route | None:
        m = self.ck.mapping(value, path, ("receiver", "match", "continue", "routes"),
                            ("receiver",) if parent is None else ())
        if m is None:
            return None
        receiver = parent
        if "receiver" in m:
            receiver = self.ck.string(m["receiver"], (*path, "receiver"))
            if receiver is not None and receiver not in self.names:
                hint = did_you_mean(receiver, self.names)
                self.ck.report((*path, "receiver"), f"unknown receiver {receiver!r}{hint}")
        if receiver is None:
            return None
        match = self._match(m["match"], (*path, "match")) if "match" in m else Match()
        if parent is None and "match" in m:
            self.ck.report((*path, "match"), "the root route takes every alert: it has no match")
        cont = m.get("continue", False)
        if not isinstance(cont, bool):
            self.ck.report((*path, "continue"), f"expected true or false (got {cont!r})")
            cont = False
        children: list[Route] = []
        if "routes" in m:
            if not isinstance(m["routes"], list):
                self.ck.report((*path, "routes"), "expected a list of routes")
            else:
                for i, child in enumerate(m["routes"]):
                    r = self._route(child, (*path, "routes", i), receiver)
                    if r is not None:
                        children.append(r)
        return Route(receiver, match or Match(), cont, tuple(children))

    def _match(self, value: Any, path: PathKey) -> Match | None:
        m = self.ck.mapping(value, path, MATCH_KEYS)
        if m is None:
            return None
        fields: list[tuple[str, str]] = []
        level_min: Level | None = None
        prefix: str | None = None
        labels: list[tuple[str, str]] = []
        for k, v in m.items():
            p = (*path, k)
            if k == "labels":
                lm = self.ck.mapping(v, p, tuple(v) if isinstance(v, dict) else ())
                for lk, lv in (lm or {}).items():
                    labels.append((lk, str(lv)))
                continue
            if k not in MATCH_KEYS:
                continue
            text = self.ck.string(v, p)
            if text is None:
                continue
            if k == "level":
                name = text[2:].strip() if text.startswith(">=") else text
                if name not in LEVELS:
                    self.ck.report(p, f"unknown level {name!r} (blue, yellow, orange, red; or '>=orange')")
                elif text.startswith(">="):
                    level_min = LEVELS[name]
                else:
                    fields.append(("level", name))
            elif k == "kind" and text not in ("safety", "health", "nodata"):
                self.ck.report(p, f"unknown kind {text!r} (safety, health or nodata)")
            elif k == "rule" and text.endswith("*"):
                prefix = text[:-1]
            else:
                fields.append((k, text))
        return Match(tuple(fields), level_min, prefix, tuple(labels))


def labels_of(registry: Any) -> Callable[[str], Mapping[str, str]]:
    """sensor id -> its registry labels (empty for an unknown sensor)."""

    def get(sid: str) -> Mapping[str, str]:
        s = registry.get(sid)
        return s.labels if s is not None else {}

    return get
