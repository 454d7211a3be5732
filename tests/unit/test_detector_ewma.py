"""ewma: an EWMA control chart on a baseline learned in the warm-up, then frozen."""

from __future__ import annotations

import numpy as np
import pytest

from lifeline.detectors import ParamError
from lifeline.detectors.base import Verdict, params_from_config
from lifeline.detectors.ewma import EWMADetector, EWMAParams

T0 = 1_764_403_200.0


def _scores(det: EWMADetector, xs: np.ndarray) -> list[Verdict | None]:
    return [det.update(T0 + 60 * i, float(x)) for i, x in enumerate(xs)]


def _first_alarm(verdicts: list[Verdict | None]) -> int:
    return next(i for i, v in enumerate(verdicts) if v is not None and v.score >= 0.5)


def test_ewma_gives_no_verdict_during_warmup() -> None:
    """The first `warmup` readings give None; the next gives a verdict and the baseline is set."""
    det = EWMADetector(EWMAParams(warmup=20))
    rng = np.random.default_rng(1)
    verdicts = _scores(det, rng.normal(5.0, 1.0, 21))
    assert all(v is None for v in verdicts[:20]) and verdicts[20] is not None
    assert det.baseline is not None


def test_ewma_value_is_the_standardised_statistic() -> None:
    """One reading of mean + 1 sigma after the warm-up gives z = lam, sigma_z = lam*sigma: value exactly 1."""
    det = EWMADetector(EWMAParams(warmup=20))
    _scores(det, np.array([9.0, 11.0] * 10))
    base = det.baseline
    assert base is not None
    mean, sigma = base
    v = det.update(T0 + 9999, mean + sigma)
    assert v is not None and v.value == pytest.approx(1.0, rel=1e-12)
    assert v.score == pytest.approx(1 - 2 ** (-1 / 4.5), rel=1e-12)


def test_ewma_detects_a_one_sigma_step_within_forty_readings() -> None:
    """A +1 sigma step right after the warm-up scores >= 0.5 within 40 readings (median over seeds: 20)."""
    rng = np.random.default_rng(7)
    xs = rng.normal(100.0, 2.0, 600)
    xs[200:] += 2.0
    verdicts = _scores(EWMADetector(), xs)
    assert 200 <= _first_alarm(verdicts) <= 240


def test_ewma_detects_a_creeping_night_flow_within_160_readings() -> None:
    """Night flow creeping up 0.01 sigma a reading (a growing leak) scores >= 0.5 within 160 readings."""
    rng = np.random.default_rng(8)
    xs = rng.normal(30.0, 1.5, 800)
    xs[200:] += 0.015 * np.arange(600)
    verdicts = _scores(EWMADetector(EWMAParams(side="up")), xs)
    assert 200 <= _first_alarm(verdicts) <= 360


def test_ewma_stays_quiet_on_stationary_noise() -> None:
    """2,000 readings of in-control noise after the warm-up never score 0.5 with the defaults."""
    rng = np.random.default_rng(2)
    verdicts = [v for v in _scores(EWMADetector(), rng.normal(10.0, 0.5, 2200)) if v is not None]
    assert len(verdicts) == 2000 and max(v.score for v in verdicts) < 0.5


def test_ewma_warmup_ignores_spikes() -> None:
    """Five 40-sigma spikes in the warm-up move neither the learned mean nor sigma by more than 10 %."""
    rng = np.random.default_rng(3)
    xs = rng.normal(0.0, 1.0, 200)
    xs[[10, 50, 90, 130, 170]] = 40.0
    det = EWMADetector()
    _scores(det, xs)
    base = det.baseline
    assert base is not None
    assert abs(base[0]) < 0.1 and 0.9 < base[1] < 1.1


def test_ewma_side_up_ignores_a_drop() -> None:
    """With side='up' a 3-sigma drop scores 0 while value goes strongly negative."""
    rng = np.random.default_rng(4)
    xs = rng.normal(0.0, 1.0, 300)
    xs[200:] -= 3.0
    last = _scores(EWMADetector(EWMAParams(side="up")), xs)[-1]
    assert last is not None and last.score == 0.0 and last.value < -4.5


def test_ewma_rejects_bad_params_with_exact_messages() -> None:
    """Every bad value is reported at once, naming the field, the rule and the value."""
    with pytest.raises(ParamError) as err:
        params_from_config(EWMAParams, {"lam": 0.0, "L": -1.0, "warmup": 5, "min_sigma": 0.0, "side": "sideways"})
    assert err.value.problems == [
        ("lam", "must be in (0, 1] (got 0.0)"),
        ("L", "must be positive (got -1.0)"),
        ("warmup", "must be at least 10 (got 5)"),
        ("min_sigma", "must be positive (got 0.0)"),
        ("side", "must be 'both', 'up' or 'down' (got 'sideways')"),
    ]
