"""``lifeline silence``: silence alerts for a while (roadworks, a planned shutdown), list silences, end one.

An alert under a silence is still stored and shown, marked silenced; its notifications are recorded in the
outbox as ``silenced`` with the silence's id, who made it and why, and never sent. Every silence and its
end are in the audit log. A running ``lifeline run`` picks a change up with its next batch. Recurring
maintenance windows belong in the routing file (``maintenance:``, docs/delivery.md).

matchers (every one must hold; repeat --match): domain=gas  district=Luyang  level=>=orange  rule=gas.*
  kind=safety  sensor=GAS-LY-0012  owner=...  labels.building=B12

examples:
  lifeline silence add --match domain=gas --match district=Luyang --for 8h \\
      --by li.wei --reason "gas main replacement, Changjiang Rd (permit 2026-118)"
  lifeline silence add --match domain=gas --polygon works.geojson --from 2026-12-01T08:00+08:00 \\
      --until 2026-12-05T18:00+08:00 --by li.wei --reason "roadworks"
  lifeline silence list
  lifeline silence expire S-1a2b3c4d --by li.wei --reason "works finished early"
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import orjson

from lifeline.alerting.matchers import Match, match_from
from lifeline.commands.alerts import login_name
from lifeline.errors import ConfigError, StoreError
from lifeline.sinks.store import AlertStore
from lifeline.timefmt import parse_duration, parse_ts, rfc3339


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("silence", help="silence alerts for a while; list and end silences (audited)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default="var/lifeline.db", help="SQLite alert store (default: %(default)s)")
    acts = p.add_subparsers(dest="action", metavar="{add,list,expire}", required=True)
    add = acts.add_parser("add", help="create a silence")
    add.add_argument("--match", action="append", default=[], metavar="KEY=VALUE",
                     help="a matcher (repeat; all must hold): domain, district, level, rule, kind, sensor, owner, "
                          "labels.NAME")
    add.add_argument("--polygon", type=Path, default=None,
                     help="only sensors inside this area: a GeoJSON file (Polygon, Feature or FeatureCollection; "
                          "the first polygon's outer ring)")
    add.add_argument("--from", dest="starts", default=None, help="start, RFC 3339 (default: now)")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--until", default=None, help="end, RFC 3339 with an offset (2026-12-05T18:00+08:00)")
    when.add_argument("--for", dest="duration", default=None, help="length from the start (8h, 2d, 90m)")
    add.add_argument("--by", default=None, help="who (default: the login name)")
    add.add_argument("--reason", required=True, help="why (shown with every alert it silences)")
    ls = acts.add_parser("list", help="silences that have not ended (--all: every one, with who ended it)")
    ls.add_argument("--all", action="store_true", help="also ended and expired silences")
    ex = acts.add_parser("expire", help="end a silence now")
    ex.add_argument("id", help="silence id (S-...)")
    ex.add_argument("--by", default=None, help="who (default: the login name)")
    ex.add_argument("--reason", default="", help="why")
    p.set_defaults(func=cmd_silence)


def parse_matchers(items: list[str]) -> Match:
    """``KEY=VALUE`` flags (``labels.NAME=VALUE`` for a registry label) as one ``Match``; ConfigError names
    every bad one."""
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            problems.append(f"--match {item!r}: expected KEY=VALUE (domain=gas, level=>=orange)")
        elif key.startswith("labels."):
            raw.setdefault("labels", {})[key[len("labels."):]] = value
        else:
            raw[key] = value
    match = match_from(raw, lambda k, msg: problems.append(f"--match {'.'.join(k)}: {msg}"))
    if not items:
        problems.append("at least one --match is required (a silence of everything is not allowed)")
    if problems:
        raise ConfigError("\n".join(problems))
    return match


def read_polygon(path: Path) -> tuple[tuple[float, float], ...]:
    """The outer ring of the first polygon in a GeoJSON file."""
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read GeoJSON: {exc}") from None
    geom = doc
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection" and doc.get("features"):
        geom = doc["features"][0]
    if isinstance(geom, dict) and geom.get("type") == "Feature":
        geom = geom.get("geometry")
    coords: Any = geom.get("coordinates") if isinstance(geom, dict) else None
    if isinstance(geom, dict) and geom.get("type") == "MultiPolygon" and coords:
        coords = coords[0]
    if not (isinstance(geom, dict) and geom.get("type") in ("Polygon", "MultiPolygon") and coords
            and isinstance(coords[0], list) and len(coords[0]) >= 3):
        raise ConfigError(f"{path}: expected a GeoJSON Polygon (or a Feature / FeatureCollection holding one)")
    ring = []
    for pt in coords[0]:
        if not (isinstance(pt, list) and len(pt) >= 2 and all(isinstance(c, int | float) for c in pt[:2])
                and -180 <= pt[0] <= 180 and -90 <= pt[1] <= 90):
            raise ConfigError(f"{path}: polygon point {pt!r} is not [lon, lat] in degrees")
        ring.append((float(pt[0]), float(pt[1])))
    return tuple(ring)


def cmd_silence(args: argparse.Namespace) -> int:
    if args.db != ":memory:" and not os.path.exists(args.db):
        raise StoreError(f"no alert store at {args.db} (start 'lifeline run' or 'lifeline demo', or pass --db)")
    now = time.time()
    with AlertStore(args.db) as store:
        if args.action == "list":
            rows = store.silences(include_expired=True) if args.all else store.silences(at=now)
            if not rows:
                print("no silences")
            for w in rows:
                end = f"ended by {w.extra['expired_by']}" if w.extra.get("expired_by") else ""
                print(f"{w.id}  {rfc3339(w.starts)} .. {rfc3339(w.ends)}  {w.match}"
                      f"{'  (polygon)' if w.polygon else ''}  by {w.created_by}: {w.reason}  {end}".rstrip())
            return 0
        actor = args.by or login_name()
        if args.action == "expire":
            w = store.silence_expire(args.id, actor, args.reason, now)
            print(f"silence {w.id} ended at {rfc3339(w.ends)} by {actor}")
            return 0
        match = parse_matchers(args.match)
        polygon = read_polygon(args.polygon) if args.polygon else None
        try:
            starts = parse_ts(args.starts) if args.starts else now
            ends = parse_ts(args.until) if args.until else starts + parse_duration(args.duration)
        except ValueError as exc:
            raise ConfigError(f"silence time: {exc}") from None
        w = store.silence_add(match, starts, ends, actor, args.reason, now, polygon)
        print(f"silence {w.id}: {w.match}{' inside the polygon' if polygon else ''} from {rfc3339(w.starts)} "
              f"until {rfc3339(w.ends)}, by {actor}: {w.reason}")
    return 0
