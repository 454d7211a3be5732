"""The ``lifeline`` command: demo, run, simulate, backtest, rules, alerts, silence, console; and on Kafka bridge,
worker, deliver.
``--help`` everywhere."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from lifeline import __version__

COMMANDS = ("demo", "run", "simulate", "backtest", "rules", "alerts", "silence", "console", "bridge", "worker",
            "deliver")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifeline",
        description="Streaming monitoring of a city's lifelines: gas, water, drainage, bridges, elevators, crowds.",
    )
    parser.add_argument("--version", action="version", version=f"lifeline {__version__}")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    for name in COMMANDS:
        module = importlib.import_module(f"lifeline.commands.{name}")
        module.add_parser(sub)
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """``lifeline simulate`` passes everything after it to the simulators, options included (argparse's own
    REMAINDER refuses a first remaining argument that looks like an option: ``--scenario demo``)."""
    args = list(argv)
    for i, word in enumerate(args):
        if word == "simulate" and args[i + 1:i + 2] not in (["-h"], ["--help"]):  # its own --help stays lifeline's
            ns = parser.parse_args(args[:i + 1])
            ns.sim_args = args[i + 1:]
            return ns
        if not word.startswith("-") and (i == 0 or args[i - 1] != "--log-level"):
            break  # another command
    return parser.parse_args(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error for people; tracebacks with --log-level DEBUG
        from lifeline.errors import LifelineError

        if isinstance(exc, LifelineError | OSError) and args.log_level.upper() != "DEBUG":
            print(f"lifeline: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
