"""Message templates: the level by word and colour, the place, value, rule and the console links, in zh and en."""

from __future__ import annotations

import pytest

from lifeline.notifiers.templates import render

ALERT = {"id": "a1", "rule": "water.main.burst", "kind": "safety", "level": "orange", "event": "escalated",
         "district": "SS", "subject": "SS-WAT-M2-N1", "sensor": "SS-WAT-M2-N1", "value": 0.214,
         "message": "Burst suspected at SS-WAT-M2-N1", "title": "Suspected water main burst",
         "at": "2026-07-15T02:44:00.000Z"}


def test_english_names_level_place_value_rule_and_links() -> None:
    r = render(ALERT, "en", "https://console.example/")
    assert r.title == "[ORANGE (level 2)] escalated: Suspected water main burst (SS / SS-WAT-M2-N1)"
    assert r.text.splitlines() == [
        "Burst suspected at SS-WAT-M2-N1", "", "Level: ORANGE (level 2) · escalated · safety",
        "Place: SS / SS-WAT-M2-N1", "Value: 0.214", "Rule: water.main.burst", "Time: 2026-07-15T02:44:00.000Z",
        "Playbook: https://console.example/rules/water.main.burst#playbook",
        "Acknowledge: https://console.example/alerts/a1"]


def test_chinese_and_no_links_without_a_console() -> None:
    r = render({**ALERT, "kind": "health", "value": None}, "zh")
    assert r.title == "【橙色（二级）】设备预警升级：Suspected water main burst（SS / SS-WAT-M2-N1）"
    assert "监测值: -" in r.text and "https://" not in r.text
    with pytest.raises(ValueError, match="lang must be one of zh, en"):
        render(ALERT, "fr")
