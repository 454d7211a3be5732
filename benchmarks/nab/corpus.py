"""Read the NAB corpus from disk: data timestamps, anomaly windows as row ranges, profiles, published results.

Only reads; never scores and never writes. The dataset root is, in order: the ``root`` argument, the
``LIFELINE_NAB_ROOT`` environment variable, ``../shared/datasets/nab`` relative to the repository root.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks.nab.scorer import CostMatrix, FileLayout, file_layout

REPO_ROOT = Path(__file__).resolve().parents[2]
ROOT_ENV = "LIFELINE_NAB_ROOT"
LABELS = "labels/combined_windows.json"


class NabDataMissingError(FileNotFoundError):
    """The shared NAB dataset (or one of its files) is not where it was looked for."""


def default_root() -> Path:
    env = os.environ.get(ROOT_ENV)
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "datasets" / "nab").resolve()


def _require(path: Path) -> Path:
    if not path.exists():
        raise NabDataMissingError(
            f"NAB dataset file missing: {path} (set {ROOT_ENV} or pass the dataset root; "
            f"expected the layout of numenta/NAB: data/, labels/, config/, results/)")
    return path


@dataclass(frozen=True)
class NabCorpus:
    """Every labelled file's layout keyed ``"<category>/<name>.csv"``, and the application profiles."""

    root: Path
    layouts: dict[str, FileLayout]
    profiles: dict[str, CostMatrix]

    @property
    def n_windows(self) -> int:
        return sum(layout.n_windows for layout in self.layouts.values())


def load_corpus(root: Path | None = None, labels: str = LABELS) -> NabCorpus:
    """Load the corpus; raises NabDataMissingError naming the first missing path."""
    root = root or default_root()
    _require(root)
    windows = json.loads(_require(root / labels).read_text())
    layouts = {}
    for name, limits in sorted(windows.items()):
        timestamps = read_timestamps(_require(root / "data" / name))
        layouts[name] = file_layout(len(timestamps), window_rows(name, timestamps, limits))
    return NabCorpus(root, layouts, load_profiles(root))


def load_profiles(root: Path) -> dict[str, CostMatrix]:
    raw = json.loads(_require(root / "config" / "profiles.json").read_text())
    return {name: CostMatrix(tp=float(p["CostMatrix"]["tpWeight"]), fp=float(p["CostMatrix"]["fpWeight"]),
                             fn=float(p["CostMatrix"]["fnWeight"])) for name, p in raw.items()}


def read_timestamps(path: Path) -> NDArray[np.datetime64]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader)
        return np.array([row[0] for row in reader if row], dtype="datetime64[us]")


def window_rows(name: str, timestamps: NDArray[np.datetime64], limits: list[list[str]]) -> list[tuple[int, int]]:
    """Inclusive row ranges of the windows, as NAB finds them: the first row carrying each limit's timestamp.

    Some files repeat timestamps (DST, sensor glitches), so the match is by first occurrence, and an end
    found before its start is an error rather than a silently empty window.
    """
    rows: list[tuple[int, int]] = []
    for start, end in sorted(limits):
        first, last = (_first_row(name, timestamps, t) for t in (start, end))
        if last < first:
            raise ValueError(f"{name}: window {start}..{end} ends (row {last}) before it starts (row {first})")
        rows.append((first, last))
    return rows


def _first_row(name: str, timestamps: NDArray[np.datetime64], stamp: str) -> int:
    hits = np.flatnonzero(timestamps == np.datetime64(stamp.replace(" ", "T"), "us"))
    if len(hits) == 0:
        raise ValueError(f"{name}: window limit {stamp} is not a timestamp of the file")
    return int(hits[0])


def load_detector_scores(detector_dir: Path) -> dict[str, NDArray[np.float64]]:
    """``anomaly_score`` of ``<detector_dir>/<category>/<detector>_<name>.csv``, keyed ``<category>/<name>.csv``."""
    detector = _require(detector_dir).name
    scores = {}
    for path in sorted(detector_dir.glob("*/*.csv")):
        name = path.name.removeprefix(detector + "_")
        with path.open(newline="") as f:
            reader = csv.reader(f)
            column = next(reader).index("anomaly_score")
            scores[f"{path.parent.name}/{name}"] = np.array([float(row[column]) for row in reader if row])
    if not scores:
        raise NabDataMissingError(f"no results files <category>/{detector}_<name>.csv under {detector_dir}")
    return scores


def published_results(root: Path, detector: str) -> dict[str, float]:
    """The normalised scores NAB published for ``detector``, per profile."""
    results: dict[str, Any] = json.loads(_require(root / "results" / "final_results.json").read_text())
    if detector not in results:
        raise KeyError(f"{root / 'results' / 'final_results.json'}: no detector {detector!r}; "
                       f"known: {', '.join(sorted(results))}")
    return {profile: float(score) for profile, score in results[detector].items()}
