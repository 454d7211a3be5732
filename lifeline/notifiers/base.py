"""The notification contract: what the outbox hands a channel, and how a channel says it failed.

A ``Notification`` is one alert transition for one receiver. Its ``key`` — derived from (alert id,
transition seq, receiver) — is the idempotency key: the outbox stores each key once, and every channel
passes it on (a webhook header, a message id) so that a receiver can drop a repeat. A repeat can happen
only if the process dies between a successful send and recording it; a restart never re-creates a
notification (the outbox row is keyed).

A channel's ``send`` returns when the receiver has accepted the message and raises ``DeliveryError``
otherwise: ``permanent`` when retrying cannot help (the receiver refused the message: HTTP 4xx other
than 408/429, a bad address), else the outbox retries with backoff until the notification expires.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from lifeline.model import AlertEvent


def notification_key(alert_id: str, seq: int, receiver: str) -> str:
    """The idempotency key of one transition for one receiver (stable across restarts and replays)."""
    return hashlib.sha1(f"{alert_id}|{seq}|{receiver}".encode(), usedforsecurity=False).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Notification:
    key: str
    receiver: str
    alert: str  # the alert id
    seq: int  # the transition
    created: float  # epoch seconds: when the outbox took it (the same on every retry)
    payload: dict[str, Any] = field(compare=False)  # the alert event (AlertEvent.to_dict())

    @classmethod
    def of(cls, event: AlertEvent, receiver: str, created: float) -> Notification:
        """The notification of an ``AlertEvent`` for ``receiver``."""
        return cls(notification_key(event.id, event.seq, receiver), receiver, event.id, event.seq, created,
                   event.to_dict())


class DeliveryError(Exception):
    """The receiver did not accept the message; ``permanent``: retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class _Checkable(Protocol):
    def problems(self) -> list[str]: ...


def require_valid(settings: _Checkable, what: str) -> None:
    """Raise ValueError naming every problem of a channel's settings (they are checked once, when built)."""
    problems = settings.problems()
    if problems:
        raise ValueError(f"{what} settings: " + "; ".join(problems))


class Notifier(ABC):
    """One configured receiver's channel (a URL and its secret, a mailbox, a robot)."""

    kind: ClassVar[str] = ""

    @abstractmethod
    def send(self, n: Notification) -> None:
        """Deliver ``n``, or raise ``DeliveryError``."""
