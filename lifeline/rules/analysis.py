"""The analysis parts of a threshold rule: ``detector:`` and ``neighbourhood:`` (and ``threshold.on``).

Each reader checks one block, reports every problem through the pack's ``Checker`` at its exact
path, and returns the ``Rule`` fields it contributes (nothing when the block has a problem). Never
raises on bad input, never reads files, never runs rule text.
"""

from __future__ import annotations

from typing import Any, Final

from lifeline.config.yamlmarks import Checker, PathKey, describe
from lifeline.rules.model import Neighbourhood

NEIGHBOURHOOD_KEYS: Final = ("group_by", "member_above", "member_below", "window", "measure", "min_others", "offsets",
                              "learn", "quorum", "smooth")


def read_detector(ck: Checker, path: PathKey, m: dict[str, Any]) -> dict[str, Any]:
    """``detector: {type: robust_zscore, window: 60}`` and ``threshold.on: score | value``."""
    from lifeline.detectors import DETECTORS, ParamError

    out: dict[str, Any] = {}
    t = m.get("threshold")
    on = t.get("on", "score") if isinstance(t, dict) else "score"
    if on not in ("score", "value"):
        ck.report((*path, "threshold", "on"), f"expected 'score' or 'value' (got {describe(on)})")
    elif "detector" not in m and isinstance(t, dict) and "on" in t:
        ck.report((*path, "threshold", "on"), "'on' applies only to a rule with a 'detector'", key=True)
    if "detector" not in m:
        return out
    where = (*path, "detector")
    raw = m["detector"]
    if not isinstance(raw, dict) or "type" not in raw:
        ck.report(where, f"expected a mapping with 'type' and the detector's parameters (got {describe(raw)})")
        return out
    kind = raw["type"]
    if not isinstance(kind, str) or kind not in DETECTORS:
        hint = (DETECTORS.suggest(kind) if isinstance(kind, str) else "") or f" (known: {', '.join(DETECTORS.names())})"
        ck.report((*where, "type"), f"unknown detector {describe(kind)}{hint}")
        return out
    cls = DETECTORS.get(kind)
    params = {k: v for k, v in raw.items() if k != "type"}
    try:
        cls.from_config(params)
    except ParamError as exc:
        for name, message in exc.problems:
            ck.report((*where, name) if name in params else where, message, key=message.startswith("unknown"))
        return out
    out.update(detector=kind, detector_params=params, detector_on=on, health=cls.health)
    return out


def read_neighbourhood(ck: Checker, path: PathKey, m: dict[str, Any], metric: str | None) -> dict[str, Any]:
    """``neighbourhood: {group_by: corridor, member_above: 5, window: 15m, measure: count}``."""
    if "neighbourhood" not in m:
        return {}
    where = (*path, "neighbourhood")
    before = len(ck.problems)
    n = ck.mapping(m["neighbourhood"], where, NEIGHBOURHOOD_KEYS, ("group_by",))
    if n is None:
        return {}
    match = m.get("match")
    if metric is None and not (isinstance(match, dict) and "value" in match):
        ck.report(where, "a neighbourhood compares one metric or value across sensors: use match.metric or "
                  "match.value", key=True)
    measure = n.get("measure", "count")
    if measure not in ("count", "isolated", "residual", "quorum"):
        ck.report((*where, "measure"),
                  f"expected 'count', 'isolated', 'residual' or 'quorum' (got {describe(measure)})")
    if "detector" in m:
        ck.report(where, "'neighbourhood' and 'detector' cannot both be given", key=True)
    group_by = ck.string(n["group_by"], (*where, "group_by")) if "group_by" in n else None
    bounds = [k for k in ("member_above", "member_below") if k in n]
    if measure in ("residual", "quorum"):
        for k in bounds:
            ck.report((*where, k), f"'{k}' has no effect with 'measure: {measure}'", key=True)
    if measure == "quorum":
        for key in ("offsets", "learn", "min_others", "smooth"):
            if key in n:
                ck.report((*where, key), f"'{key}' has no effect with 'measure: quorum'", key=True)
    elif measure != "residual":
        if len(bounds) != 1:
            ck.report(where, "give exactly one of 'member_above' or 'member_below' (what counts as elevated)")
        for key in ("offsets", "learn", "smooth"):
            if key in n:
                ck.report((*where, key), f"'{key}' applies only to 'measure: residual'", key=True)
    if measure == "residual" and "learn" in n and "offsets" not in n:
        ck.report((*where, "learn"), "'learn' has no effect without 'offsets'", key=True)
    tau = ck.duration(n["offsets"], (*where, "offsets")) if "offsets" in n else None
    smooth = ck.duration(n["smooth"], (*where, "smooth")) if "smooth" in n else None
    if smooth is not None and not smooth > 0:
        ck.report((*where, "smooth"), "must be a positive duration (the time constant of the average)")
    learn = ck.duration(n["learn"], (*where, "learn")) if "learn" in n else 3600.0
    if tau is not None and not tau > 0:
        ck.report((*where, "offsets"), "must be a positive duration (the time constant of the usual gaps)")
    values = {k: ck.number(n[k], (*where, k)) for k in bounds}
    window = ck.duration(n["window"], (*where, "window")) if "window" in n else 900.0
    others = ck.number(n["min_others"], (*where, "min_others"), minimum=1) if "min_others" in n else 2
    if "quorum" in n and measure != "quorum":
        ck.report((*where, "quorum"), "'quorum' applies only to 'measure: quorum'", key=True)
    quorum = ck.number(n["quorum"], (*where, "quorum"), minimum=1) if "quorum" in n else 2
    if quorum is not None and quorum != int(quorum):
        ck.report((*where, "quorum"), f"expected a whole number of members (got {n['quorum']})")
    if (len(ck.problems) > before or group_by is None or window is None or None in values.values() or others is None
            or quorum is None):
        return {}
    hood = Neighbourhood(group_by, values.get("member_above"), values.get("member_below"), window, measure,
                         int(others), tau, learn if learn is not None else 3600.0, int(quorum), smooth)
    return {"neighbourhood": hood, "health": measure not in ("count", "quorum")}
