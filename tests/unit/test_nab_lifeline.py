"""The NAB runner for lifeline detectors: online per-row scores, and the chosen configuration on a small subset.

The whole-corpus run is the benchmark's job (``python -m benchmarks.nab_lifeline``); this stays under a second."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.nab import score_detector
from benchmarks.nab.corpus import NabDataMissingError, load_corpus
from benchmarks.nab.scorer import sweep
from benchmarks.nab_lifeline import CHOSEN, DEFAULT_DETECTOR, evaluate_config, read_series, run_file, subset
from lifeline.detectors import DETECTORS

FILES = ["artificialWithAnomaly/art_daily_jumpsup.csv", "realAdExchange/exchange-2_cpc_results.csv",
         "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv"]
#: ``evaluate_config("ensemble", CHOSEN, subset(corpus, FILES))["standard"]``, computed once by the benchmark code.
SUBSET_STANDARD = 63.62016107588775


@pytest.fixture(scope="module")
def corpus():  # type: ignore[no-untyped-def]
    try:
        return load_corpus()
    except NabDataMissingError as exc:  # the dataset ships in ../shared: missing data is a failure, not a skip
        pytest.fail(str(exc), pytrace=False)


def test_one_finite_graded_score_per_row(corpus) -> None:  # type: ignore[no-untyped-def]
    for name in FILES[:2]:
        path = corpus.root / "data" / name
        scores = run_file(DEFAULT_DETECTOR, CHOSEN, path)
        assert scores.shape == (corpus.layouts[name].n_rows,)
        assert np.all(np.isfinite(scores)) and scores.min() >= 0.0 and scores.max() < 1.0
        assert len(np.unique(scores)) > 100


def test_scores_are_online(corpus) -> None:  # type: ignore[no-untyped-def]
    """Row i's score does not change when the rows after i are cut off."""
    path = corpus.root / "data" / FILES[1]
    whole = run_file(DEFAULT_DETECTOR, CHOSEN, path)
    ts, values = read_series(path)
    det = DETECTORS.get(DEFAULT_DETECTOR).from_config(CHOSEN)
    cut = 900
    head = [det.update(t, v) for t, v in zip(ts[:cut].tolist(), values[:cut].tolist(), strict=True)]
    np.testing.assert_array_equal(whole[:cut], [0.0 if v is None else v.score for v in head])


def test_chosen_configuration_on_a_three_file_subset(corpus) -> None:  # type: ignore[no-untyped-def]
    small = subset(corpus, FILES)
    outcome = evaluate_config(DEFAULT_DETECTOR, CHOSEN, small, workers=1)
    assert outcome.standard == pytest.approx(SUBSET_STANDARD, abs=1e-9)
    # the same figure straight from the scorer, without the runner's plumbing
    scores = {name: run_file(DEFAULT_DETECTOR, CHOSEN, corpus.root / "data" / name) for name in FILES}
    assert score_detector(scores, small)["standard"][0] == pytest.approx(SUBSET_STANDARD, abs=1e-9)
    threshold, _ = sweep([(small.layouts[n], scores[n]) for n in FILES], small.profiles["standard"]).best()
    assert threshold == pytest.approx(outcome.scores["standard"][1])
