"""Escalation: an alert nobody acknowledged within its level's deadline is sent again, and to the next
receiver of its route's ``escalate_to`` chain.

Routes with ``repeat_interval`` also re-send a still-open alert once per interval after it started, so a long
incident stays in front of the department: an acknowledged one at once, an unacknowledged one after its
escalation steps are over. The repeats go through the route's group like any other notification.

Deadlines are per level (``ack_deadline:`` in the routing file; red 5 min, orange 15 min, yellow 1 h,
blue 4 h by default) and run from the moment the alert reached its current level (its firing, or its last
escalation: a worse level must be acknowledged again). Step ``k`` is due ``k`` deadlines after that: it goes
to the receivers the routing tree names for the alert plus the first ``k`` of the chain, as one reminder
with its own idempotency key (``overdue<k>``), and is noted in the alert's history ("escalated", by
lifeline). After the chain is exhausted two more reminders follow, then it stops; acknowledging or
resolving the alert stops it at once. Alerts whose latest transition was held (silenced, inhibited,
flapping) are not escalated.

This runs on the wall clock, beside the dispatcher, from the alert store (acknowledgements are operator
actions, not engine events): each step is recorded once (``escalations`` table), in the same transaction
as its outbox rows, so a restart never repeats one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from lifeline.alerting.routing import Routing
from lifeline.clock import Clock, SystemClock
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind
from lifeline.notifiers.base import Notification, notification_key
from lifeline.sinks.store import AlertRow, AlertStore

log = logging.getLogger(__name__)

EXTRA_REMINDERS = 2  # after the chain is exhausted


class Escalator:
    def __init__(self, routing: Routing, *, labels: Callable[[str], Mapping[str, str]] | None = None,
                 clock: Clock | None = None) -> None:
        self.routing = routing
        self._labels = labels or (lambda _: {})
        self.clock = clock or SystemClock()
        self._repeating = any(n.grouping.repeat_s > 0 for n in routing.route.nodes())

    def _repeats(self, store: AlertStore, now: float) -> int:
        """A still-open alert (not held) is sent again every ``repeat_interval`` of its route after it started:
        one reminder per period (key ``repeat<k>``), never a burst after a restart. An unacknowledged alert is
        repeated only once its escalation steps are over (until then the deadline reminders speak for it)."""
        rows: list[Notification] = []
        for alert in store.list_alerts(state="open"):
            if alert.suppressed:
                continue
            e = _event_of(alert)
            labels = self._labels(e.sensor)
            if alert.state == "firing" and e.level in self.routing.ack_deadline:
                cap = max(len(self.routing.escalation_for(e, labels)), 1) + EXTRA_REMINDERS
                if store.escalation_steps(e.id, e.seq) < cap:
                    continue
            for r, (group, g) in self.routing.groupings_for(e, labels).items():
                if g.repeat_s <= 0 or now - alert.started < g.repeat_s:
                    continue
                k = int((now - alert.started) // g.repeat_s)
                notice = {"kind": "repeat", "n": k, "repeat_s": g.repeat_s, "state": alert.state}
                payload = {**e.to_dict(), "event": "repeat", "notice": notice}
                rows.append(Notification(notification_key(e.id, e.seq, r, f"repeat{k}"), r, e.id, e.seq, now,
                                         payload, "pending", f"repeat {k}: still {alert.state}", group,
                                         g.wait_s if group else 0.0, g.interval_s if group else 0.0))
        return store.outbox_queue(rows) if rows else 0

    def run_once(self, store: AlertStore) -> int:
        """Take every escalation step that is due, and queue the repeats of routes with ``repeat_interval``;
        the number of steps and repeats taken."""
        now = self.clock.now()
        taken = self._repeats(store, now) if self._repeating else 0
        for alert, due, done, since in store.overdue(self.routing.ack_deadline, now):
            e = _event_of(alert)
            chain = self.routing.escalation_for(e, self._labels(e.sensor))
            # the step due now (after an outage, not every one missed on the way), while steps remain
            step = min(due, max(len(chain), 1) + EXTRA_REMINDERS)
            if step <= done:  # the steps are over (repeats may follow)
                continue
            if store.escalate(alert, step, *self._step(e, step, chain, since, now)):
                taken += 1
        return taken

    def _step(self, e: AlertEvent, step: int, chain: list[str], since: float,
              now: float) -> tuple[list[str], list[Notification], float, str]:
        deadline = self.routing.ack_deadline[e.level]
        added = chain[:step]
        to = list(dict.fromkeys([*self.routing.receivers_for(e, self._labels(e.sensor)), *added]))
        notice = {"kind": "overdue", "step": step, "deadline_s": deadline, "since": since, "escalated_to": added}
        payload = {**e.to_dict(), "event": "overdue", "notice": notice}
        rows = []
        for r in to:
            state, note = "pending", f"reminder {step}: not acknowledged within {deadline / 60:g} min"
            if self.routing.needs_approval(r, e.level):
                state, note = "awaiting_approval", f"a {e.level.colour} warning to {r} needs a supervisor's approval"
            rows.append(Notification(notification_key(e.id, e.seq, r, f"overdue{step}"), r, e.id, e.seq, now,
                                     payload, state, note))
        why = (f"not acknowledged within {deadline / 60:g} min at {e.level.colour}: reminder {step} to "
               f"{', '.join(to)}" + (f" (escalated to {', '.join(added)})" if added else ""))
        log.warning("alert %s (%s on %s): %s", e.id, e.rule, e.subject, why)
        return to, rows, now, why


def _event_of(a: AlertRow) -> AlertEvent:
    """The alert's latest transition, as its stored row has it."""
    return AlertEvent(a.id, a.seq, a.rule, AlertKind(a.kind), a.subject, a.sensor, a.domain, a.district, a.level,
                      AlertState.FIRING, EventKind(a.last_event), a.started, a.updated, a.value, a.message, a.title,
                      a.owner, a.playbook)
