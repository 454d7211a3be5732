"""Webhook: the alert transition as JSON, POSTed and signed with HMAC-SHA256.

Body (UTF-8 JSON, keys sorted): ``{"key": ..., "receiver": ..., "created": ..., "alert": <the alert event>}``.
Headers:

* ``X-Lifeline-Key``: the idempotency key (the same on every retry: drop a key you have seen);
* ``X-Lifeline-Timestamp``: the notification's creation time, integer epoch seconds;
* ``X-Lifeline-Signature``: ``sha256=`` + hex HMAC-SHA256 over ``<timestamp>.<body>`` with the shared secret.

A receiver checks the signature with ``verify`` (or the same three lines in its own language) and should
refuse timestamps far from its clock to stop replays. 2xx is delivered; 408, 429 and 5xx (and no answer)
are retried; any other answer is a permanent failure, shown to operators.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request
from dataclasses import dataclass

import orjson

from lifeline.notifiers.base import DeliveryError, Notification, Notifier, channel_problems, require_valid

RETRY_STATUS = frozenset({408, 429})


def body_of(n: Notification) -> bytes:
    return orjson.dumps({"key": n.key, "receiver": n.receiver, "created": n.created, "alert": n.payload},
                        option=orjson.OPT_SORT_KEYS)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """Does ``header`` (X-Lifeline-Signature) sign this timestamp and body with ``secret``?"""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret: str = ""  # empty: unsigned (not for production)
    timeout_s: float = 10.0

    def problems(self) -> list[str]:
        out = []
        if not self.url.startswith(("http://", "https://")):
            out.append(f"url: expected http(s)://... (got {self.url!r})")
        out.extend(channel_problems(None, self.timeout_s))
        return out


class WebhookNotifier(Notifier):
    kind = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        require_valid(settings, "webhook")
        self.settings = settings

    def send(self, n: Notification) -> None:
        body = body_of(n)
        ts = str(int(n.created))
        headers = {"Content-Type": "application/json", "User-Agent": "lifeline", "X-Lifeline-Key": n.key,
                   "X-Lifeline-Timestamp": ts}
        if self.settings.secret:
            headers["X-Lifeline-Signature"] = signature(self.settings.secret, ts, body)
        post(self.settings.url, body, headers, self.settings.timeout_s)


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float, *, shown: str | None = None) -> bytes:
    """POST ``body``; the answer's body on 2xx. Raises DeliveryError: permanent on 4xx other than 408/429,
    retried on 408, 429, 5xx and no answer. ``shown`` replaces the URL in messages (a URL with a token in it)."""
    where = shown or url
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        permanent = exc.code < 500 and exc.code not in RETRY_STATUS
        raise DeliveryError(f"HTTP {exc.code} from {where}: {exc.read()[:200]!r}", permanent=permanent) from exc
    except (OSError, ValueError) as exc:  # refused, reset, timeout, DNS: the receiver may come back
        raise DeliveryError(f"{where}: {exc}") from exc
