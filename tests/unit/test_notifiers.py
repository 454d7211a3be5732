"""Idempotency keys and webhook signatures: stable, and checkable by a receiver with three lines of code."""

from __future__ import annotations

import hashlib
import hmac

from lifeline.notifiers.base import Notification, notification_key
from lifeline.notifiers.webhook import WebhookSettings, body_of, signature, verify


def test_key_is_stable_and_differs_per_transition_and_receiver() -> None:
    k = notification_key("a1b2c3", 2, "gas_company")
    assert k == hashlib.sha1(b"a1b2c3|2|gas_company").hexdigest()[:24]
    assert len({k, notification_key("a1b2c3", 3, "gas_company"), notification_key("a1b2c3", 2, "control_centre")}) == 3


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    n = Notification("k1", "r", "a", 1, 1784044800.0, {"id": "a", "level": "red"})
    body = body_of(n)
    assert body == b'{"alert":{"id":"a","level":"red"},"created":1784044800.0,"key":"k1","receiver":"r"}'
    sig = signature("secret", "1784044800", body)
    assert sig == "sha256=" + hmac.new(b"secret", b"1784044800." + body, hashlib.sha256).hexdigest()
    assert verify("secret", "1784044800", body, sig)
    assert not verify("other", "1784044800", body, sig) and not verify("secret", "1784044801", body, sig)


def test_settings_problems_are_named() -> None:
    assert WebhookSettings("ftp://x", timeout_s=0).problems() == ["url: expected http(s)://... (got 'ftp://x')",
                                                                   "timeout_s: must be positive (got 0)"]
