"""The native build of the hot path: the engine and the detectors of the shipped rule packs, compiled with mypyc.

The same typed sources run as plain Python or compiled to C extension modules by mypyc (the compiler that
ships with mypy, which builds mypy and black). Compiled, the engine spends about 40 % less CPU on the
demo city (``benchmarks/engine_throughput.py`` measures both in one run); the alerts and the snapshots are
identical, which ``tests/unit/test_native.py`` checks by running both on the same input.

    python -m lifeline.native build      compile (about a minute; needs a C compiler and Python's headers)
    python -m lifeline.native status     native or pure, and why
    python -m lifeline.native clean      remove the compiled modules

``./dev`` builds it when the sources changed since the last build. The compiled modules sit beside their
sources, with a stamp of the sources they were built from. A build is used only when it is complete and
its stamp matches the sources: otherwise (a module edited since, or ``LIFELINE_PURE=1`` in the
environment) every one of them is loaded from its ``.py`` file, so a stale build can never run. All or
none: compiled modules call each other directly and cannot mix with interpreted ones.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from lifeline._compiled import GROUP, MODULES, ROOT, STAMP, built, fingerprint, source, state


def clean() -> list[Path]:
    gone = built()
    for p in gone:
        p.unlink()
    STAMP.unlink(missing_ok=True)
    return gone


_SETUP = textwrap.dedent("""
    import sys
    from setuptools import setup
    from mypyc.build import mypycify
    files, group, tmp = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
    setup(name="lifeline-native", ext_modules=mypycify(files, group_name=group, target_dir=tmp + "/c", opt_level="3"),
          script_args=["build_ext", "--inplace", "--build-temp", tmp + "/o"])
""")


def build(quiet: bool = False) -> float:
    """Compile ``MODULES`` in place (beside their sources) and write the stamp; seconds taken."""
    t0 = time.monotonic()
    clean()
    files = ",".join(str(source(m)) for m in MODULES)
    with tempfile.TemporaryDirectory(prefix="lifeline-native-") as tmp:
        # cwd is the project root: mypyc reads the mypy settings in pyproject.toml and puts each module's
        # extension beside its source (--inplace); the generated C and the objects stay in the temp dir
        proc = subprocess.run([sys.executable, "-c", _SETUP, files, GROUP, tmp], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        clean()
        tail = "\n".join(proc.stdout.splitlines()[-25:])
        raise RuntimeError(f"mypyc build failed (exit {proc.returncode}); the engine stays pure Python:\n{tail}")
    if not quiet:
        print(proc.stdout[-2000:], file=sys.stderr)
    STAMP.write_text(fingerprint() + "\n")
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lifeline.native", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="compile the hot modules with mypyc (needs gcc and Python's headers)")
    b.add_argument("--if-stale", action="store_true", help="do nothing when a current build is there")
    b.add_argument("--verbose", action="store_true", help="show the compiler's output")
    sub.add_parser("status", help="native or pure, and why")
    sub.add_parser("clean", help="remove the compiled modules")
    args = ap.parse_args(argv)
    if args.cmd == "status":
        mode, why = state()
        print(mode + (f": {why}" if why else ""))
        return 0
    if args.cmd == "clean":
        print(f"removed {len(clean())} compiled modules")
        return 0
    if args.if_stale and state() == ("native", ""):
        print("native build is current")
        return 0
    print(f"compiling {len(MODULES)} modules with mypyc (about a minute) ...", file=sys.stderr, flush=True)
    try:
        took = build(quiet=not args.verbose)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"native build done in {took:.0f} s: {state()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
