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
    "zh": {"fired": "预警发布", "escalated": "预警升级", "deescalated": "预警降级", "resolved": "预警解除",
           "flapping": "状态频繁变化", "flapping_ended": "状态频繁变化结束", "overdue": "预警未确认",
           "repeat": "预警持续"},
    "en": {"fired": "alert", "escalated": "escalated", "deescalated": "de-escalated", "resolved": "resolved",
           "flapping": "flapping", "flapping_ended": "flapping ended", "overdue": "not acknowledged",
           "repeat": "still open"},
}
KIND_WORDS = {
    "zh": {"safety": "安全", "health": "设备", "nodata": "离线"},
    "en": {"safety": "safety", "health": "sensor health", "nodata": "sensor offline"},
}
_LABELS = {
    "zh": ("级别", "地点", "监测值", "规则", "处置预案", "确认预警", "时间"),
    "en": ("Level", "Place", "Value", "Rule", "Playbook", "Acknowledge", "Time"),
}


def _minutes(seconds: object) -> str:
    return f"{float(seconds) / 60:g}" if isinstance(seconds, int | float) else "?"


def _notice(notice: object, lang: str) -> list[str]:
    """The line that explains a notice from noise control or escalation (none for a plain transition)."""
    if not isinstance(notice, Mapping):
        return []
    kind = notice.get("kind")
    zh = lang == "zh"
    if kind == "flapping":
        n, w, q = notice.get("changes"), _minutes(notice.get("window_s")), _minutes(notice.get("quiet_s"))
        return [f"{w} 分钟内状态变化 {n} 次：暂停逐条通知，平稳 {q} 分钟后再报告（升级仍立即通知）。" if zh else
                f"It changed state {n} times within {w} min: further changes are held until it has been quiet "
                f"for {q} min (an escalation is still sent at once)."]
    if kind == "flapping_ended":
        q = _minutes(notice.get("quiet_s"))
        return [f"已平稳 {q} 分钟，以上为当前状态。" if zh else f"Quiet for {q} min; this is its current state."]
    if kind == "repeat":
        h = f"{float(notice.get('repeat_s') or 0) / 3600:g}"
        return [f"预警仍未解除（每 {h} 小时提醒一次）。" if zh else f"Still open (a reminder every {h} h)."]
    if kind == "overdue":
        m, step = _minutes(notice.get("deadline_s")), notice.get("step")
        to = "、".join(notice.get("escalated_to") or []) if zh else ", ".join(notice.get("escalated_to") or [])
        if zh:
            return [f"发布后 {m} 分钟内无人确认（第 {step} 次提醒）" + (f"，已升级至：{to}。" if to else "。")]
        return [f"Not acknowledged within {m} min (reminder {step})" + (f"; escalated to {to}." if to else ".")]
    return []


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    text: str


def render(alert: Mapping[str, Any], lang: str = "zh", console_url: str = "") -> Rendered:
    """Title and plain text of one alert transition (``AlertEvent.to_dict()``), or of a group of them
    (``event: group``, lifeline/alerting/grouping.py), in ``lang``."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)} (got {lang!r})")
    if alert.get("event") == "group":
        return _render_group(alert, lang, console_url)
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
        *_notice(alert.get("notice"), lang),
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


def _render_group(group: Mapping[str, Any], lang: str, console_url: str) -> Rendered:
    """One line per member transition, worst level in the title."""
    lv = LEVEL_WORDS[lang].get(str(group["level"]), str(group["level"]))
    by = group.get("group") or {}
    place = " / ".join(str(v) for v in by.values()) if isinstance(by, Mapping) else ""
    n = int(group.get("count") or len(group.get("alerts") or []))
    title = f"[{lv}] {n} alerts: {place}" if lang == "en" else f"【{lv}】{n} 条预警：{place}"
    base = console_url.rstrip("/")
    lines = []
    for a in group.get("alerts") or []:
        word = LEVEL_WORDS[lang].get(str(a.get("level")), str(a.get("level")))
        ev = EVENT_WORDS[lang].get(str(a.get("event")), str(a.get("event")))
        value = a.get("value")
        shown = f" {value:g}" if isinstance(value, int | float) else ""
        where = " / ".join(str(x) for x in (a.get("district"), a.get("subject") or a.get("sensor")) if x)
        when = a.get("at") or a.get("ts")
        lines.append(f"- {word} · {ev}: {a.get('title') or a.get('rule')} ({where}){shown} · {when}")
        if base:
            lines.append(f"  {base}/alerts/{quote(str(a.get('id')))}")
    return Rendered(title, "\n".join(lines) + "\n")
