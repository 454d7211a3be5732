"""Escalation: an alert nobody acknowledged within its level's deadline is sent again, and to the next
receiver of its route's ``escalate_to`` chain.

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
from lifeline.model import AlertEvent
from lifeline.notifiers.base import Notification, notification_key
from lifeline.sinks.store import AlertStore

log = logging.getLogger(__name__)

EXTRA_REMINDERS = 2  # after the chain is exhausted


class Escalator:
    def __init__(self, routing: Routing, *, labels: Callable[[str], Mapping[str, str]] | None = None,
                 clock: Clock | None = None) -> None:
        self.routing = routing
        self._labels = labels or (lambda _: {})
        self.clock = clock or SystemClock()

    def run_once(self, store: AlertStore) -> int:
        """Take every escalation step that is due; the number taken."""
        now = self.clock.now()
        taken = 0
        for alert, step, since in store.overdue(self.routing.ack_deadline, now):
            events = store.events(alert.id)
            if not events:
                continue
            e = events[-1]
            if e.seq != alert.seq:  # the store moved on between the two reads: next round
                continue
            chain = self.routing.escalation_for(e, self._labels(e.sensor))
            if step > max(len(chain), 1) + EXTRA_REMINDERS:
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
