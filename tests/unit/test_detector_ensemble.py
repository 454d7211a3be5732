"""Behaviour of the ensemble detector (robust surprises -> anomaly likelihood -> suppression)."""

from __future__ import annotations

import numpy as np
import pytest

from lifeline.detectors import DETECTORS, ParamError
from lifeline.detectors.ensemble import EnsembleDetector, EnsembleParams

T0 = 1_764_403_200.0


def _scores(det: EnsembleDetector, xs: np.ndarray, step: float = 300.0) -> np.ndarray:
    out = np.zeros(len(xs))
    for i, x in enumerate(xs):
        v = det.update(T0 + i * step, float(x))
        out[i] = v.score if v is not None else np.nan
    return out


def _noise(n: int = 3000, seed: int = 1) -> np.ndarray:
    return 10.0 + np.random.default_rng(seed).normal(0.0, 1.0, n)


def test_registered_and_buildable_from_yaml_config() -> None:
    assert DETECTORS.get("ensemble") is EnsembleDetector
    det = EnsembleDetector.from_config({"window": 256, "suppress": 50, "season_s": "1h"})
    assert det.params.window == 256 and det.params.season_s == 3600.0


def test_bad_params_are_rejected_by_name() -> None:
    with pytest.raises(ParamError, match="tail"):
        EnsembleDetector(EnsembleParams(tail="student"))
    with pytest.raises(ParamError, match="likelihood_learn"):
        EnsembleDetector(EnsembleParams(history=100, likelihood_learn=200))


def test_a_spike_in_noise_scores_far_above_the_noise() -> None:
    xs = _noise()
    xs[2500] += 12.0
    s = _scores(EnsembleDetector(), xs)
    quiet = np.nanmax(s[1000:2500])
    assert s[2500] > 0.5 > quiet
    assert int(np.nanargmax(s)) == 2500


def test_a_level_shift_is_detected_at_once() -> None:
    xs = _noise()
    xs[2500:] += 6.0
    s = _scores(EnsembleDetector(), xs)
    assert np.nanmax(s[2500:2505]) > 0.5 > np.nanmax(s[1000:2500])


def test_a_broken_daily_pattern_is_seen_by_the_seasonal_difference() -> None:
    """A day whose peak is missing: no value is out of range, only the comparison with yesterday flags it."""
    n = 288 * 12  # 12 days of 5-minute readings
    i = np.arange(n)
    xs = 50 + 40 * np.sin(2 * np.pi * i / 288) + np.random.default_rng(4).normal(0, 1.0, n)
    day = slice(288 * 10, 288 * 11)
    xs[day] = np.minimum(xs[day], 60.0)  # the peak is clipped for one day
    with_season = _scores(EnsembleDetector(), xs)
    without = _scores(EnsembleDetector(EnsembleParams(season_s=0.0)), xs)
    assert np.nanmax(with_season[day]) > 0.5
    assert np.nanmax(with_season[day]) > np.nanmax(without[day])


def test_a_noisy_series_does_not_alarm_more_than_a_quiet_one() -> None:
    """The likelihood step judges surprise relative to the series' own history: scale does not matter."""
    quiet = _scores(EnsembleDetector(), _noise(seed=2) * 0.01)
    loud = _scores(EnsembleDetector(), _noise(seed=2) * 100.0)
    np.testing.assert_allclose(quiet, loud, atol=1e-9)


def test_alarm_suppression_scales_the_echoes_down() -> None:
    xs = _noise()
    xs[2500] += 12.0
    xs[2520] += 12.0  # a second spike inside the suppression period
    p = EnsembleParams(suppress=100, suppress_factor=0.5)
    s = _scores(EnsembleDetector(p), xs)
    off = _scores(EnsembleDetector(EnsembleParams(suppress=100, suppress_factor=1.0)), xs)
    assert s[2500] == pytest.approx(off[2500])
    assert s[2520] == pytest.approx(0.5 * off[2520])
    assert s[2520] < 0.5 <= s[2500]


def test_scores_are_graded_and_never_exactly_one() -> None:
    xs = _noise()
    xs[::250] += 30.0
    s = _scores(EnsembleDetector(), xs)
    s = s[~np.isnan(s)]
    assert s.max() < 1.0 and s.min() >= 0.0 and len(np.unique(s)) > 100


def test_warm_up_is_silent_then_speaks() -> None:
    det = EnsembleDetector()
    out = [det.update(T0 + i, float(x)) for i, x in enumerate(_noise(400))]
    first = next(i for i, v in enumerate(out) if v is not None)
    assert first == det.params.min_samples + det.params.likelihood_learn
    assert all(v is not None for v in out[first:])


def test_flat_series_is_not_infinitely_anomalous() -> None:
    det = EnsembleDetector()
    out = [det.update(T0 + i, 5.0) for i in range(600)]
    scores = [v.score for v in out if v is not None]
    assert scores and max(scores) < 0.06  # an average moment scores ~0.05 (tail 0.5), never an alarm
    v = det.update(T0 + 600, 5.0 + 1e-12)
    assert v is not None and 0.0 <= v.score < 1.0
