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

from lifeline.clock import Clock, SystemClock
from lifeline.notifiers.base import DeliveryError, Notification, Notifier
from lifeline.sinks.store import AlertStore

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, store_path: str | Path, notifiers: Mapping[str, Notifier], *, clock: Clock | None = None,
                 retry_initial_s: float = 2.0, retry_max_s: float = 300.0, ttl_s: float = 86_400.0,
                 poll_s: float = 0.5, batch: int = 100) -> None:
        if not 0 < retry_initial_s <= retry_max_s:
            raise ValueError(f"need 0 < retry_initial_s <= retry_max_s (got {retry_initial_s}, {retry_max_s})")
        if not ttl_s > 0 or not poll_s > 0 or batch < 1:
            raise ValueError(f"ttl_s and poll_s must be positive and batch at least 1 (got {ttl_s}, {poll_s}, {batch})")
        self.store = AlertStore(store_path)
        self.notifiers = dict(notifiers)
        self.clock = clock or SystemClock()
        self.retry_initial_s, self.retry_max_s, self.ttl_s = retry_initial_s, retry_max_s, ttl_s
        self.poll_s, self.batch = poll_s, batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Attempt every notification due now; the number attempted."""
        due = self.store.outbox_due(self.clock.now(), self.batch)
        for n in due:
            self._deliver(n)
        return len(due)

    def _deliver(self, n: Notification) -> None:
        notifier = self.notifiers.get(n.receiver)
        now = self.clock.now()
        if notifier is None:
            self.store.outbox_give_up(n.key, "failed", f"no such receiver {n.receiver!r}", now)
            log.error("notification %s: no such receiver %r", n.key, n.receiver)
            return
        try:
            notifier.send(n)
        except DeliveryError as exc:
            now = self.clock.now()
            attempts = self.store.outbox_attempts(n.key) + 1
            if exc.permanent:
                self.store.outbox_give_up(n.key, "failed", str(exc), now)
                log.error("notification %s to %s refused: %s", n.key, n.receiver, exc)
            elif now - n.created >= self.ttl_s:
                self.store.outbox_give_up(n.key, "expired", f"not delivered in {self.ttl_s:g} s: {exc}", now)
                log.error("notification %s to %s expired after %d attempts: %s", n.key, n.receiver, attempts, exc)
            else:
                wait = min(self.retry_initial_s * 2.0 ** (attempts - 1), self.retry_max_s)
                self.store.outbox_retry(n.key, str(exc), now + wait)
                log.warning("notification %s to %s failed (attempt %d), next in %.0f s: %s", n.key, n.receiver,
                            attempts, wait, exc)
            return
        self.store.outbox_sent(n.key, self.clock.now())

    # ---- thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-dispatcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once() == self.batch
            except Exception:  # the store is busy or broken: log, wait, try again; never die silently
                log.exception("outbox dispatcher: a round failed")
                busy = False
            if not busy:
                self._stop.wait(self.poll_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.store.close()
