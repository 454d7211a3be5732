"""The dispatcher's pacing against a receiver that is down and comes back, on a manual clock: the receiver
as a whole backs off (a dead one is not probed each time a new notification falls due), and once it answers
again its whole backlog is due at once instead of on each notification's old retry timer."""

from __future__ import annotations

from pathlib import Path

from lifeline.alerting.outbox import Dispatcher
from lifeline.clock import ManualClock
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level
from lifeline.notifiers.base import DeliveryError, Notification, Notifier
from lifeline.sinks.store import AlertStore

T0 = 1_764_403_200.0


class Flaky(Notifier):
    """A channel whose receiver is down while ``down`` is set (every attempt is counted)."""

    kind = "flaky"

    def __init__(self) -> None:
        self.down = True
        self.attempts = 0
        self.got: list[str] = []

    def send(self, n: Notification) -> None:
        self.attempts += 1
        if self.down:
            raise DeliveryError("connection refused")
        self.got.append(n.key)


def _queue(db: Path, i: int, now: float) -> None:
    e = AlertEvent(id=f"A{i}", seq=1, rule="gas.methane.high", kind=AlertKind.SAFETY, subject=f"S{i}", sensor=f"S{i}",
                   domain="gas", district="LY", level=Level.RED, state=AlertState.FIRING, event=EventKind.FIRED,
                   started=now, ts=now, value=1.0, message="m")
    with AlertStore(db) as store:
        store.commit_batch([e], notifications=[Notification.of(e, "hook", now)])


def test_a_dead_receiver_is_backed_off_as_a_whole_and_its_backlog_flushes_when_it_returns(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    db = tmp_path / "l.db"
    hook = Flaky()
    d = Dispatcher(db, {"hook": hook}, clock=clock, retry_initial_s=2.0, retry_max_s=64.0)
    # a new notification every 5 s for 5 minutes while the receiver is down
    for i in range(60):
        _queue(db, i, clock.now())
        d.run_once()
        clock.advance(5.0)
    # per-notification timers alone would have tried about once per new notification (60+); the receiver's
    # own backoff (2, 4, 8, 16 s, then every 30 s) keeps it to a dozen
    assert hook.attempts <= 15, hook.attempts
    hook.down = False
    clock.advance(30.0)  # the longest a returned receiver waits for its next probe
    d.run_once()  # the probe succeeds and wakes the rest ...
    d.run_once()  # ... all 60 delivered now, none left on its old timer (they had backed off up to 64 s)
    assert len(hook.got) == 60 and len(set(hook.got)) == 60
    with AlertStore(db) as store:
        assert store.outbox_counts() == {"sent": 60}
    d.stop()
