"""NAB scorer: hand-computable cases of the protocol, sweep = brute force, and the published windowedGaussian scores."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.nab.corpus import NabCorpus, NabDataMissingError, default_root, load_corpus, load_detector_scores
from benchmarks.nab.evaluate import evaluate, score_detector
from benchmarks.nab.scorer import (
    NEVER_FIRE,
    CostMatrix,
    FileLayout,
    file_layout,
    probationary_length,
    scaled_sigmoid,
    score_file,
    sweep,
)

STANDARD = CostMatrix(tp=1.0, fp=0.11, fn=1.0)
LOW_FN = CostMatrix(tp=1.0, fp=0.11, fn=2.0)
PUBLISHED_WINDOWED_GAUSSIAN = {"standard": 39.65, "reward_low_FP_rate": 20.87, "reward_low_FN_rate": 47.41}

# One file of 200 rows: probation covers rows 0..29; one window of width 10 on rows 100..109.
N, START, END = 200, 100, 109


def _layout() -> FileLayout:
    return file_layout(N, [(START, END)])


def _fire_at(*rows: int) -> np.ndarray:
    scores = np.zeros(N)
    scores[list(rows)] = 1.0
    return scores


def _sigma(x: float) -> float:
    """2 * sigmoid(-5x) - 1, written independently as -tanh(2.5x)."""
    return -math.tanh(2.5 * x)


def test_nab_scaled_sigmoid_anchor_points() -> None:
    """σ(-1) = 0.98661 at a window start, 0 at its right edge, -0.98661 one width after, -1 beyond 3."""
    got = scaled_sigmoid(np.array([-1.0, -0.5, 0.0, 1.0, 3.0]))
    assert got == pytest.approx([0.98661, 0.84828, 0.0, -0.98661, _sigma(3.0)], abs=1e-5)
    assert scaled_sigmoid(np.array([3.01, 1e6])).tolist() == [-1.0, -1.0]


def test_nab_probationary_length_is_15_percent_capped_at_750() -> None:
    """floor(0.15 n), never more than 750 rows."""
    assert [probationary_length(n) for n in (200, 4032, 5000, 22695)] == [30, 604, 750, 750]


def test_nab_detection_at_window_start_scores_full_tp() -> None:
    """The first row of a window earns exactly A_TP; nothing else is counted."""
    result = score_file(_layout(), _fire_at(START), STANDARD, threshold=0.5)
    assert result.raw == pytest.approx(1.0, abs=1e-12)
    assert (result.tp, result.fp, result.fn, result.windows_detected) == (1, 0, 9, 1)


def test_nab_detection_later_in_window_earns_less() -> None:
    """Halfway in earns σ(-0.5)/σ(-1); the last row σ(-1/w)/σ(-1)."""
    half = score_file(_layout(), _fire_at(START + 5), STANDARD, 0.5).raw
    last = score_file(_layout(), _fire_at(END), STANDARD, 0.5).raw
    assert half == pytest.approx(_sigma(-0.5) / _sigma(-1.0))
    assert last == pytest.approx(_sigma(-0.1) / _sigma(-1.0))
    assert 0 < last < half < 1


def test_nab_missed_window_costs_fn_weight() -> None:
    """A window with no detection costs A_FN (2 in the low-FN profile)."""
    assert score_file(_layout(), np.zeros(N), STANDARD, 0.5).raw == -1.0
    assert score_file(_layout(), np.zeros(N), LOW_FN, 0.5).raw == -2.0


def test_nab_fp_long_after_window_costs_full_fp_weight() -> None:
    """More than 3 (w - 1) rows after a window an FP costs the full A_FP; right after it, much less."""
    far = END + 3 * (10 - 1) + 1
    assert score_file(_layout(), _fire_at(START, far), STANDARD, 0.5).raw == pytest.approx(1.0 - 0.11, abs=1e-12)
    near = score_file(_layout(), _fire_at(START, END + 1), STANDARD, 0.5).raw
    assert near == pytest.approx(1.0 + 0.11 * _sigma(1 / 9))
    assert -0.11 < near - 1.0 < 0


def test_nab_fp_before_any_window_costs_full_fp_weight() -> None:
    """An FP after probation but before the first window is as bad as can be."""
    assert score_file(_layout(), _fire_at(50), STANDARD, 0.5).raw == pytest.approx(-1.0 - 0.11)


def test_nab_probationary_rows_are_ignored() -> None:
    """Detections in rows 0..29 change nothing, and a window inside the probation counts neither way."""
    base = score_file(_layout(), _fire_at(START), STANDARD, 0.5)
    with_probation_noise = score_file(_layout(), _fire_at(0, 5, 29, START), STANDARD, 0.5)
    assert with_probation_noise == base
    early = file_layout(N, [(10, 19), (START, END)])
    assert early.scorable_windows == 1
    assert score_file(early, _fire_at(10), STANDARD, 0.5).raw == -1.0
    assert score_file(early, _fire_at(10, START), STANDARD, 0.5).raw == pytest.approx(1.0)


def test_nab_only_first_detection_in_window_counts() -> None:
    """Further detections in a window add nothing; the window is worth its earliest detection."""
    first_only = score_file(_layout(), _fire_at(START + 2), STANDARD, 0.5)
    both = score_file(_layout(), _fire_at(START + 2, START + 3, END), STANDARD, 0.5)
    assert both.raw == first_only.raw
    assert (both.tp, both.windows_detected) == (3, 1)


def test_nab_score_equal_to_threshold_is_a_detection() -> None:
    """Detection is score >= threshold."""
    scores = np.zeros(N)
    scores[START] = 0.7
    assert score_file(_layout(), scores, STANDARD, 0.7).raw == pytest.approx(1.0)
    assert score_file(_layout(), scores, STANDARD, np.nextafter(0.7, 1)).raw == -1.0


def test_nab_sweep_equals_scoring_every_threshold() -> None:
    """The one-sort sweep gives, at every threshold, the sum of the per-file scores (graded and tied scores)."""
    rng = np.random.default_rng(3)
    files = []
    for n, windows in ((400, [(80, 99), (200, 239), (300, 300)]), (300, [(150, 180)]), (250, [])):
        layout = file_layout(n, windows)
        files.append((layout, np.round(rng.random(n) ** 4, 2)))  # rounding makes many ties
    for cost in (STANDARD, LOW_FN, CostMatrix(tp=1.0, fp=0.22, fn=1.0)):
        curve = sweep(files, cost)
        assert curve.thresholds[0] == NEVER_FIRE
        assert np.all(np.diff(curve.thresholds) < 0)
        brute = [sum(score_file(layout, s, cost, t).raw for layout, s in files) for t in curve.thresholds]
        assert curve.raw == pytest.approx(brute, abs=1e-9)
        assert curve.best()[1] == pytest.approx(max(brute), abs=1e-9)


def test_nab_sweep_prefers_highest_threshold_among_ties() -> None:
    """When two thresholds score the same, the optimiser keeps the higher one (NAB's stable sort)."""
    scores = np.zeros(N)
    scores[START] = 0.9
    scores[START + 50] = 0.8  # far outside with fp weight 0: same score at 0.9 and 0.8
    curve = sweep([(_layout(), scores)], CostMatrix(tp=1.0, fp=0.0, fn=1.0))
    threshold, raw = curve.best()
    assert threshold == 0.9
    assert raw == pytest.approx(1.0)


def _synthetic_corpus() -> NabCorpus:
    layouts = {"a/one.csv": file_layout(N, [(START, END)]), "b/two.csv": file_layout(300, [(60, 79), (200, 219)])}
    return NabCorpus(Path("synthetic"), layouts, {"standard": STANDARD, "reward_low_FN_rate": LOW_FN})


def test_nab_normalisation_null_is_0_perfect_is_100() -> None:
    """A never-firing detector scores 0 at threshold inf; one firing at each window start scores 100."""
    corpus = _synthetic_corpus()
    silent = {name: np.zeros(layout.n_rows) for name, layout in corpus.layouts.items()}
    perfect = {name: np.isin(np.arange(layout.n_rows), layout.windows[:, 0]).astype(float)
               for name, layout in corpus.layouts.items()}
    assert score_detector(silent, corpus) == {"standard": (0.0, math.inf), "reward_low_FN_rate": (0.0, math.inf)}
    for score, threshold in score_detector(perfect, corpus).values():
        assert score == pytest.approx(100.0)
        assert threshold == 1.0


def test_nab_score_detector_names_the_bad_file() -> None:
    """Wrong lengths, NaN and missing files are rejected with the file named."""
    corpus = _synthetic_corpus()
    good = {name: np.zeros(layout.n_rows) for name, layout in corpus.layouts.items()}
    with pytest.raises(ValueError, match=r"a/one.csv: expected 200 anomaly scores"):
        evaluate({**good, "a/one.csv": np.zeros(10)}, corpus)
    with pytest.raises(ValueError, match=r"b/two.csv: anomaly scores must be finite; row 7 is nan"):
        evaluate({**good, "b/two.csv": np.where(np.arange(300) == 7, np.nan, 0.0)}, corpus)
    with pytest.raises(ValueError, match=r"missing: \['b/two.csv'\]"):
        evaluate({"a/one.csv": good["a/one.csv"]}, corpus)


def test_nab_missing_dataset_names_the_path(tmp_path: Path) -> None:
    """A missing dataset root is reported with its path."""
    with pytest.raises(NabDataMissingError, match=str(tmp_path / "nab")):
        load_corpus(tmp_path / "nab")


def test_nab_reproduces_published_windowed_gaussian_scores() -> None:
    """The published windowedGaussian results score 39.65 / 20.87 / 47.41 (±0.05), threshold optimised per profile."""
    root = default_root()
    if not root.is_dir():
        pytest.fail(f"shared NAB dataset not found at {root}: this test needs the NAB v1.1 corpus there "
                    f"(or LIFELINE_NAB_ROOT pointing at it)")
    corpus = load_corpus(root)
    assert (len(corpus.layouts), corpus.n_windows, sum(x.n_rows for x in corpus.layouts.values())) == (58, 116, 365558)
    results = evaluate(load_detector_scores(root / "results" / "windowedGaussian"), corpus)
    for profile, published in PUBLISHED_WINDOWED_GAUSSIAN.items():
        assert results[profile].normalised == pytest.approx(published, abs=0.05), profile
        assert results[profile].threshold == 1.0
