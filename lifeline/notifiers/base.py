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


def notification_key(alert_id: str, seq: int, receiver: str, tag: str = "") -> str:
    """The idempotency key of one transition for one receiver (stable across restarts and replays); ``tag``
    names a notice that is not a transition of its own (``flapping@<ts>``, ``overdue1``)."""
    material = f"{alert_id}|{seq}|{receiver}" + (f"|{tag}" if tag else "")
    return hashlib.sha1(material.encode(), usedforsecurity=False).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Notification:
    key: str
    receiver: str
    alert: str  # the alert id
    seq: int  # the transition
    created: float  # epoch seconds: when the outbox took it (the same on every retry)
    payload: dict[str, Any] = field(compare=False)  # the alert event (AlertEvent.to_dict()), maybe with a "notice"
    state: str = "pending"  # as stored: pending, or why it is not sent (silenced, inhibited, flapping, ...)
    note: str = ""  # why (the silence, the inhibiting alert), for operators
    group: str = ""  # the routing group it goes out in (with others for the same receiver), "" alone
    group_wait: float = 0.0  # a new group's first message waits this long for more members ...
    group_interval: float = 0.0  # ... and later ones at least this long after the group's last

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


def channel_problems(lang: str | None, timeout_s: float, server: tuple[str, int] | None = None) -> list[str]:
    """The checks channels' settings share: the server's host and port (when they name one), the template
    language (None: no text rendered) and the timeout."""
    from lifeline.notifiers.templates import LANGS

    out = []
    if server is not None:
        if not server[0]:
            out.append("host: must not be empty")
        if not 0 < server[1] < 65536:
            out.append(f"port: must be in 1..65535 (got {server[1]})")
    if lang is not None and lang not in LANGS:
        out.append(f"lang: must be one of {', '.join(LANGS)} (got {lang!r})")
    if not timeout_s > 0:
        out.append(f"timeout_s: must be positive (got {timeout_s})")
    return out


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

    def close(self) -> None:  # noqa: B027 - most channels hold nothing open
        """Release what the channel holds open (a broker connection)."""
