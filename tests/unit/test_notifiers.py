"""Idempotency keys and webhook signatures: stable, and checkable by a receiver with three lines of code."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

import orjson
import pytest

from lifeline.notifiers.base import DeliveryError, Notification, notification_key
from lifeline.notifiers.log import LogNotifier, LogSettings
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


def test_log_channel_appends_one_json_line_per_notification_with_its_key(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    payload = {"id": "a1", "seq": 2, "rule": "gas.methane.high", "level": "red", "event": "escalated",
               "kind": "safety", "district": "Luyang", "subject": "GAS-1", "value": 55.0, "message": "CH4 55 %LEL",
               "at": "2026-11-29T08:00:00.000Z"}
    n = Notification(notification_key("a1", 2, "duty_log"), "duty_log", "a1", 2, 1.0, payload)
    path = tmp_path / "notify.jsonl"
    LogNotifier(LogSettings(str(path), lang="en")).send(n)
    LogNotifier(LogSettings(str(path), lang="zh")).send(n)
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert [x["key"] for x in lines] == [n.key, n.key]
    assert lines[0]["title"].startswith("[RED (level 1)] escalated")
    assert lines[1]["title"].startswith("【红色（一级）】")
    assert lines[0]["alert"] == payload
    with caplog.at_level(logging.WARNING, logger="lifeline.notify"):
        LogNotifier(LogSettings()).send(n)
    assert n.key in caplog.text
    with pytest.raises(DeliveryError, match="log file"):
        LogNotifier(LogSettings(str(tmp_path / "missing-dir" / "x.jsonl"))).send(n)
    assert LogSettings(str(tmp_path)).problems() == [f"path: {str(tmp_path)!r} is a directory; name a file"]
