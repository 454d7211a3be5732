"""Grouped notifications: several transitions for one receiver that a route's ``group_by`` puts together go
out as one message (the dispatcher decides when: ``group_wait`` after the group's first, then at most every
``group_interval``).

The message's payload looks like an alert to the channels (``level``: the worst of its members, ``domain``,
``district``, ``rule`` when all members share it) with ``event: "group"``, the group's attributes, the
member transitions under ``alerts`` (oldest first) and their idempotency keys under ``keys``. Its own key is
derived from the receiver, the group and the member keys, so a retry of the same message has the same key,
and a receiver that drops member keys it has seen never acts twice on one transition.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from lifeline.model import Level
from lifeline.notifiers.base import Notification


def group_notification(receiver: str, group: str, members: Sequence[Notification]) -> Notification:
    if not members:
        raise ValueError("a group notification needs at least one member")
    keys = [m.key for m in members]
    key = "g" + hashlib.sha1("|".join([receiver, group, *sorted(keys)]).encode(),
                             usedforsecurity=False).hexdigest()[:23]
    alerts = [m.payload for m in members]
    worst = max((Level.parse(str(a["level"])) for a in alerts), default=Level.BLUE)

    def common(field: str) -> str:
        values = {str(a.get(field, "")) for a in alerts}
        return values.pop() if len(values) == 1 else ""

    by = dict(part.split("=", 1) for part in group.split("|", 1)[-1].split(",") if "=" in part)
    payload: dict[str, Any] = {
        "id": f"group:{group}", "seq": 0, "event": "group", "level": worst.colour, "level_cn": worst.cn,
        "kind": common("kind") or "mixed", "domain": common("domain"), "district": common("district"),
        "rule": common("rule"), "subject": common("subject"), "sensor": common("sensor"),
        "group": by, "count": len(alerts), "keys": keys, "alerts": alerts,
        "ts": max(float(a["ts"]) for a in alerts), "at": max(str(a.get("at", "")) for a in alerts),
    }
    return Notification(key, receiver, members[0].alert, 0, min(m.created for m in members), payload)
