"""``lifeline alerts``: list, show and act on alerts in the store (acknowledge, resolve, comment).

Every action is kept in the alert's history with who did it and why.

examples:
  lifeline alerts list                       # open alerts, worst first
  lifeline alerts list --state all --domain gas --level orange
  lifeline alerts show 3f2a9c                # an id prefix is enough when unique
  lifeline alerts ack 3f2a9c --by zhang.wei --reason "crew dispatched"
  lifeline alerts resolve 3f2a9c --by zhang.wei --reason "valve replaced"
  lifeline alerts comment 3f2a9c --by li.na --text "gas company on site 14:20"
  lifeline alerts deliveries 3f2a9c          # its notifications: sent, pending, failed, silenced, ...
  lifeline alerts outbox --state awaiting_approval
  lifeline alerts approve 9be1c2d07a3f --by chen.jie --reason "confirmed by the gas company"
  lifeline alerts reject 9be1c2d07a3f --by chen.jie --reason "sensor fault, no public warning"
  lifeline alerts response-times --since 7d  # per department: time to acknowledge and to resolve
  lifeline alerts audit                      # silences made and ended, newest first
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import orjson

from lifeline.errors import StoreError
from lifeline.sinks.store import AlertRow, AlertStore, HistoryEntry, OutboxRow
from lifeline.timefmt import parse_duration, rfc3339

_ANSI = {"blue": "34", "yellow": "33", "orange": "38;5;208", "red": "31;1"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("alerts", help="list, show, acknowledge, resolve and comment alerts", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default="var/lifeline.db", help="SQLite alert store (default: %(default)s)")
    acts = p.add_subparsers(dest="action", required=True,
                            metavar="{list,show,ack,resolve,comment,deliveries,outbox,approve,reject,"
                                    "response-times,audit}")
    ls = acts.add_parser("list", help="current alerts, worst level first")
    ls.add_argument("--state", default="open", choices=["open", "firing", "acknowledged", "resolved", "all"],
                    help="default: open (firing or acknowledged)")
    ls.add_argument("--domain", default=None, help="only this domain (gas, water, ...)")
    ls.add_argument("--level", default=None, choices=["blue", "yellow", "orange", "red"], help="at least this level")
    ls.add_argument("--limit", type=int, default=200, help="at most this many rows (default: %(default)s)")
    ls.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    show = acts.add_parser("show", help="one alert and its full history")
    show.add_argument("id", help="alert id (or a unique prefix)")
    for name, helptext, field in (("ack", "acknowledge: a person has seen it and owns it", "--reason"),
                                  ("resolve", "resolve by hand (with a reason)", "--reason"),
                                  ("comment", "add a note to the history", "--text")):
        a = acts.add_parser(name, help=helptext)
        a.add_argument("id", help="alert id (or a unique prefix)")
        a.add_argument("--by", default=None, help="who (default: the login name)")
        a.add_argument(field, dest="text", required=name != "ack", default="", help="why / what")
    dl = acts.add_parser("deliveries", help="one alert's notifications and what became of each")
    dl.add_argument("id", help="alert id (or a unique prefix)")
    ob = acts.add_parser("outbox", help="notifications by state (default: those not delivered)")
    ob.add_argument("--state", default=None, help="pending, awaiting_approval, sent, failed, expired, rejected, "
                                                  "silenced, inhibited, flapping, suppressed (default: pending, "
                                                  "awaiting_approval, failed and expired)")
    for name, helptext in (("approve", "a supervisor approves a red / orange warning for publication"),
                           ("reject", "a supervisor rejects a red / orange warning (it is not published)")):
        a = acts.add_parser(name, help=helptext)
        a.add_argument("key", help="the notification's key (lifeline alerts outbox --state awaiting_approval)")
        a.add_argument("--by", default=None, help="who (default: the login name)")
        a.add_argument("--reason", required=True, help="why")
    rt = acts.add_parser("response-times", help="per department: time to acknowledge and to resolve")
    rt.add_argument("--since", default="30d", help="alerts that started this long ago or later (default: "
                                                   "%(default)s)")
    rt.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    au = acts.add_parser("audit", help="the audit log (silences made and ended), newest first")
    au.add_argument("--limit", type=int, default=50, help="at most this many entries (default: %(default)s)")
    p.set_defaults(func=cmd_alerts)


def cmd_alerts(args: argparse.Namespace) -> int:
    if args.db != ":memory:" and not os.path.exists(args.db):
        raise StoreError(f"no alert store at {args.db} (start 'lifeline run' or 'lifeline demo', or pass --db)")
    with AlertStore(args.db) as store:
        if args.action in _STORE_VIEWS:
            return _STORE_VIEWS[args.action](store, args)
        if args.action == "list":
            state = None if args.state == "all" else args.state
            rows = store.list_alerts(state=state, domain=args.domain, level=args.level, limit=args.limit)
            if args.json:
                for r in rows:
                    sys.stdout.write(orjson.dumps(_row_dict(r)).decode() + "\n")
            else:
                print_table(rows, sys.stdout)
            return 0
        row = resolve_id(store, args.id)
        if args.action == "show":
            print_alert(row, store.history(row.id), sys.stdout)
            print_deliveries(store.outbox_of(row.id), sys.stdout)
            return 0
        if args.action == "deliveries":
            print_deliveries(store.outbox_of(row.id), sys.stdout)
            return 0
        actor = args.by or login_name()
        now = time.time()
        if args.action == "ack":
            row = store.ack(row.id, actor, args.text, now)
        elif args.action == "resolve":
            row = store.resolve(row.id, actor, args.text, now)
        else:
            row = store.comment(row.id, actor, args.text, now)
        print(f"{args.action}: alert {row.id} ({row.rule} on {row.subject}) is now {row.state}, by {actor}")
    return 0


def _outbox(store: AlertStore, args: argparse.Namespace) -> int:
    states = [args.state] if args.state else ["pending", "awaiting_approval", "failed", "expired"]
    print_deliveries([r for s in states for r in store.outbox_rows(s)], sys.stdout)
    return 0


def _decide(store: AlertStore, args: argparse.Namespace) -> int:
    actor = args.by or login_name()
    row = store.outbox_decide(args.key, args.action == "approve", actor, args.reason, time.time())
    print(f"{args.action}: notification {row.key} of alert {row.alert} to {row.receiver} is now {row.state}, "
          f"by {actor}")
    return 0


def _response_times(store: AlertStore, args: argparse.Namespace) -> int:
    try:
        since = time.time() - parse_duration(args.since)
    except ValueError as exc:
        raise StoreError(f"--since: {exc}") from None
    rows = store.response_times(since=since)
    if args.json:
        for r in rows:
            sys.stdout.write(orjson.dumps(r).decode() + "\n")
        return 0
    if not rows:
        print(f"no safety alerts started in the last {args.since}")
        return 0

    def m(x: object) -> str:
        return "-" if not isinstance(x, int | float) else f"{x / 60:.1f}"

    print(f"{'DEPARTMENT':<32} {'ALERTS':>6} {'ACKED':>6} {'ACK MED':>8} {'ACK P90':>8} {'RESOLVED':>8} "
          f"{'RES MED':>8} {'RES P90':>8}   (minutes)")
    for r in rows:
        print(f"{str(r['department'])[:32]:<32} {r['alerts']:>6} {r['acknowledged']:>6} {m(r['ack_median_s']):>8} "
              f"{m(r['ack_p90_s']):>8} {r['resolved']:>8} {m(r['resolve_median_s']):>8} {m(r['resolve_p90_s']):>8}")
    return 0


def _audit(store: AlertStore, args: argparse.Namespace) -> int:
    entries = store.audit_log(args.limit)
    if not entries:
        print("the audit log is empty")
    for ts, actor, action, obj, detail in entries:
        print(f"{rfc3339(ts)}  {actor:<16} {action:<16} {obj}  {detail}")
    return 0


_STORE_VIEWS = {"outbox": _outbox, "approve": _decide, "reject": _decide, "response-times": _response_times,
                "audit": _audit}


def print_deliveries(rows: Sequence[OutboxRow], out: TextIO) -> None:
    if not rows:
        print("no notifications", file=out)
        return
    print("deliveries", file=out)
    for r in rows:
        detail = r.last_error or r.note
        done = f" at {rfc3339(r.done_at)}" if r.done_at else ""
        print(f"  {r.key}  {r.receiver:<18} seq {r.seq:<3} {r.state:<17} tries {r.attempts}{done}"
              f"{'  ' + detail if detail else ''}", file=out)


def _row_dict(row: AlertRow) -> dict[str, object]:
    d: dict[str, object] = {k: getattr(row, k) for k in AlertRow.__slots__}
    d["level"] = row.level.colour
    return d


def login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def resolve_id(store: AlertStore, prefix: str) -> AlertRow:
    row = store.get(prefix)
    if row is not None:
        return row
    found = store.find(prefix)
    if len(found) == 1:
        return found[0]
    if not found:
        raise StoreError(f"no alert with id {prefix!r} in {store.path}")
    raise StoreError(f"alert id prefix {prefix!r} is ambiguous: " + ", ".join(r.id for r in found))


def _colour(level: str, out: TextIO) -> str:
    if out.isatty() and not os.environ.get("NO_COLOR"):
        return f"\x1b[{_ANSI[level]}m{level:<6}\x1b[0m"
    return f"{level:<6}"


def print_table(rows: Sequence[AlertRow], out: TextIO) -> None:
    if not rows:
        print("no alerts", file=out)
        return
    head = ("ID", "LEVEL", "STATE", "DOMAIN", "DISTRICT", "SUBJECT", "RULE", "UPDATED", "VALUE", "MESSAGE")
    table = [(r.id[:10], r.level.colour, r.state, r.domain, r.district, r.subject, r.rule,
              rfc3339(r.updated)[:19].replace("T", " "), "" if r.value is None else f"{r.value:g}",
              r.message[:60]) for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(), file=out)
    for t in table:
        cells = [c.ljust(w) for c, w in zip(t, widths, strict=True)]
        cells[1] = _colour(t[1], out).ljust(widths[1] + (len(_colour(t[1], out)) - len(t[1])))
        print("  ".join(cells).rstrip(), file=out)


def print_alert(row: AlertRow, history: Sequence[HistoryEntry], out: TextIO) -> None:
    w = out.write
    w(f"alert {row.id}  {_colour(row.level.colour, out).strip()} ({row.level.cn})  {row.state}\n")
    w(f"  rule      {row.rule}  ({row.title})\n  subject   {row.subject}  domain {row.domain}  "
      f"district {row.district or '-'}\n  started   {rfc3339(row.started)}   updated {rfc3339(row.updated)}\n")
    w(f"  value     {'-' if row.value is None else f'{row.value:g}'}\n  message   {row.message}\n")
    w(f"  owner     {row.owner or '-'}\n")
    if row.acked_by:
        w(f"  acked     by {row.acked_by} at {rfc3339(row.acked_at or 0.0)}: {row.ack_reason or ''}\n")
    if row.resolved_by:
        w(f"  resolved  by {row.resolved_by} at {rfc3339(row.resolved_at or 0.0)}\n")
    if row.suppressed:
        w(f"  held      {row.suppressed}\n")
    if row.playbook:
        w("  playbook\n" + "".join(f"    {line}\n" for line in row.playbook.splitlines()))
    w("history\n")
    for h in history:
        level = f" {h.level}" if h.level else ""
        value = "" if h.value is None else f" value={h.value:g}"
        w(f"  {rfc3339(h.ts)}  {h.event:<12}{level}{value}  by {h.actor}: {h.reason or h.message}\n")
