"""The compiled hot path (lifeline/native.py): it is what CI runs, it gives exactly the alerts of the pure
Python engine, and a stale build (a hot module edited since) is never loaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lifeline import _compiled, paths

REQUIRED = os.environ.get("LIFELINE_REQUIRE_NATIVE") == "1"  # ./dev test sets it: CI runs the compiled engine
NATIVE = _compiled.state()[0] == "native"
needs_build = pytest.mark.skipif(not NATIVE, reason=f"no current native build: {_compiled.state()[1]}")

PROBE = """
import json, sys
import lifeline._compiled as c
mods = {}
for m in c.MODULES:
    __import__(m)
    mods[m] = sys.modules[m].__file__
print(json.dumps({"state": c.state(), "loaded": c.loaded(), "files": mods}))
"""

# Engine passes over the demo city with incidents and sensor faults in every domain: every alert event
# and the final snapshot, hashed. Run once compiled and once with LIFELINE_PURE=1.
RUN = """
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
from benchmarks.common import decode_file, demo_registry, simulated_input
from benchmarks.engine_throughput import batches
from lifeline import paths
from lifeline._compiled import loaded
from lifeline.engine import Engine
from lifeline.rules.loader import load_rules
reg, rules = demo_registry(), load_rules([paths.REPO / "rules"])
events, snaps = [], []
for scenario in ("demo", "faults"):
    eng = Engine(rules, reg)
    events += [e.to_dict() for c in batches(decode_file(simulated_input(scenario, "3h", seed=3), reg))
               for e in eng.process(c).events]
    snaps.append(eng.snapshot())
blob = json.dumps({"events": events, "snapshots": snaps}, sort_keys=True, default=repr)
print(json.dumps({"loaded": loaded(), "n": len(events), "sha": hashlib.sha256(blob.encode()).hexdigest()}))
"""


def _probe(code: str, *args: str, pure: bool = False, cwd: Path | None = None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != _compiled.PURE_ENV}
    if pure:
        env[_compiled.PURE_ENV] = "1"
    if cwd is not None:
        env["PYTHONPATH"] = str(cwd)
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_ci_runs_the_compiled_engine() -> None:
    if not REQUIRED:
        pytest.skip("LIFELINE_REQUIRE_NATIVE is not set (./dev test sets it)")
    assert _compiled.state() == ("native", "")
    assert _compiled.loaded() == "native"


@needs_build
def test_pure_env_loads_every_hot_module_from_its_source() -> None:
    native, pure = _probe(PROBE), _probe(PROBE, pure=True)
    assert native["loaded"] == "native" and pure["loaded"] == "pure"
    assert pure["state"] == ["pure", "LIFELINE_PURE=1"]
    assert isinstance(pure["files"], dict) and isinstance(native["files"], dict)
    assert all(str(f).endswith(".py") for f in pure["files"].values())
    assert not any(str(f).endswith(".py") for f in native["files"].values())


@needs_build
def test_a_stale_build_is_never_loaded(tmp_path: Path) -> None:
    """A copy of the package with its build: used as it is; after one hot module changes, all load from source."""
    shutil.copytree(paths.REPO / "lifeline", tmp_path / "lifeline", ignore=shutil.ignore_patterns("__pycache__"))
    assert _probe(PROBE, cwd=tmp_path)["loaded"] == "native"
    spike = tmp_path / "lifeline" / "detectors" / "spike.py"
    spike.write_text(spike.read_text() + "\n# edited after the build\n")
    stale = _probe(PROBE, cwd=tmp_path)
    assert stale["loaded"] == "pure"
    assert isinstance(stale["state"], list) and str(stale["state"][1]).startswith("stale native build")
    assert isinstance(stale["files"], dict) and all(str(f).endswith(".py") for f in stale["files"].values())


@needs_build
def test_compiled_and_pure_engines_give_the_same_alerts_and_state() -> None:
    native = _probe(RUN, str(paths.REPO))
    pure = _probe(RUN, str(paths.REPO), pure=True)
    assert native["loaded"] == "native" and pure["loaded"] == "pure"
    assert isinstance(native["n"], int) and native["n"] > 20  # incidents and faults in every domain fire
    assert native["sha"] == pure["sha"] and native["n"] == pure["n"]
