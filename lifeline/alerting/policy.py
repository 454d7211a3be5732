"""Noise control: which alert transitions become notifications, and which are recorded but not sent.

Between the engine and the outbox. For every alert event the routing tree names the receivers; the policy
then decides, per event, one of:

* ``pending``: send it (the outbox delivers it); ``awaiting_approval`` for a receiver whose red and orange
  warnings a supervisor must approve first (``approval:`` in the routing file);
* ``silenced``: a silence (store) or a maintenance window (routing file) covers it;
* ``inhibited``: an inhibition rule holds it (a sensor offline inhibits that sensor's threshold alerts;
  many sensors of a district offline inhibit the next ones; a red inhibits a yellow of the same sensor);
* ``flapping``: the subject changes state too often; held until it settles;
* ``suppressed``: nothing new for the receivers (a "resolved" whose firing nobody heard, a bounce).

Every decision is recorded in the outbox with its reason, sent or not, so operators see what was held and
why; an alert under a silence is still stored, and marked.

**Deduplication.** A receiver hears a transition once (the outbox key), once even if several routes
name it; a subject that resolves and fires again within ``resolve_hold`` (a bounce) is one story: the
"resolved" is not sent and neither is the re-fire, unless it is worse than what they heard.

**Flapping.** At least ``flap_changes`` fire/resolve changes of one (rule, subject) within ``flap_window``:
one "flapping" notice goes to whoever heard of it, then every transition is held, except one that raises
the level above anything they heard (an escalation is never held). After ``flap_quiet`` without a change
it ends with one message: "resolved", or "still firing" with the current level.

**Deterministic.** Decisions depend only on the events, in the engine's order, and their event times:
a held "resolved" whose time has passed is released by the next event of the same subject, or by
``advance`` (the engine's clock), whichever comes first, with the same outcome and the same key. So the
live engine, a backtest and a restarted engine (``snapshot``/``restore`` ride in the engine checkpoint)
queue exactly the same notifications. Silences are judged at the event's time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lifeline.alerting.matchers import attr
from lifeline.alerting.routing import Grouping, Routing
from lifeline.alerting.silences import Window, first_covering
from lifeline.model import AlertEvent, EventKind, Level
from lifeline.notifiers.base import Notification, notification_key

SENT_STATES = ("pending", "awaiting_approval")
_CHANGES = (EventKind.FIRED, EventKind.RESOLVED)


@dataclass(slots=True)
class _Story:
    """One (rule, subject) as its receivers have heard it: from the first notified firing to its resolution."""

    receivers: list[str] = field(default_factory=list)  # who heard it is open
    level: int = 0  # the highest level they heard
    changes: list[float] = field(default_factory=list)  # fire/resolve times within the flap window
    flapping: bool = False
    last_change: float = float("-inf")
    held: dict[str, Any] | None = None  # a "resolved" waiting out the hold
    held_due: float = 0.0
    last: dict[str, Any] | None = None  # the latest event (its payload)

    def idle(self) -> bool:
        return not self.receivers and self.held is None and not self.flapping

    def to_json(self) -> dict[str, Any]:
        return {"receivers": self.receivers, "level": self.level, "changes": self.changes,
                "flapping": self.flapping, "last_change": self.last_change, "held": self.held,
                "held_due": self.held_due, "last": self.last}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> _Story:
        return cls(list(d["receivers"]), int(d["level"]), [float(x) for x in d["changes"]], bool(d["flapping"]),
                   float(d["last_change"]), d["held"], float(d["held_due"]), d["last"])


@dataclass(slots=True)
class Decisions:
    """What a batch (or an advance of time) gives: outbox rows, and each touched alert's suppression mark."""

    notifications: list[Notification] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)  # alert id -> "" (notified) or why not


class Policy:
    """The noise-control state machine over one engine's alert events. Not thread-safe (the runner's thread)."""

    def __init__(self, routing: Routing, *, labels: Callable[[str], Mapping[str, str]] | None = None,
                 position: Callable[[str], tuple[float, float] | None] | None = None,
                 silences: Sequence[Window] = ()) -> None:
        self.routing = routing
        self.noise = routing.noise
        self._labels = labels or (lambda _: {})
        self._position = position or (lambda _: None)
        self.silences: tuple[Window, ...] = tuple(silences)
        self._grouped = any(n.grouping.by for n in routing.route.nodes())
        self._stories: dict[str, _Story] = {}
        self._open: dict[str, AlertEvent] = {}  # open alerts (inhibition sources), by id
        self._clock = float("-inf")  # the latest event time or advance seen
        self._swept = float("-inf")

    # ---- input ----------------------------------------------------------------------------
    def process(self, events: Sequence[AlertEvent], created: float) -> Decisions:
        """Decide the notifications of ``events`` (in the engine's order); ``created`` stamps the rows."""
        out = Decisions()
        for e in events:
            self._event(e, created, out)
        return out

    def decide(self, events: Sequence[AlertEvent], created: float, clock: float | None) -> Decisions:
        """A batch's decisions, then what the engine's clock (``clock``, when it has one) releases."""
        out = self.process(events, created)
        if clock is not None:
            later = self.advance(clock, created)
            out.notifications.extend(later.notifications)
            out.marks.update(later.marks)
        return out

    def advance(self, t: float, created: float) -> Decisions:
        """The engine's clock reached ``t``: release what waited until then (held "resolved"s, flapping that
        ended). Releases carry the same keys whenever they happen, so calling this more or less often
        changes when rows are queued, never which."""
        out = Decisions()
        self._clock = max(self._clock, t)
        for key in [k for k, st in self._stories.items() if st.held is not None or st.flapping]:
            self._expire(self._stories[key], t, created, out)
        if t - self._swept >= 60.0:
            self._sweep(t)
        return out

    def set_silences(self, windows: Sequence[Window]) -> None:
        self.silences = tuple(windows)

    # ---- state ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"version": 1, "clock": self._clock,
                "stories": {k: st.to_json() for k, st in self._stories.items()},
                "open": [e.to_dict() for e in self._open.values()]}

    def restore(self, snap: Mapping[str, Any] | None) -> None:
        self._stories.clear()
        self._open.clear()
        self._clock = self._swept = float("-inf")
        if not snap:
            return
        if snap.get("version") != 1:
            raise ValueError(f"unsupported notification policy snapshot version {snap.get('version')!r}")
        self._clock = float(snap["clock"]) if snap["clock"] is not None else float("-inf")
        self._stories = {k: _Story.from_json(v) for k, v in snap["stories"].items()}
        for d in snap["open"]:
            e = AlertEvent.from_dict(d)
            self._open[e.id] = e

    def open_count(self) -> int:
        return len(self._open)

    # ---- the decision -----------------------------------------------------------------------
    def _event(self, e: AlertEvent, created: float, out: Decisions) -> None:
        self._clock = max(self._clock, e.ts)
        key = f"{e.rule}|{e.subject}"
        st = self._stories.get(key)
        if st is None:
            st = self._stories[key] = _Story()
        self._expire(st, e.ts, created, out)
        if e.event == EventKind.RESOLVED:
            self._open.pop(e.id, None)
        else:
            self._open[e.id] = e
        payload = e.to_dict()
        st.last = payload
        routed = self.routing.receivers_for(e, self._labels(e.sensor))
        if e.event in _CHANGES:
            st.changes.append(e.ts)
            st.last_change = e.ts
            horizon = e.ts - self.noise.flap_window_s
            while st.changes and st.changes[0] < horizon:
                st.changes.pop(0)
        why = self._suppressed(e) if e.event != EventKind.RESOLVED else None

        if not st.flapping and len(st.changes) >= self.noise.flap_changes:
            st.flapping = True
            to = st.receivers or routed
            notice = {"kind": "flapping", "changes": len(st.changes), "window_s": self.noise.flap_window_s,
                      "quiet_s": self.noise.flap_quiet_s}
            self._emit(out, {**payload, "event": "flapping", "notice": notice}, to, created, why,
                       tag=f"flapping@{e.ts:.3f}")
            if st.held is not None:  # the "resolved" it held is part of the flapping now
                self._emit(out, st.held, st.receivers, created, ("suppressed", "flapping: held"))
                st.held = None
        if st.flapping:
            worse = e.event in (EventKind.FIRED, EventKind.ESCALATED) and int(e.level) > st.level
            if worse and why is None:  # an escalation is never held
                self._send(out, e, payload, st, routed, created)
            else:
                held = why or ("flapping", f"flapping: {len(st.changes)} changes within "
                               f"{self.noise.flap_window_s / 60:g} min; held until quiet for "
                               f"{self.noise.flap_quiet_s / 60:g} min")
                self._emit(out, payload, routed or st.receivers, created, held)
                out.marks[e.id] = held[1] if held[0] == "flapping" else f"{held[0]}: {held[1]}"
            return

        if e.event == EventKind.RESOLVED:
            if not st.receivers:
                self._emit(out, payload, routed, created, ("suppressed", "nobody was told it fired"))
            elif self.noise.resolve_hold_s > 0:
                st.held, st.held_due = payload, e.ts + self.noise.resolve_hold_s
            else:
                self._release_resolved(st, payload, created, out)
            return

        if st.held is not None:  # it fired again within the hold: a bounce, one story
            gap = e.ts - float(st.held["ts"])
            self._emit(out, st.held, st.receivers, created,
                       ("suppressed", f"bounced: fired again {gap:g} s later (alert {e.id})"))
            st.held = None
            if e.event == EventKind.FIRED and int(e.level) <= st.level and why is None:
                self._emit(out, payload, st.receivers, created,
                           ("suppressed", f"continues the alert its receivers heard of ({gap:g} s gap)"))
                out.marks[e.id] = ""
                return
        if why is not None:
            self._emit(out, payload, routed, created, why)
            out.marks[e.id] = f"{why[0]}: {why[1]}"
            return
        self._send(out, e, payload, st, routed, created)

    def _send(self, out: Decisions, e: AlertEvent, payload: dict[str, Any], st: _Story, routed: Sequence[str],
              created: float) -> None:
        to = list(dict.fromkeys([*routed, *st.receivers]))  # who heard it before hears how it changes
        self._emit(out, payload, to, created, None)
        st.receivers = to
        st.level = max(st.level, int(e.level))
        out.marks[e.id] = ""

    def _release_resolved(self, st: _Story, payload: dict[str, Any], created: float, out: Decisions,
                          notice: dict[str, Any] | None = None, tag: str = "") -> None:
        self._emit(out, {**payload, "notice": notice} if notice else payload, st.receivers, created, None, tag=tag)
        st.receivers, st.level, st.held = [], 0, None

    def _expire(self, st: _Story, t: float, created: float, out: Decisions) -> None:
        """Release what was due before ``t``: a held "resolved"; the end of flapping."""
        if st.held is not None and t >= st.held_due:
            self._release_resolved(st, st.held, created, out)
        if st.flapping and t >= st.last_change + self.noise.flap_quiet_s and st.last is not None:
            st.flapping = False
            st.changes.clear()
            last = st.last
            notice = {"kind": "flapping_ended", "quiet_s": self.noise.flap_quiet_s}
            if last["event"] == EventKind.RESOLVED.value:
                if st.receivers:  # its own key: the transition itself is on record as held ("flapping")
                    self._release_resolved(st, last, created, out, notice, tag="flapping-ended")
            else:
                to = list(dict.fromkeys([*st.receivers, *self._routed(last)]))
                self._emit(out, {**last, "event": "flapping_ended", "notice": notice}, to, created, None,
                           tag=f"flapping-ended@{st.last_change:.3f}")
                st.receivers = to
                st.level = max(st.level, int(Level.parse(str(last["level"]))))

    def _routed(self, payload: Mapping[str, Any]) -> list[str]:
        e = AlertEvent.from_dict(payload)
        return self.routing.receivers_for(e, self._labels(e.sensor))

    def _sweep(self, t: float) -> None:
        """Forget idle subjects whose changes left the flap window (bounded state)."""
        self._swept = t
        for key in [k for k, st in self._stories.items()
                    if st.idle() and t - st.last_change >= self.noise.flap_window_s]:
            del self._stories[key]

    def _suppressed(self, e: AlertEvent) -> tuple[str, str] | None:
        """(state, why) when a silence, a maintenance window or an inhibition holds ``e``; else None."""
        labels = self._labels(e.sensor)
        if self.silences or self.routing.maintenance:
            w = first_covering((*self.silences, *self.routing.maintenance), e, labels, self._position(e.sensor))
            if w is not None:
                return "silenced", w.describe()
        for rule in self.routing.inhibit:
            if not rule.target(e, labels):
                continue
            sources = [a for a in self._open.values()
                       if a.id != e.id and all(attr(a, k) == attr(e, k) for k in rule.equal)
                       and rule.source(a, self._labels(a.sensor))]
            if len(sources) >= rule.min_sources:
                first = min(sources, key=lambda a: (a.started, a.id))
                more = f" and {len(sources) - 1} more" if len(sources) > 1 else ""
                return "inhibited", f"inhibited by {rule.name}: {first.rule} on {first.subject} ({first.id}){more}"
        return None

    def _emit(self, out: Decisions, payload: dict[str, Any], receivers: Sequence[str], created: float,
              why: tuple[str, str] | None, *, tag: str = "") -> None:
        alert, seq = str(payload["id"]), int(payload["seq"])
        level = Level.parse(str(payload["level"]))
        groups = self._groups(payload) if why is None and self._grouped else {}
        for r in receivers:
            state, note = why if why is not None else ("pending", "")
            if why is None and self.routing.needs_approval(r, level):
                state, note = "awaiting_approval", f"a {level.colour} warning to {r} needs a supervisor's approval"
            group, g = groups.get(r, ("", None))
            if state != "pending" or g is None or not group:
                out.notifications.append(Notification(notification_key(alert, seq, r, tag), r, alert, seq, created,
                                                      payload, state, note))
            else:
                out.notifications.append(Notification(notification_key(alert, seq, r, tag), r, alert, seq, created,
                                                      payload, state, note, group, g.wait_s, g.interval_s))

    def _groups(self, payload: Mapping[str, Any]) -> dict[str, tuple[str, Grouping]]:
        """receiver -> the group its notification of this alert goes out in (routes with ``group_by``)."""
        e = AlertEvent.from_dict(payload)
        return self.routing.groupings_for(e, self._labels(e.sensor))
