"""The operator console's JSON API (Starlette): what the web UI itself uses, and machine clients too.

Every endpoint is declared once in ``ENDPOINTS`` (method, path, the role it needs, its parameters and body)
and the OpenAPI document at ``/api/openapi.json`` is generated from that table, so the two cannot drift.

Authentication: a browser logs in (``POST /api/login``) and gets an HttpOnly, SameSite=Strict session cookie
and a CSRF token, which every state-changing request must echo in ``X-CSRF-Token``; a machine client sends
``Authorization: Bearer <API token>``. Authorisation is checked here, on the server, for every request: the
UI hiding a button is a courtesy, not a control. Every state-changing request is recorded in the audit log
with who and when (alert actions also in the alert's history). Errors are JSON ``{"error": "..."}`` with a
4xx status that says what was wrong; a 500 means a bug, and is logged with its traceback.

``GET /api/stream`` is a server-sent-event feed: ``alerts`` events carry the alerts that changed (by the
engine or a person) since the last one, so the board updates without reloading.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lifeline.alerting.matchers import match_from
from lifeline.clock import Clock, SystemClock
from lifeline.console.accounts import Accounts, AuthError, Principal, allows
from lifeline.console.recent import RecentReadings
from lifeline.console.risk import district_risk, nearby, sensor_states
from lifeline.errors import StoreError
from lifeline.registry import Registry
from lifeline.rules.model import RuleSet
from lifeline.sinks.store import VERDICTS, AlertRow, AlertStore, HistoryEntry, OutboxRow
from lifeline.timefmt import TimeFormatError, parse_duration, parse_ts, rfc3339

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "lifeline_session"
CSRF_HEADER = "x-csrf-token"
MAX_BODY = 64 * 1024
STREAM_POLL_S = 0.5
STREAM_HEARTBEAT_S = 15.0


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Param:
    name: str
    doc: str
    enum: tuple[str, ...] = ()
    kind: str = "string"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    role: str | None  # None: no login needed
    summary: str
    handler: str  # the Console method
    params: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None  # JSON schema of the request body
    required: tuple[str, ...] = ()


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


_S = {"type": "string"}
_STATES = ("open", "firing", "acknowledged", "resolved", "all")
_LEVELS = ("blue", "yellow", "orange", "red")
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/health", None, "Liveness: the console answers and its store opens", "health"),
    Endpoint("GET", "/api/openapi.json", None, "This API, as OpenAPI 3.1", "openapi"),
    Endpoint("POST", "/api/login", None, "Log in: sets the session cookie, returns the CSRF token", "login",
             body=_obj(user=_S, password=_S), required=("user", "password")),
    Endpoint("POST", "/api/logout", "viewer", "End this session", "logout"),
    Endpoint("GET", "/api/me", "viewer", "Who is logged in, with which role (and the CSRF token)", "me"),
    Endpoint("GET", "/api/alerts", "viewer", "Alerts, worst level first, with counts per level", "alerts",
             params=(Param("state", "default open", _STATES), Param("domain", "gas, water, ..."),
                     Param("district", "district code"), Param("level", "at least this level", _LEVELS),
                     Param("owner", "owning department"), Param("assigned", "assigned department"),
                     Param("limit", "at most this many (default 2000)", kind="integer"))),
    Endpoint("GET", "/api/alerts/{id}", "viewer",
             "One alert: its history, its notification deliveries, and the sensors within 1 km with their alerts",
             "alert"),
    Endpoint("GET", "/api/alerts/{id}/readings", "viewer",
             "The alert's sensor's recent readings, with the rule's threshold lines when it compares a metric",
             "readings", params=(Param("hours", "how far back (default 6, at most 48)", kind="number"),)),
    Endpoint("POST", "/api/alerts/{id}/ack", "operator", "Acknowledge: a person has seen it and owns it", "ack",
             body=_obj(reason=_S)),
    Endpoint("POST", "/api/alerts/{id}/resolve", "operator", "Resolve by hand, with a reason", "resolve",
             body=_obj(reason=_S), required=("reason",)),
    Endpoint("POST", "/api/alerts/{id}/comment", "operator", "Add a comment to the history", "comment",
             body=_obj(text=_S), required=("text",)),
    Endpoint("POST", "/api/alerts/{id}/assign", "operator", "Hand the alert to a department", "assign",
             body=_obj(department=_S, reason=_S), required=("department",)),
    Endpoint("POST", "/api/alerts/{id}/verdict", "operator", "What it was (feeds per-rule precision)", "verdict",
             body=_obj(verdict={"type": "string", "enum": list(VERDICTS)}, reason=_S), required=("verdict",)),
    Endpoint("GET", "/api/silences", "viewer", "Silences that have not ended (all=1: every one)", "silences",
             params=(Param("all", "1: include ended ones", ("0", "1")),)),
    Endpoint("POST", "/api/silences", "engineer", "Create a silence (matchers, optional polygon, time range)",
             "silence_add", body=_obj(match={"type": "object"}, polygon={"type": "array"}, starts=_S, ends=_S,
                                      duration=_S, reason=_S), required=("match", "reason")),
    Endpoint("POST", "/api/silences/{id}/expire", "engineer", "End a silence now", "silence_expire",
             body=_obj(reason=_S)),
    Endpoint("GET", "/api/outbox", "viewer", "Notifications by state (default: not delivered)", "outbox",
             params=(Param("state", "pending, awaiting_approval, failed, expired, sent, silenced, ..."),)),
    Endpoint("POST", "/api/outbox/{key}/approve", "admin", "Approve a red / orange public warning", "approve",
             body=_obj(reason=_S), required=("reason",)),
    Endpoint("POST", "/api/outbox/{key}/reject", "admin", "Reject a red / orange public warning", "reject",
             body=_obj(reason=_S), required=("reason",)),
    Endpoint("GET", "/api/stats/response-times", "viewer", "Time to acknowledge and resolve per department",
             "response_times", params=(Param("since", "a duration back from now (default 30d)"),)),
    Endpoint("GET", "/api/overview", "viewer", "Sensors online per domain, alerts per level and domain over 24 h "
             "and 7 days, response times per department, the noisiest rules by operators' verdicts", "overview"),
    Endpoint("GET", "/api/audit", "admin", "The audit log, newest first", "audit",
             params=(Param("limit", "at most this many (default 200)", kind="integer"),)),
    Endpoint("GET", "/api/users", "admin", "Users and their roles", "users"),
    Endpoint("POST", "/api/users", "admin", "Create a user", "user_add",
             body=_obj(name=_S, role={"type": "string", "enum": ["viewer", "operator", "engineer", "admin"]},
                       password=_S), required=("name", "role", "password")),
    Endpoint("POST", "/api/tokens", "admin", "Create an API token for a user (shown once)", "token_add",
             body=_obj(user=_S, label=_S), required=("user", "label")),
    Endpoint("GET", "/api/map", "viewer", "The city map: district polygons and sensor positions", "map"),
    Endpoint("GET", "/api/map/risk", "viewer", "Each district's risk colour and each sensor's marker state, now",
             "risk"),
    Endpoint("GET", "/api/stream", "viewer", "Server-sent events: alerts as they change", "stream",
             params=(Param("since", "the change counter to start after (default: now)", kind="integer"),)),
)


@dataclass
class Ctx:
    request: Request
    who: Principal | None
    body: dict[str, Any] = field(default_factory=dict)
    now: float = 0.0


class Console:
    """The API over one alert store. ``app()`` gives the ASGI application."""

    def __init__(self, db_path: str | Path, *, registry: Registry | None = None, rules: RuleSet | None = None,
                 recent: RecentReadings | None = None, clock: Clock | None = None,
                 secure_cookies: bool = False) -> None:
        self.db_path = str(db_path)
        self.registry = registry or Registry()
        self.rules = rules.by_id() if rules is not None else {}
        self.recent = recent
        self.clock = clock or SystemClock()
        self.secure_cookies = secure_cookies
        self._local = threading.local()
        self.closing = threading.Event()  # set on shutdown: live feeds end so the server can stop at once
        with AlertStore(self.db_path):  # create or upgrade the store before the first request
            pass
        Accounts(self.db_path).close()

    # ---- per-thread connections ----------------------------------------------------------------
    def store(self) -> AlertStore:
        s = getattr(self._local, "store", None)
        if s is None:
            s = self._local.store = AlertStore(self.db_path)
        return s

    def accounts(self) -> Accounts:
        a = getattr(self._local, "accounts", None)
        if a is None:
            a = self._local.accounts = Accounts(self.db_path)
        return a

    # ---- the app -----------------------------------------------------------------------------
    def app(self) -> Starlette:
        routes: list[Route | Mount] = [Route(ep.path, self._endpoint(ep), methods=[ep.method]) for ep in ENDPOINTS]
        routes += [Route("/", _index, methods=["GET"]), Mount("/static", StaticFiles(directory=STATIC), name="static")]
        return Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _server_error})

    def _endpoint(self, ep: Endpoint) -> Callable[[Request], Any]:
        handler = getattr(self, "_" + ep.handler)

        async def endpoint(request: Request) -> Response:
            try:
                if ep.handler == "stream":
                    who = await asyncio.to_thread(self._authenticate, request, ep)
                    _only(request.query_params, ("since",))
                    return self._stream(request, who)
                body = await _body(request) if ep.method == "POST" else {}
                ctx = await asyncio.to_thread(self._prepare, request, ep, body)
                result = await asyncio.to_thread(handler, ctx)
            except ApiError as exc:
                return _error(exc.status, str(exc))
            except AuthError as exc:
                return _error(429 if exc.locked else 403 if exc.forbidden else 401, str(exc))
            except StoreError as exc:
                text = str(exc)
                return _error(404 if text.startswith("no ") else 409, text)
            if isinstance(result, Response):
                return result
            return _json(result)

        endpoint.__name__ = ep.handler
        return endpoint

    def _authenticate(self, request: Request, ep: Endpoint) -> Principal | None:
        if ep.role is None:
            return None
        now = self.clock.now()
        auth = request.headers.get("authorization", "")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, "Authorization must be 'Bearer <API token>'")
            who = self.accounts().token(token.strip(), now)
        else:
            sid = request.cookies.get(COOKIE)
            if not sid:
                raise ApiError(401, "not logged in: POST /api/login, or send an API token")
            who = self.accounts().session(sid, now)
            if request.method not in ("GET", "HEAD") and request.headers.get(CSRF_HEADER) != who.csrf:
                raise ApiError(403, f"missing or wrong {CSRF_HEADER} header (the token /api/login returned)")
        if not allows(who.role, ep.role):
            raise ApiError(403, f"{who.user} is a {who.role}; {ep.method} {ep.path} needs {ep.role} or above")
        return who

    def _prepare(self, request: Request, ep: Endpoint, body: dict[str, Any]) -> Ctx:
        who = self._authenticate(request, ep)
        _only(request.query_params, tuple(p.name for p in ep.params))
        props = (ep.body or {}).get("properties", {})
        for key, value in body.items():
            if key not in props:
                raise ApiError(400, f"unknown field {key!r} (expected: {', '.join(props) or 'no body'})")
            if props[key].get("type") == "string" and not isinstance(value, str):
                raise ApiError(400, f"{key!r} must be a string")
        for key in ep.required:
            if not isinstance(body.get(key), str | dict | list) or body.get(key) in ("", {}, []):
                raise ApiError(400, f"{key!r} is required")
        return Ctx(request, who, body, self.clock.now())

    def _record(self, ctx: Ctx, action: str, obj: str, detail: str) -> None:
        assert ctx.who is not None
        self.store().audit(ctx.who.user, action, obj, detail, ctx.now)

    # ---- handlers ---------------------------------------------------------------------------
    def _health(self, ctx: Ctx) -> dict[str, Any]:
        return {"ok": True, "open_alerts": sum(self.store().level_counts().values())}

    def _openapi(self, ctx: Ctx) -> dict[str, Any]:
        return openapi()

    def _login(self, ctx: Ctx) -> Response:
        try:
            sid, who = self.accounts().login(str(ctx.body["user"]), str(ctx.body["password"]), ctx.now)
        except AuthError as exc:
            self.store().audit(str(ctx.body["user"]), "login.failed", "session", str(exc), ctx.now)
            raise
        self.store().audit(who.user, "login", "session", f"role {who.role}", ctx.now)
        resp = _json({"user": who.user, "role": who.role, "csrf": who.csrf})
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=self.secure_cookies, path="/")
        return resp

    def _logout(self, ctx: Ctx) -> Response:
        assert ctx.who is not None
        if ctx.who.session:
            self.accounts().logout(ctx.who.session)
        resp = _json({"ok": True})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    def _me(self, ctx: Ctx) -> dict[str, Any]:
        assert ctx.who is not None
        return {"user": ctx.who.user, "role": ctx.who.role, "csrf": ctx.who.csrf}

    def _alerts(self, ctx: Ctx) -> dict[str, Any]:
        q = ctx.request.query_params
        state = q.get("state", "open")
        if state not in _STATES:
            raise ApiError(400, f"state must be one of {', '.join(_STATES)} (got {state!r})")
        level = q.get("level")
        if level is not None and level not in _LEVELS:
            raise ApiError(400, f"level must be one of {', '.join(_LEVELS)} (got {level!r})")
        limit = _int(q.get("limit", "2000"), "limit", 1, 100_000)
        rows = self.store().list_alerts(state=None if state == "all" else state, domain=q.get("domain"), level=level,
                                        limit=limit, district=q.get("district"), owner=q.get("owner"),
                                        assigned=q.get("assigned"))
        return {"alerts": [alert_json(r) for r in rows], "counts": self.store().level_counts(),
                "version": self.store().change_version()}

    def _alert(self, ctx: Ctx) -> dict[str, Any]:
        row = self._require(ctx)
        store = self.store()
        return {"alert": alert_json(row), "history": [history_json(h) for h in store.history(row.id)],
                "deliveries": [delivery_json(o) for o in store.outbox_of(row.id)],
                "nearby": nearby(row.sensor, self.registry, store.list_alerts(state="open"))}

    def _readings(self, ctx: Ctx) -> dict[str, Any]:
        row = self._require(ctx)
        try:
            hours = float(ctx.request.query_params.get("hours", "6"))
        except ValueError:
            raise ApiError(400, "hours must be a number") from None
        if not 0 < hours <= 48:
            raise ApiError(400, f"hours must be in (0, 48] (got {hours:g})")
        end = row.updated if row.state == "resolved" else max(row.updated, ctx.now)
        series = self.recent.series(row.sensor, end - hours * 3600) if self.recent is not None else {}
        rule = self.rules.get(row.rule)
        th = rule.thresholds if rule is not None and rule.detector is None else None
        metric = rule.value.source.strip() if th is not None and rule is not None and rule.value is not None else None
        if metric is not None and rule is not None and metric not in rule.metrics:
            metric = None  # the rule compares an expression (a deviation, a ratio): no line on a metric's scale
        lines = [{"level": lv.colour, "value": bound} for lv, bound in th.levels] if th and metric else []
        return {"sensor": row.sensor, "series": {m: [[t, v] for t, v in pts] for m, pts in series.items()},
                "metric": metric, "thresholds": lines, "direction": th.direction if th and metric else None,
                "started": row.started,
                "ended": row.updated if row.state == "resolved" else None,
                "available": self.recent is not None}

    def _require(self, ctx: Ctx) -> AlertRow:
        alert_id = ctx.request.path_params["id"]
        row = self.store().get(alert_id)
        if row is None:
            raise ApiError(404, f"no alert with id {alert_id!r}")
        return row

    def _act(self, ctx: Ctx, action: str, fn: Callable[[AlertRow, str], AlertRow], detail: str) -> dict[str, Any]:
        row = self._require(ctx)
        assert ctx.who is not None
        after = fn(row, ctx.who.user)
        self._record(ctx, f"alert.{action}", row.id, detail)
        return {"alert": alert_json(after)}

    def _ack(self, ctx: Ctx) -> dict[str, Any]:
        reason = str(ctx.body.get("reason", ""))
        return self._act(ctx, "ack", lambda r, who: self.store().ack(r.id, who, reason, ctx.now), reason)

    def _resolve(self, ctx: Ctx) -> dict[str, Any]:
        reason = str(ctx.body["reason"])
        return self._act(ctx, "resolve", lambda r, who: self.store().resolve(r.id, who, reason, ctx.now), reason)

    def _comment(self, ctx: Ctx) -> dict[str, Any]:
        text = str(ctx.body["text"])
        return self._act(ctx, "comment", lambda r, who: self.store().comment(r.id, who, text, ctx.now), text)

    def _assign(self, ctx: Ctx) -> dict[str, Any]:
        dept, reason = str(ctx.body["department"]), str(ctx.body.get("reason", ""))
        return self._act(ctx, "assign", lambda r, who: self.store().assign(r.id, dept, who, reason, ctx.now),
                         f"to {dept}")

    def _verdict(self, ctx: Ctx) -> dict[str, Any]:
        verdict, reason = str(ctx.body["verdict"]), str(ctx.body.get("reason", ""))
        if verdict not in VERDICTS:
            raise ApiError(400, f"verdict must be one of {', '.join(VERDICTS)} (got {verdict!r})")
        return self._act(ctx, "verdict",
                         lambda r, who: self.store().set_verdict(r.id, verdict, who, reason, ctx.now), verdict)

    def _silences(self, ctx: Ctx) -> dict[str, Any]:
        every = ctx.request.query_params.get("all") == "1"
        rows = self.store().silences(include_expired=True) if every else self.store().silences(at=ctx.now)
        return {"silences": [{"id": w.id, "match": w.match.to_dict(), "polygon": w.polygon, "starts": w.starts,
                              "ends": w.ends, "created_by": w.created_by, "created_at": w.created_at,
                              "reason": w.reason, **dict(w.extra)} for w in rows]}

    def _silence_add(self, ctx: Ctx) -> dict[str, Any]:
        assert ctx.who is not None
        b = ctx.body
        if not isinstance(b["match"], dict):
            raise ApiError(400, "'match' must be an object of matchers ({\"domain\": \"gas\", ...})")
        problems: list[str] = []
        match = match_from(b["match"], lambda k, msg: problems.append(f"match.{'.'.join(k)}: {msg}"))
        if problems:
            raise ApiError(400, "; ".join(problems))
        polygon = _polygon(b.get("polygon"))
        try:
            starts = parse_ts(b["starts"]) if "starts" in b else ctx.now
            if "ends" in b:
                ends = parse_ts(b["ends"])
            elif "duration" in b:
                ends = starts + parse_duration(str(b["duration"]))
            else:
                raise ApiError(400, "give 'ends' (RFC 3339) or 'duration' (8h)")
        except (TimeFormatError, ValueError) as exc:
            raise ApiError(400, f"silence time: {exc}") from None
        w = self.store().silence_add(match, starts, ends, ctx.who.user, str(b["reason"]), ctx.now, polygon)
        return {"silence": {"id": w.id, "match": w.match.to_dict(), "starts": w.starts, "ends": w.ends}}

    def _silence_expire(self, ctx: Ctx) -> dict[str, Any]:
        assert ctx.who is not None
        w = self.store().silence_expire(ctx.request.path_params["id"], ctx.who.user, str(ctx.body.get("reason", "")),
                                        ctx.now)
        return {"silence": {"id": w.id, "ends": w.ends}}

    def _outbox(self, ctx: Ctx) -> dict[str, Any]:
        state = ctx.request.query_params.get("state")
        states = [state] if state else ["pending", "awaiting_approval", "failed", "expired"]
        return {"notifications": [delivery_json(o) for s in states for o in self.store().outbox_rows(s)]}

    def _decide(self, ctx: Ctx, approve: bool) -> dict[str, Any]:
        assert ctx.who is not None
        key = ctx.request.path_params["key"]
        row = self.store().outbox_decide(key, approve, ctx.who.user, str(ctx.body["reason"]), ctx.now)
        self._record(ctx, "outbox.approve" if approve else "outbox.reject", key, str(ctx.body["reason"]))
        return {"notification": delivery_json(row)}

    def _approve(self, ctx: Ctx) -> dict[str, Any]:
        return self._decide(ctx, True)

    def _reject(self, ctx: Ctx) -> dict[str, Any]:
        return self._decide(ctx, False)

    def _response_times(self, ctx: Ctx) -> dict[str, Any]:
        try:
            back = parse_duration(ctx.request.query_params.get("since", "30d"))
        except TimeFormatError as exc:
            raise ApiError(400, f"since: {exc}") from None
        return {"departments": self.store().response_times(since=ctx.now - back)}

    def _overview(self, ctx: Ctx) -> dict[str, Any]:
        store = self.store()
        offline = set(store.offline_sensors())
        online: dict[str, dict[str, int]] = {}
        for s in self.registry.sensors.values():
            d = online.setdefault(s.domain, {"sensors": 0, "online": 0})
            d["sensors"] += 1
            d["online"] += s.id not in offline
        return {"sensors": online, "alerts_24h": store.alert_counts(ctx.now - 86_400),
                "alerts_7d": store.alert_counts(ctx.now - 7 * 86_400),
                "response_times": store.response_times(since=ctx.now - 7 * 86_400),
                "rules": store.verdict_stats(since=ctx.now - 30 * 86_400)[:20]}

    def _audit(self, ctx: Ctx) -> dict[str, Any]:
        limit = _int(ctx.request.query_params.get("limit", "200"), "limit", 1, 10_000)
        return {"audit": [{"ts": ts, "at": rfc3339(ts), "actor": a, "action": act, "object": o, "detail": d}
                          for ts, a, act, o, d in self.store().audit_log(limit)]}

    def _users(self, ctx: Ctx) -> dict[str, Any]:
        return {"users": [{"name": n, "role": r, "disabled": d} for n, r, d in self.accounts().users()]}

    def _user_add(self, ctx: Ctx) -> dict[str, Any]:
        try:
            self.accounts().add_user(str(ctx.body["name"]), str(ctx.body["role"]), str(ctx.body["password"]), ctx.now)
        except ValueError as exc:
            raise ApiError(409 if "exists" in str(exc) else 400, str(exc)) from None
        self._record(ctx, "user.add", str(ctx.body["name"]), f"role {ctx.body['role']}")
        return {"user": {"name": ctx.body["name"], "role": ctx.body["role"]}}

    def _token_add(self, ctx: Ctx) -> dict[str, Any]:
        try:
            token = self.accounts().create_token(str(ctx.body["user"]), str(ctx.body["label"]), ctx.now)
        except ValueError as exc:
            raise ApiError(404, str(exc)) from None
        self._record(ctx, "token.add", str(ctx.body["user"]), str(ctx.body["label"]))
        return {"token": token, "user": ctx.body["user"], "note": "shown once; store it now"}

    def _map(self, ctx: Ctx) -> dict[str, Any]:
        reg = self.registry
        return {"districts": [{"id": d.id, "name": d.name, "rings": [list(map(list, r)) for r in (d.parts or
                                                                                            (d.polygon,))]}
                              for d in sorted(reg.districts.values(), key=lambda d: d.id)],
                "sensors": [{"id": s.id, "domain": s.domain, "district": s.district, "lon": s.lon, "lat": s.lat,
                             "asset": s.asset, "asset_type": s.asset_type, "owner": s.owner}
                            for s in sorted(reg.sensors.values(), key=lambda s: s.id)]}

    def _risk(self, ctx: Ctx) -> dict[str, Any]:
        open_alerts = self.store().list_alerts(state="open")
        return {"districts": district_risk(open_alerts, self.registry), "sensors": sensor_states(open_alerts),
                "version": self.store().change_version()}

    # ---- the live feed ------------------------------------------------------------------------
    def _stream(self, request: Request, who: Principal | None) -> StreamingResponse:
        since_text = request.query_params.get("since")
        since = _int(since_text, "since", 0, 1 << 62) if since_text is not None else None

        async def events() -> AsyncIterator[bytes]:
            store = AlertStore(self.db_path)  # a connection for this stream
            try:
                version = since if since is not None else store.change_version()
                yield b"event: hello\ndata: " + orjson.dumps({"version": version, "user": who and who.user}) + b"\n\n"
                beat = time.monotonic()
                while not self.closing.is_set() and not await request.is_disconnected():
                    now_version, rows = await asyncio.to_thread(store.changed_since, version)
                    if rows:
                        version = now_version
                        data = {"version": version, "alerts": [alert_json(r) for r in rows],
                                "counts": store.level_counts()}
                        yield b"event: alerts\ndata: " + orjson.dumps(data) + b"\n\n"
                    elif time.monotonic() - beat >= STREAM_HEARTBEAT_S:
                        beat = time.monotonic()
                        yield b": heartbeat\n\n"
                    await asyncio.sleep(STREAM_POLL_S)
            finally:
                store.close()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# ---- JSON shapes ------------------------------------------------------------------------------
def alert_json(r: AlertRow) -> dict[str, Any]:
    d: dict[str, Any] = {k: getattr(r, k) for k in AlertRow.__slots__}
    d["level"] = r.level.colour
    d["level_cn"] = r.level.cn
    d["started_at"], d["updated_at"] = rfc3339(r.started), rfc3339(r.updated)
    return d


def history_json(h: HistoryEntry) -> dict[str, Any]:
    return {"ts": h.ts, "at": rfc3339(h.ts), "event": h.event, "actor": h.actor, "reason": h.reason,
            "level": h.level, "value": h.value, "message": h.message, "seq": h.seq}


def delivery_json(o: OutboxRow) -> dict[str, Any]:
    return {k: getattr(o, k) for k in OutboxRow.__slots__}


# ---- helpers ----------------------------------------------------------------------------------
async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"request body over {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    if "json" not in request.headers.get("content-type", ""):
        raise ApiError(415, "send the body as JSON (Content-Type: application/json)")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "body must be a JSON object")
    return doc


def _only(params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    for k in params:
        if k not in allowed:
            raise ApiError(400, f"unknown parameter {k!r} (expected: {', '.join(allowed) or 'none'})")


def _int(text: str, name: str, lo: int, hi: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer (got {text!r})") from None
    if not lo <= n <= hi:
        raise ApiError(400, f"{name} must be in {lo}..{hi} (got {n})")
    return n


def _polygon(value: object) -> tuple[tuple[float, float], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) < 3:
        raise ApiError(400, "polygon must be a list of at least 3 [lon, lat] points")
    ring = []
    for pt in value:
        if not (isinstance(pt, list) and len(pt) == 2 and all(isinstance(c, int | float) and not isinstance(c, bool)
                                                               for c in pt)
                and -180 <= pt[0] <= 180 and -90 <= pt[1] <= 90):
            raise ApiError(400, f"polygon point {pt!r} is not [lon, lat] in degrees")
        ring.append((float(pt[0]), float(pt[1])))
    return tuple(ring)


async def _index(request: Request) -> Response:
    return Response((STATIC / "index.html").read_bytes(), media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})


CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _json(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    text = {404: f"no such endpoint: {request.method} {request.url.path} (see /api/openapi.json)",
            405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
    return _error(exc.status_code, text)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("console: %s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(500, f"internal error ({type(exc).__name__}); it is logged")


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``ENDPOINTS``."""
    paths: dict[str, dict[str, Any]] = {}
    for ep in ENDPOINTS:
        op: dict[str, Any] = {"summary": ep.summary, "operationId": ep.handler,
                              "responses": {"200": {"description": "OK"},
                                            "400": {"description": "malformed request (the error says what)"},
                                            "401": {"description": "not logged in"},
                                            "403": {"description": "role too low, or CSRF token missing"}}}
        if ep.role is None:
            op["security"] = []
        else:
            op["description"] = f"Needs the role {ep.role} or above."
        params: list[dict[str, Any]] = [{"name": p.name, "in": "query", "description": p.doc,
                   "schema": {"type": p.kind, **({"enum": list(p.enum)} if p.enum else {})}} for p in ep.params]
        params += [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                   for n in ("id", "key") if "{" + n + "}" in ep.path]
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {**ep.body, "required": list(ep.required), "additionalProperties": False}}}}
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {"openapi": "3.1.0",
            "info": {"title": "lifeline console API", "version": "1",
                     "description": "The operator console's API (lifeline/console/app.py)."},
            "components": {"securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE},
                "token": {"type": "http", "scheme": "bearer"}}},
            "security": [{"session": []}, {"token": []}],
            "paths": paths}
