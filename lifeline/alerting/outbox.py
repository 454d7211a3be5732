"""The notification outbox's dispatcher: delivers what the alert store's outbox holds, until delivered or expired.

Notifications are written to the outbox in the same transaction as the alert events they announce
(``AlertStore.commit_batch(..., notifications=...)``): stored before anything is sent, each idempotency
key once, so a restarted engine that re-derives a batch never queues a notification twice. The
dispatcher, in its own thread with its own database connection, takes the due ones oldest first and
sends each through its receiver's channel:

* delivered: ``sent`` (with the time);
* refused for good (``DeliveryError(permanent=True)``: a 4xx, a bad address): ``failed``;
* otherwise retried with exponential backoff (``retry_initial_s`` doubling to ``retry_max_s``) until
  ``ttl_s`` after the notification was created, then ``expired``;
* a receiver that is not configured: ``failed`` ("no such receiver").

Failed and expired deliveries stay in the outbox with their last error for operators
(``AlertStore.outbox_rows``); ``AlertStore.outbox_counts`` gives the backlog (``pending``). A process
killed between a successful send and recording it sends that notification once more after a restart,
with the same key: receivers drop keys they have seen (every channel carries it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path

from lifeline.alerting.escalation import Escalator
from lifeline.alerting.grouping import group_notification
from lifeline.clock import Clock, SystemClock
from lifeline.notifiers.base import DeliveryError, Notification, Notifier
from lifeline.sinks.store import AlertStore

log = logging.getLogger(__name__)


class Dispatcher:
    """One lane per receiver, so a slow or dead receiver never delays the others: in its own thread each lane
    sends its receiver's due notifications, oldest first, and after a failure that may pass (no answer, 5xx)
    rests that receiver until the failed notification's retry time instead of trying its other ones against
    the same dead end. One more lane fails the notifications of receivers that are not configured.
    ``run_once`` runs every lane once in the caller's thread (tests, and a deterministic clock)."""

    def __init__(self, store_path: str | Path, notifiers: Mapping[str, Notifier], *, clock: Clock | None = None,
                 retry_initial_s: float = 2.0, retry_max_s: float = 300.0, ttl_s: float = 86_400.0,
                 poll_s: float = 0.5, batch: int = 100, escalator: Escalator | None = None,
                 escalate_every_s: float = 5.0, probe_max_s: float = 30.0) -> None:
        if not 0 < retry_initial_s <= retry_max_s:
            raise ValueError(f"need 0 < retry_initial_s <= retry_max_s (got {retry_initial_s}, {retry_max_s})")
        if not ttl_s > 0 or not poll_s > 0 or batch < 1:
            raise ValueError(f"ttl_s and poll_s must be positive and batch at least 1 (got {ttl_s}, {poll_s}, {batch})")
        self.store_path = store_path
        self.store = AlertStore(store_path)  # run_once's connection, and the read side for callers
        self.notifiers = dict(notifiers)
        self.clock = clock or SystemClock()
        self.retry_initial_s, self.retry_max_s, self.ttl_s = retry_initial_s, retry_max_s, ttl_s
        self.poll_s, self.batch = poll_s, batch
        self.escalator, self.escalate_every_s = escalator, escalate_every_s
        # a receiver that keeps failing is tried again at least this often (with its oldest notification when
        # none is due): the bound on how long a backlog waits after the receiver comes back
        self.probe_max_s = min(probe_max_s, retry_max_s)
        self._rest: dict[str, float] = {}  # receiver -> no attempt before this time (after a failure)
        self._fails: dict[str, int] = {}  # receiver -> failures since its last success
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def run_once(self) -> int:
        """Take due escalation steps, then run every lane once (the receivers', then the one for unknown
        receivers); the number of deliveries attempted."""
        if self.escalator is not None:
            self.escalator.run_once(self.store)
        return sum(self._round(self.store, r) for r in (*sorted(self.notifiers), None))

    def _round(self, store: AlertStore, receiver: str | None) -> int:
        """One lane's round: ``receiver``'s due notifications (None: those of receivers not configured). Members
        of a routing group go out together once the group's time has come (``group_wait`` after its first
        member, and ``group_interval`` after its last message); until then they are deferred."""
        now = self.clock.now()
        if receiver is not None and now < self._rest.get(receiver, 0.0):
            return 0
        if receiver is None:
            due = store.outbox_due(now, self.batch, exclude=tuple(self.notifiers))
        else:
            due = store.outbox_due(now, self.batch, receiver=receiver)
            if not due and self._fails.get(receiver):  # down: probe with its oldest notification
                due = store.outbox_due(float("inf"), 1, receiver=receiver)
        units: list[tuple[Notification, list[Notification], str]] = []
        groups: dict[str, list[Notification]] = {}
        for n in due:
            if n.group and receiver is not None:
                if n.group not in groups:
                    groups[n.group] = []
                    units.append((n, groups[n.group], n.group))
                groups[n.group].append(n)
            else:
                units.append((n, [n], ""))
        attempted = 0
        for first, members, group in units:
            message = first
            if group:
                assert receiver is not None
                last = store.group_last_sent(receiver, group)
                ready = min(m.created for m in members) + first.group_wait
                if last is not None:
                    ready = max(ready, last + first.group_interval)
                if now < ready:
                    store.outbox_defer([m.key for m in members], ready)
                    continue
                message = group_notification(receiver, group, members)
            attempted += len(members)
            if not self._deliver(store, message, members, group):
                return attempted  # the receiver rests; its other notifications wait for the next round
        return attempted

    def _deliver(self, store: AlertStore, n: Notification, members: list[Notification] | None = None,
                 group: str = "") -> bool:
        """Send ``n`` (alone, or the message of a group of ``members``) and record the outcome for each member;
        False when it failed and may be retried (the receiver rests)."""
        keys = [m.key for m in members] if members else [n.key]
        notifier = self.notifiers.get(n.receiver)
        now = self.clock.now()
        if notifier is None:
            for k in keys:
                store.outbox_give_up(k, "failed", f"no such receiver {n.receiver!r}", now)
            log.error("notification %s: no such receiver %r", n.key, n.receiver)
            return True
        try:
            notifier.send(n)
        except DeliveryError as exc:
            now = self.clock.now()
            attempts = store.outbox_attempts(keys[0]) + 1
            if exc.permanent:
                for k in keys:
                    store.outbox_give_up(k, "failed", str(exc), now)
                log.error("notification %s to %s refused: %s", n.key, n.receiver, exc)
                return True
            if now - n.created >= self.ttl_s:
                for k in keys:
                    store.outbox_give_up(k, "expired", f"not delivered in {self.ttl_s:g} s: {exc}", now)
                log.error("notification %s to %s expired after %d attempts: %s", n.key, n.receiver, attempts, exc)
                return True
            wait = min(self.retry_initial_s * 2.0 ** (attempts - 1), self.retry_max_s)
            for k in keys:
                store.outbox_retry(k, str(exc), now + wait)
            # the receiver as a whole backs off too: a dead one is not probed each time a new notification is due
            fails = self._fails[n.receiver] = self._fails.get(n.receiver, 0) + 1
            rest = min(self.retry_initial_s * 2.0 ** (fails - 1), self.probe_max_s)
            self._rest[n.receiver] = now + rest
            log.warning("notification %s to %s failed (attempt %d; next in %.0f s), receiver rests %.0f s: %s", n.key,
                        n.receiver, attempts, wait, rest, exc)
            return False
        now = self.clock.now()
        if group:
            store.outbox_sent_group(n.receiver, group, keys, now)
        else:
            store.outbox_sent(n.key, now)
        # it answers again after failing (here, or before a restart): its backlog is due now, not on old timers
        if self._fails.pop(n.receiver, 0) or store.outbox_attempts(keys[0]) > 1:
            woken = store.outbox_wake(n.receiver, now)
            log.info("receiver %s is back: %d waiting notifications due now", n.receiver, woken)
        return True

    # ---- threads ----------------------------------------------------------------------------
    def start(self) -> None:
        for receiver in (*sorted(self.notifiers), None):
            t = threading.Thread(target=self._run, args=(receiver,), name=f"outbox-{receiver or 'unknown'}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        if self.escalator is not None:
            t = threading.Thread(target=self._escalate, name="outbox-escalation", daemon=True)
            t.start()
            self._threads.append(t)

    def _escalate(self) -> None:
        assert self.escalator is not None
        store = AlertStore(self.store_path)
        try:
            while not self._stop.wait(self.escalate_every_s):
                try:
                    self.escalator.run_once(store)
                except Exception:  # log, try again next round; never die silently
                    log.exception("escalation round failed")
        finally:
            store.close()

    def _run(self, receiver: str | None) -> None:
        store = AlertStore(self.store_path)  # a connection per thread
        try:
            while not self._stop.is_set():
                try:
                    busy = self._round(store, receiver) == self.batch
                except Exception:  # the store is busy or broken: log, wait, try again; never die silently
                    log.exception("outbox lane %s: a round failed", receiver or "(unknown receivers)")
                    busy = False
                if not busy:
                    self._stop.wait(self.poll_s)
        finally:
            store.close()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        for notifier in self.notifiers.values():
            notifier.close()
        self.store.close()
