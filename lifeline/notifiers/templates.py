"""Message templates for people (e-mail now; the IM robots next): one alert transition in Chinese or English.

Every message names the level by word and colour (colour-blind readers, black-and-white printouts), the
place (district, sensor or group, asset), the value and the rule's own message, the rule id, and two
links into the console: the alert (to acknowledge it) and the rule's playbook. Pure functions of the
event: the same transition renders the same text on every retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

LANGS = ("zh", "en")
LEVEL_WORDS = {
    "zh": {"red": "红色（一级）", "orange": "橙色（二级）", "yellow": "黄色（三级）", "blue": "蓝色（四级）"},
    "en": {"red": "RED (level 1)", "orange": "ORANGE (level 2)", "yellow": "YELLOW (level 3)",
           "blue": "BLUE (level 4)"},
}
EVENT_WORDS = {
    "zh": {"fired": "预警发布", "escalated": "预警升级", "deescalated": "预警降级", "resolved": "预警解除"},
    "en": {"fired": "alert", "escalated": "escalated", "deescalated": "de-escalated", "resolved": "resolved"},
}
KIND_WORDS = {
    "zh": {"safety": "安全", "health": "设备", "nodata": "离线"},
    "en": {"safety": "safety", "health": "sensor health", "nodata": "sensor offline"},
}
_LABELS = {
    "zh": ("级别", "地点", "监测值", "规则", "处置预案", "确认预警", "时间"),
    "en": ("Level", "Place", "Value", "Rule", "Playbook", "Acknowledge", "Time"),
}


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    text: str


def render(alert: Mapping[str, Any], lang: str = "zh", console_url: str = "") -> Rendered:
    """Title and plain text of one alert transition (``AlertEvent.to_dict()``) in ``lang``."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)} (got {lang!r})")
    level, event, kind = str(alert["level"]), str(alert["event"]), str(alert.get("kind", "safety"))
    lv = LEVEL_WORDS[lang].get(level, level)
    ev = EVENT_WORDS[lang].get(event, event)
    kd = KIND_WORDS[lang].get(kind, kind)
    name = alert.get("title") or alert["rule"]
    place = " / ".join(str(x) for x in (alert.get("district"), alert.get("subject") or alert.get("sensor")) if x)
    title = f"[{lv}] {ev}: {name} ({place})" if lang == "en" else f"【{lv}】{kd}{ev}：{name}（{place}）"
    value = alert.get("value")
    lab = _LABELS[lang]
    base = console_url.rstrip("/")
    lines = [
        str(alert.get("message") or name),
        "",
        f"{lab[0]}: {lv} · {ev} · {kd}",
        f"{lab[1]}: {place}",
        f"{lab[2]}: {value:g}" if isinstance(value, int | float) else f"{lab[2]}: -",
        f"{lab[3]}: {alert['rule']}",
        f"{lab[6]}: {alert.get('at') or alert.get('ts')}",
    ]
    if base:
        lines += [f"{lab[4]}: {base}/rules/{quote(str(alert['rule']))}#playbook",
                  f"{lab[5]}: {base}/alerts/{quote(str(alert['id']))}"]
    return Rendered(title, "\n".join(lines) + "\n")
