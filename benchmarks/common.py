"""Shared helpers for the benchmarks: simulated input, timing, result files."""

from __future__ import annotations

import hashlib
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lifeline import paths
from lifeline.codec import decode_line
from lifeline.model import Reading
from lifeline.registry import Registry, load_registry

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"


def inputs_fingerprint() -> str:
    """What the simulated input depends on besides the arguments: the demo city (sensors.csv, districts) and
    the simulators' code and scenario files. A change to any of them is a new cache entry, never stale data."""
    h = hashlib.sha256()
    files = [paths.default_registry(), paths.default_districts(),
             *sorted((paths.REPO / "simulators").rglob("*.py")), *sorted((paths.REPO / "simulators").rglob("*.yaml"))]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def mqtt_messages(src: Path, prefix: str = "lifeline/readings", limit: int | None = None) -> list[tuple[str, bytes]]:
    """A replay file's payloads as the sensors publish them: ``<prefix>/<domain>/<sensor>`` and the rest of the
    object, ticks left out (a live engine without ``--tick`` moves time by data only); the first ``limit``."""
    import orjson

    out: list[tuple[str, bytes]] = []
    with src.open("rb") as f:
        for line in f:
            obj = orjson.loads(line)
            if "tick" in obj:
                continue
            out.append((f"{prefix}/{obj.pop('domain')}/{obj.pop('sensor')}", orjson.dumps(obj)))
            if limit is not None and len(out) == limit:
                break
    return out


def simulated_input(scenario: str, duration: str, seed: int = 7) -> Path:
    """JSON lines of the demo city from the simulators (cached by arguments and ``inputs_fingerprint``)."""
    CACHE.mkdir(exist_ok=True)
    stem = f"{scenario}-{duration}-{seed}"
    out = CACHE / f"{stem}-{inputs_fingerprint()}.jsonl"
    if not out.exists():
        for old in [*CACHE.glob(f"{stem}-*.jsonl"), CACHE / f"{stem}.jsonl"]:  # made from an older city or
            old.unlink(missing_ok=True)                                          # simulator (or unkeyed)
        tmp = out.with_suffix(".tmp")
        print(f"generating {out.name} with the simulators ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "simulators", "run", "--scenario", scenario, "--duration", duration,
                        "--seed", str(seed), "--out", str(tmp)], check=True)
        tmp.rename(out)
    return out


def demo_registry() -> Registry:
    return load_registry(paths.default_registry(), paths.default_districts())


def decode_file(path: Path, registry: Registry) -> list[Reading]:
    readings: list[Reading] = []
    with path.open("rb") as f:
        for line in f:
            decoded, _ = decode_line(line, registry=registry)
            readings.extend(decoded.readings)
    return readings


def best_of(n: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    """Run ``fn`` (returns seconds) n times; the minimum is the least disturbed by a noisy machine."""
    times = [fn() for _ in range(n)]
    return min(times), times


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def machine() -> str:
    return f"{platform.machine()}, Python {platform.python_version()}, {platform.system()}"


def write_result(name: str, text: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text)
    return path


def spread(times: list[float]) -> str:
    return f"min {min(times):.3f} s, median {statistics.median(times):.3f} s over {len(times)} runs"
