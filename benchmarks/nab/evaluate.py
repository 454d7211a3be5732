"""Score a detector's per-row anomaly scores on NAB: threshold optimised per profile, normalised 0..100.

The entry point for lifeline's own detectors: run a detector over every ``data/<category>/<name>.csv``
of the corpus, collect its scores in [0, 1] row by row, and call ``score_detector``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from benchmarks.nab.corpus import NabCorpus, load_corpus
from benchmarks.nab.scorer import CostMatrix, FileLayout, check_scores, normalise, null_score, perfect_score, sweep


@dataclass(frozen=True)
class ProfileResult:
    """One profile's outcome: the corpus-optimal threshold, the raw score there, and the normalised score."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float

    @property
    def normalised(self) -> float:
        return normalise(self.raw, self.null, self.perfect)


def evaluate(scores_by_file: Mapping[str, NDArray[np.float64]], corpus: NabCorpus) -> dict[str, ProfileResult]:
    """Optimise the threshold over the whole corpus for each profile and score there."""
    missing = sorted(set(corpus.layouts) - set(scores_by_file))
    extra = sorted(set(scores_by_file) - set(corpus.layouts))
    if missing or extra:
        raise ValueError(f"scores must cover exactly the {len(corpus.layouts)} labelled files; "
                         f"missing: {missing[:5]}{'...' if len(missing) > 5 else ''}, unknown: {extra[:5]}")
    files = [(layout, np.asarray(scores_by_file[name], dtype=np.float64)) for name, layout in corpus.layouts.items()]
    for (name, layout), (_, scores) in zip(corpus.layouts.items(), files, strict=True):
        check_scores(name, layout, scores)
    return {profile: _profile_result(profile, cost, files, corpus) for profile, cost in corpus.profiles.items()}


def _profile_result(profile: str, cost: CostMatrix, files: list[tuple[FileLayout, NDArray[np.float64]]],
                    corpus: NabCorpus) -> ProfileResult:
    threshold, raw = sweep(files, cost).best()
    return ProfileResult(profile, threshold, raw, null_score(corpus.layouts.values(), cost),
                         perfect_score(corpus.n_windows, cost))


def score_detector(scores_by_file: Mapping[str, NDArray[np.float64]],
                   corpus: NabCorpus | None = None) -> dict[str, tuple[float, float]]:
    """``{profile: (normalised score, threshold)}``; the corpus is loaded from the default root if not given."""
    results = evaluate(scores_by_file, corpus or load_corpus())
    return {profile: (r.normalised, r.threshold) for profile, r in results.items()}
