"""``lifeline simulate``: run the sensor simulators (a separate package, started as its own process).

lifeline never imports ``simulators``; this command runs ``python -m simulators run ...`` with the
arguments given, so the simulators stay a client of the wire format like any real sensor.
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", help="run the city simulators (see: lifeline simulate -- --help)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sim_args", nargs=argparse.REMAINDER,
                   help="arguments for 'python -m simulators run' (e.g. --scenario demo --mqtt 127.0.0.1:1883)")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    rest = list(args.sim_args)
    if rest and rest[0] == "--":
        rest = rest[1:]
    if rest and rest[0] in {"run", "city", "scenarios"}:
        cmd = [sys.executable, "-m", "simulators", *rest]
    else:
        cmd = [sys.executable, "-m", "simulators", "run", *rest]
    return subprocess.call(cmd)
