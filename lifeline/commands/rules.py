"""``lifeline rules check``: validate rule packs, report every problem at once as file:line:col."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lifeline import paths


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rules", help="work with rule packs", description=__doc__)
    rsub = p.add_subparsers(dest="rules_cmd", required=True, metavar="{check,list}")
    c = rsub.add_parser("check", help="validate rule packs; exit 1 and list every problem if any")
    c.add_argument("paths", type=Path, nargs="*", help="files or directories (default: ./rules or the shipped packs)")
    c.set_defaults(func=cmd_check)
    ls = rsub.add_parser("list", help="list the rules of the packs")
    ls.add_argument("paths", type=Path, nargs="*", help="files or directories")
    ls.set_defaults(func=cmd_list)


def cmd_check(args: argparse.Namespace) -> int:
    from lifeline.rules.loader import check_rules

    targets = args.paths or [paths.default_rules()]
    problems = check_rules(targets)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"ok: {', '.join(str(t) for t in targets)}", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from lifeline.rules.loader import load_rules

    rs = load_rules(args.paths or [paths.default_rules()])
    for r in rs.rules:
        levels = ""
        if r.thresholds is not None:
            levels = " ".join(f"{lv.colour}{'>=' if r.thresholds.direction == 'above' else '<='}{b:g}"
                              for lv, b in r.thresholds.levels)
        elif r.level is not None:
            levels = r.level.colour
        print(f"{r.id:40s} {r.kind:9s} {levels:45s} {r.source}")
    return 0
