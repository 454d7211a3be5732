"""``lifeline console``: the operator console's accounts (users, roles, API tokens).

The console itself is served by ``lifeline run --console HOST:PORT`` (JSON API at ``/api``, OpenAPI at
``/api/openapi.json``; docs/console.md). Roles: viewer (read), operator (act on alerts), engineer
(silences, rules), admin (users, tokens, approval of public warnings).

examples:
  lifeline console --db var/lifeline.db users add zhang.wei --role operator    # asks for the password
  LIFELINE_PASSWORD=... lifeline console users add chen.jie --role admin      # or from the environment
  lifeline console users list
  lifeline console users role zhang.wei engineer
  lifeline console token li.na --label "dispatch system"                      # printed once
"""

from __future__ import annotations

import argparse
import getpass
import os
import time

from lifeline.console.accounts import ROLES, Accounts
from lifeline.errors import ConfigError
from lifeline.sinks.store import AlertStore


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("console", help="console accounts: users, roles, API tokens", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default="var/lifeline.db", help="SQLite alert store (default: %(default)s)")
    acts = p.add_subparsers(dest="action", metavar="{users,token}", required=True)
    users = acts.add_parser("users", help="add, list users; change a role")
    uacts = users.add_subparsers(dest="users_action", metavar="{add,list,role}", required=True)
    add = uacts.add_parser("add", help="add a user (password from LIFELINE_PASSWORD or asked)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    uacts.add_parser("list", help="users and roles")
    role = uacts.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    tok = acts.add_parser("token", help="create an API token for a user (printed once)")
    tok.add_argument("name")
    tok.add_argument("--label", required=True, help="what uses it (shown in the audit log)")
    p.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace) -> int:
    AlertStore(args.db).close()  # create or upgrade the store first
    accounts = Accounts(args.db)
    now = time.time()
    try:
        if args.action == "token":
            token = accounts.create_token(args.name, args.label, now)
            print(token)
            return 0
        if args.users_action == "list":
            for name, role, disabled in accounts.users():
                print(f"{name:<24} {role:<9}{'  (disabled)' if disabled else ''}")
            return 0
        if args.users_action == "role":
            accounts.set_role(args.name, args.role)
            print(f"{args.name} is now {args.role}")
            return 0
        password = os.environ.get("LIFELINE_PASSWORD") or getpass.getpass(f"password for {args.name}: ")
        accounts.add_user(args.name, args.role, password, now)
        print(f"user {args.name} added as {args.role}")
        return 0
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        accounts.close()
