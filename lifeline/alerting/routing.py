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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lifeline.alerting.matchers import LEVELS, MATCH_KEYS, Match, attr, match_from
from lifeline.alerting.silences import DAYS, Weekly, Window
from lifeline.config.yamlmarks import Checker, Document, PathKey, Problem, did_you_mean, format_path, load_yaml
from lifeline.errors import ConfigError
from lifeline.model import AlertEvent, Level
from lifeline.notifiers.base import Notifier
from lifeline.notifiers.email import EmailNotifier, EmailSettings
from lifeline.notifiers.log import LogNotifier, LogSettings
from lifeline.notifiers.mqtt import MqttNotifier, MqttNotifySettings
from lifeline.notifiers.robots import ROBOTS, RobotSettings, robot_notifier
from lifeline.notifiers.webhook import WebhookNotifier, WebhookSettings

EQUAL_KEYS = ("sensor", "subject", "district", "domain", "rule", "owner")
Channel = WebhookSettings | EmailSettings | RobotSettings | MqttNotifySettings | LogSettings
CHANNELS = ("webhook", "email", "dingtalk", "wecom", "feishu", "mqtt", "log")


@dataclass(frozen=True)
class Grouping:
    """Alertmanager's grouping, inherited down the tree: transitions for one receiver whose ``by`` attributes
    agree go out as one message, the first ``wait_s`` after the first of them, later ones at most every
    ``interval_s``; ``repeat_s`` re-sends a still-open alert (0: never). Empty ``by``: one message each."""

    by: tuple[str, ...] = ()
    wait_s: float = 30.0
    interval_s: float = 300.0
    repeat_s: float = 0.0

    def key(self, route: str, e: AlertEvent) -> str:
        """The group of ``e`` under the route named ``route`` ("" when this route does not group)."""
        if not self.by:
            return ""
        return route + "|" + ",".join(f"{k}={attr(e, k)}" for k in self.by)


@dataclass(frozen=True)
class Route:
    receiver: str
    match: Match = field(default_factory=Match)
    cont: bool = False
    routes: tuple[Route, ...] = ()
    escalate_to: tuple[str, ...] = ()  # who hears an alert nobody acknowledged in time, step by step (inherited)
    grouping: Grouping = field(default_factory=Grouping)  # inherited
    name: str = "route"  # its place in the file (route.routes[2]): names its groups

    def takers(self, e: AlertEvent, labels: Mapping[str, str]) -> list[Route]:
        """The nodes under this one (which matches ``e``) whose receivers take it, in tree order."""
        out: list[Route] = []
        for child in self.routes:
            if child.match(e, labels):
                out.extend(child.takers(e, labels))
                if not child.cont:
                    break
        return out or [self]

    def nodes(self) -> Iterator[Route]:
        """This node and every node below it, depth first."""
        yield self
        for child in self.routes:
            yield from child.nodes()

    def receivers(self, e: AlertEvent, labels: Mapping[str, str]) -> list[str]:
        """The receivers of ``e`` under this node (which matches it), in tree order, each once."""
        return list(dict.fromkeys(n.receiver for n in self.takers(e, labels)))


@dataclass(frozen=True)
class Inhibit:
    """While at least ``min_sources`` open alerts match ``source`` and agree with the target on every ``equal``
    attribute, a transition matching ``target`` is not sent (recorded ``inhibited``). An alert never
    inhibits itself."""

    source: Match
    target: Match
    equal: tuple[str, ...] = ()
    min_sources: int = 1
    name: str = ""


@dataclass(frozen=True)
class Noise:
    """How quiet delivery is (docs/delivery.md, "Noise control")."""

    resolve_hold_s: float = 120.0  # a "resolved" waits this long: a re-fire within it is a bounce, not news
    flap_window_s: float = 1800.0  # flapping: at least flap_changes fire/resolve changes within this window ...
    flap_changes: int = 6
    flap_quiet_s: float = 900.0  # ... and it ends after this long without a change


DEFAULT_ACK_DEADLINE: Mapping[Level, float] = {Level.RED: 300.0, Level.ORANGE: 900.0, Level.YELLOW: 3600.0,
                                               Level.BLUE: 14_400.0}


@dataclass(frozen=True)
class Routing:
    route: Route
    receivers: Mapping[str, Channel]  # the channels, by receiver name
    noise: Noise = field(default_factory=Noise)
    inhibit: tuple[Inhibit, ...] = ()
    maintenance: tuple[Window, ...] = ()
    ack_deadline: Mapping[Level, float] = field(default_factory=lambda: dict(DEFAULT_ACK_DEADLINE))
    approval: Mapping[str, frozenset[Level]] = field(default_factory=dict)  # receiver -> levels needing approval

    def receivers_for(self, e: AlertEvent, labels: Mapping[str, str] | None = None) -> list[str]:
        return self.route.receivers(e, labels or {})

    def groupings_for(self, e: AlertEvent, labels: Mapping[str, str] | None = None) -> dict[str, tuple[str, Grouping]]:
        """receiver -> (group key, grouping) of the first route that names it for ``e``."""
        out: dict[str, tuple[str, Grouping]] = {}
        for n in self.route.takers(e, labels or {}):
            out.setdefault(n.receiver, (n.grouping.key(n.name, e), n.grouping))
        return out

    def escalation_for(self, e: AlertEvent, labels: Mapping[str, str] | None = None) -> list[str]:
        """The escalation chain of the routes that take ``e``, in order, each receiver once."""
        return list(dict.fromkeys(r for n in self.route.takers(e, labels or {}) for r in n.escalate_to))

    def needs_approval(self, receiver: str, level: Level) -> bool:
        return level in self.approval.get(receiver, frozenset())

    def notifiers(self) -> dict[str, Notifier]:
        return {name: _notifier(s) for name, s in self.receivers.items()}


def _notifier(s: Channel) -> Notifier:
    if isinstance(s, WebhookSettings):
        return WebhookNotifier(s)
    if isinstance(s, EmailSettings):
        return EmailNotifier(s)
    if isinstance(s, MqttNotifySettings):
        return MqttNotifier(s)
    if isinstance(s, LogSettings):
        return LogNotifier(s)
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
        self.approval: dict[str, frozenset[Level]] = {}

    def read(self) -> tuple[Routing | None, list[Problem]]:
        top = self.ck.mapping(self.doc.data, (), ("receivers", "route", "noise", "inhibit", "maintenance",
                                                  "ack_deadline"), ("receivers", "route"))
        if top is None or "receivers" not in top or "route" not in top:
            return None, self.ck.problems
        receivers = self._receivers(top["receivers"], ("receivers",))
        route = self._route(top["route"], ("route",), None)
        noise = self._noise(top["noise"], ("noise",)) if "noise" in top else Noise()
        inhibit = self._inhibit(top["inhibit"], ("inhibit",)) if "inhibit" in top else ()
        maintenance = self._maintenance(top["maintenance"], ("maintenance",)) if "maintenance" in top else ()
        deadlines = dict(DEFAULT_ACK_DEADLINE)
        if "ack_deadline" in top:
            deadlines.update(self._deadlines(top["ack_deadline"], ("ack_deadline",)))
        if route is None or self.ck.problems:
            return None, self.ck.problems
        return Routing(route, receivers, noise, inhibit, maintenance, deadlines, self.approval), []

    def _noise(self, value: Any, path: PathKey) -> Noise:
        m = self.ck.mapping(value, path, ("resolve_hold", "flapping"))
        if m is None:
            return Noise()
        hold = self.ck.duration(m["resolve_hold"], (*path, "resolve_hold")) if "resolve_hold" in m else None
        d = Noise()
        window, changes, quiet = d.flap_window_s, d.flap_changes, d.flap_quiet_s
        if "flapping" in m:
            fp = (*path, "flapping")
            f = self.ck.mapping(m["flapping"], fp, ("window", "changes", "quiet"))
            if f is not None:
                window = (self.ck.duration(f["window"], (*fp, "window")) if "window" in f else None) or window
                n = self.ck.number(f["changes"], (*fp, "changes"), minimum=2) if "changes" in f else None
                changes = int(n) if n is not None else changes
                quiet = (self.ck.duration(f["quiet"], (*fp, "quiet")) if "quiet" in f else None) or quiet
        return Noise(d.resolve_hold_s if hold is None else hold, window, changes, quiet)

    def _inhibit(self, value: Any, path: PathKey) -> tuple[Inhibit, ...]:
        if not isinstance(value, list):
            self.ck.report(path, "expected a list of inhibition rules (source, target, equal)")
            return ()
        out = []
        for i, item in enumerate(value):
            p = (*path, i)
            m = self.ck.mapping(item, p, ("name", "source", "target", "equal", "min_sources"), ("source", "target"))
            if m is None or "source" not in m or "target" not in m:
                continue
            source = self._match(m["source"], (*p, "source"))
            target = self._match(m["target"], (*p, "target"))
            equal = self.ck.strings(m["equal"], (*p, "equal")) if "equal" in m else []
            for j, key in enumerate(equal or []):
                if key not in EQUAL_KEYS:
                    self.ck.report((*p, "equal", j), f"unknown attribute {key!r} (one of {', '.join(EQUAL_KEYS)})")
            n = self.ck.number(m["min_sources"], (*p, "min_sources"), minimum=1) if "min_sources" in m else 1.0
            name = self.ck.string(m["name"], (*p, "name")) if "name" in m else f"inhibit[{i}]"
            if source is not None and target is not None and equal is not None and n is not None and name:
                out.append(Inhibit(source, target, tuple(equal), int(n), name))
        return tuple(out)

    def _maintenance(self, value: Any, path: PathKey) -> tuple[Window, ...]:
        if not isinstance(value, list):
            self.ck.report(path, "expected a list of maintenance windows")
            return ()
        out = []
        keys = ("name", "match", "polygon", "days", "start", "duration", "timezone", "by", "reason")
        for i, item in enumerate(value):
            p = (*path, i)
            m = self.ck.mapping(item, p, keys, ("name", "days", "start", "duration", "by", "reason"))
            if m is None or not {"name", "days", "start", "duration", "by", "reason"} <= set(m):
                continue
            name = self.ck.string(m["name"], (*p, "name"))
            by = self.ck.string(m["by"], (*p, "by"))
            reason = self.ck.string(m["reason"], (*p, "reason"))
            match = self._match(m["match"], (*p, "match")) if "match" in m else Match()
            polygon = self._polygon(m["polygon"], (*p, "polygon")) if "polygon" in m else None
            days = self.ck.strings(m["days"], (*p, "days"))
            day_set: set[int] = set()
            for j, d in enumerate(days or []):
                if d.lower() not in DAYS:
                    self.ck.report((*p, "days", j), f"unknown day {d!r} (mon, tue, wed, thu, fri, sat, sun)")
                else:
                    day_set.add(DAYS.index(d.lower()))
            start = self._clock_time(m["start"], (*p, "start"))
            duration = self.ck.duration(m["duration"], (*p, "duration"))
            tz = self.ck.string(m["timezone"], (*p, "timezone")) if "timezone" in m else "Asia/Shanghai"
            if tz is not None:
                try:
                    ZoneInfo(tz)
                except (ZoneInfoNotFoundError, ValueError):
                    self.ck.report((*p, "timezone"), f"unknown time zone {tz!r} (an IANA name like Asia/Shanghai)")
                    tz = None
            if None in (name, by, reason, match, days, start, duration, tz) or (duration is not None and
                                                                                not duration > 0):
                if duration is not None and not duration > 0:
                    self.ck.report((*p, "duration"), "must be positive")
                continue
            assert name and by and reason and match is not None and start is not None and duration and tz
            out.append(Window(name, match, by, reason, polygon=polygon,
                              weekly=Weekly(frozenset(day_set), start, duration, tz), kind="maintenance"))
        return tuple(out)

    def _clock_time(self, value: Any, path: PathKey) -> float | None:
        text = self.ck.string(value, path)
        if text is None:
            return None
        hh, _, mm = text.partition(":")
        if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60 and len(mm) == 2):
            self.ck.report(path, f"expected a local time of day like '02:00' (got {text!r})")
            return None
        return int(hh) * 3600.0 + int(mm) * 60.0

    def _polygon(self, value: Any, path: PathKey) -> tuple[tuple[float, float], ...] | None:
        """A ring of [lon, lat] points (at least 3), as in GeoJSON."""
        if not isinstance(value, list) or len(value) < 3:
            self.ck.report(path, "expected a polygon: a list of at least 3 [lon, lat] points")
            return None
        ring = []
        for j, pt in enumerate(value):
            if (not isinstance(pt, list) or len(pt) != 2 or not all(isinstance(c, int | float) and
                                                                    not isinstance(c, bool) for c in pt)
                    or not (-180 <= pt[0] <= 180 and -90 <= pt[1] <= 90)):
                self.ck.report((*path, j), f"expected a [lon, lat] point in degrees (got {pt!r})")
                return None
            ring.append((float(pt[0]), float(pt[1])))
        return tuple(ring)

    def _deadlines(self, value: Any, path: PathKey) -> dict[Level, float]:
        m = self.ck.mapping(value, path, tuple(LEVELS))
        out: dict[Level, float] = {}
        for k, v in (m or {}).items():
            d = self.ck.duration(v, (*path, k))
            if k in LEVELS and d is not None:
                if d > 0:
                    out[LEVELS[k]] = d
                else:
                    self.ck.report((*path, k), "must be positive")
        return out

    def _levels(self, value: Any, path: PathKey) -> frozenset[Level] | None:
        names = self.ck.strings(value, path)
        if names is None:
            return None
        bad = [n for n in names if n not in LEVELS]
        if bad:
            self.ck.report(path, f"unknown level {bad[0]!r} (blue, yellow, orange, red)")
            return None
        return frozenset(LEVELS[n] for n in names)

    def _receivers(self, value: Any, path: PathKey) -> dict[str, Channel]:
        out: dict[str, Channel] = {}
        if not isinstance(value, list) or not value:
            self.ck.report(path, "expected a list of receivers, each with a name and a channel")
            return out
        for i, item in enumerate(value):
            p = (*path, i)
            m = self.ck.mapping(item, p, ("name", "approval", *CHANNELS), ("name",))
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
            if "approval" in m:
                levels = self._levels(m["approval"], (*p, "approval"))
                if levels:
                    self.approval[name] = levels
            channel: Channel | None = None
            if "webhook" in m:
                channel = self._webhook(m["webhook"], (*p, "webhook"))
            elif "email" in m:
                channel = self._email(m["email"], (*p, "email"))
            elif "mqtt" in m:
                channel = self._mqtt(m["mqtt"], (*p, "mqtt"))
            elif "log" in m:
                channel = self._log(m["log"], (*p, "log"))
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

    def _log(self, value: Any, path: PathKey) -> Channel | None:
        m = self.ck.mapping(value if value is not None else {}, path, ("path", "lang", "console_url"))
        if m is None:
            return None
        file = self.ck.string(m["path"], (*path, "path")) if "path" in m else ""
        common = self._common(m, path)
        if file is None or common is None:
            return None
        lang, console, _ = common
        return self._checked(LogSettings(file, lang, console), path)

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

    def _route(self, value: Any, path: PathKey, parent: Route | None) -> Route | None:
        """A route node; ``parent`` gives what it inherits (receiver, escalate_to, grouping)."""
        keys = ("receiver", "match", "continue", "routes", "escalate_to", "group_by", "group_wait", "group_interval",
                "repeat_interval")
        m = self.ck.mapping(value, path, keys, ("receiver",) if parent is None else ())
        if m is None:
            return None
        receiver = parent.receiver if parent is not None else None
        if "receiver" in m:
            receiver = self.ck.string(m["receiver"], (*path, "receiver"))
            if receiver is not None and receiver not in self.names:
                hint = did_you_mean(receiver, self.names)
                self.ck.report((*path, "receiver"), f"unknown receiver {receiver!r}{hint}")
        if receiver is None:
            return None
        chain = parent.escalate_to if parent is not None else ()
        if "escalate_to" in m:
            names = self._names(m["escalate_to"], (*path, "escalate_to"))
            for j, n in enumerate(names):
                if n not in self.names:
                    self.ck.report((*path, "escalate_to", j), f"unknown receiver {n!r}{did_you_mean(n, self.names)}")
            chain = tuple(names)
        grouping = self._grouping(m, path, parent.grouping if parent is not None else Grouping())
        match = self._match(m["match"], (*path, "match")) if "match" in m else Match()
        if parent is None and "match" in m:
            self.ck.report((*path, "match"), "the root route takes every alert: it has no match")
        cont = m.get("continue", False)
        if not isinstance(cont, bool):
            self.ck.report((*path, "continue"), f"expected true or false (got {cont!r})")
            cont = False
        node = Route(receiver, match or Match(), cont, (), chain, grouping, format_path(path))
        children: list[Route] = []
        if "routes" in m:
            if not isinstance(m["routes"], list):
                self.ck.report((*path, "routes"), "expected a list of routes")
            else:
                for i, child in enumerate(m["routes"]):
                    r = self._route(child, (*path, "routes", i), node)
                    if r is not None:
                        children.append(r)
        return replace(node, routes=tuple(children))

    def _names(self, value: Any, path: PathKey) -> list[str]:
        """A list of names; ``[]`` is allowed (it turns off what a parent route set)."""
        return [] if value == [] else self.ck.strings(value, path) or []

    def _grouping(self, m: Mapping[str, Any], path: PathKey, inherited: Grouping) -> Grouping:
        by = inherited.by
        if "group_by" in m:
            names = self._names(m["group_by"], (*path, "group_by"))
            for j, k in enumerate(names):
                if k not in EQUAL_KEYS:
                    self.ck.report((*path, "group_by", j), f"unknown attribute {k!r} (one of {', '.join(EQUAL_KEYS)})")
            by = tuple(names)
        times = {}
        for key, attr_name in (("group_wait", "wait_s"), ("group_interval", "interval_s"),
                               ("repeat_interval", "repeat_s")):
            if key in m:
                d = self.ck.duration(m[key], (*path, key))
                if d is not None and (d > 0 or (key == "group_wait" and d == 0)):
                    times[attr_name] = d
                elif d is not None:
                    self.ck.report((*path, key), "must be positive")
        return replace(inherited, by=by, **times)

    def _match(self, value: Any, path: PathKey) -> Match | None:
        m = self.ck.mapping(value, path, MATCH_KEYS)
        if m is None:
            return None
        if isinstance(m.get("labels"), dict):
            self.ck.mapping(m["labels"], (*path, "labels"), tuple(m["labels"]))
        return match_from(m, lambda key, msg: self.ck.report((*path, *key), msg))


def labels_of(registry: Any) -> Callable[[str], Mapping[str, str]]:
    """sensor id -> its registry labels (empty for an unknown sensor)."""

    def get(sid: str) -> Mapping[str, str]:
        s = registry.get(sid)
        return s.labels if s is not None else {}

    return get


def positions_of(registry: Any) -> Callable[[str], tuple[float, float] | None]:
    """sensor id -> its registered (lon, lat) (None for an unknown sensor): for polygon silences."""

    def get(sid: str) -> tuple[float, float] | None:
        s = registry.get(sid)
        return (s.lon, s.lat) if s is not None else None

    return get
