"""cusum: Page's two-sided tabular CUSUM on a baseline learned in the warm-up."""

from __future__ import annotations

import numpy as np
import pytest

from lifeline.detectors import ParamError
from lifeline.detectors.base import Verdict, params_from_config
from lifeline.detectors.cusum import CUSUMDetector, CUSUMParams

T0 = 1_764_403_200.0


def _run(det: CUSUMDetector, xs: np.ndarray) -> list[Verdict | None]:
    return [det.update(T0 + 60 * i, float(x)) for i, x in enumerate(xs)]


def _first_alarm(verdicts: list[Verdict | None]) -> int:
    return next(i for i, v in enumerate(verdicts) if v is not None and v.score >= 0.5)


def test_cusum_sums_standardised_deviations_minus_k() -> None:
    """Readings of mean + 2 sigma add 2 - k = 1.5 sigmas each to S+; value is S+, score 1 - 2^(-S/h)."""
    det = CUSUMDetector(CUSUMParams(warmup=20))
    _run(det, np.array([9.0, 11.0] * 10))
    base = det.baseline
    assert base is not None
    mean, sigma = base
    values = [v.value for i in range(4) if (v := det.update(T0 + 9000 + i, mean + 2 * sigma))]
    assert values == pytest.approx([1.5, 3.0, 4.5, 6.0], rel=1e-12)
    last = det.update(T0 + 9999, mean + 2 * sigma)
    assert last is not None and last.score == pytest.approx(1 - 2 ** (-7.5 / 12.0), rel=1e-12)


def test_cusum_detects_a_one_sigma_step_within_forty_readings() -> None:
    """A +1 sigma step (DMA inflow after a burst) scores >= 0.5 within 40 readings (median over seeds: 21)."""
    rng = np.random.default_rng(7)
    xs = rng.normal(100.0, 2.0, 600)
    xs[200:] += 2.0
    assert 200 <= _first_alarm(_run(CUSUMDetector(), xs)) <= 240


def test_cusum_detects_a_three_sigma_drop_within_ten_readings() -> None:
    """A -3 sigma pressure step scores >= 0.5 within 10 readings (S- gains 2.5 a reading: 12 / 2.5 -> 5)."""
    rng = np.random.default_rng(9)
    xs = rng.normal(0.30, 0.01, 400)
    xs[250:] -= 0.03
    assert 250 <= _first_alarm(_run(CUSUMDetector(), xs)) <= 260


def test_cusum_stays_quiet_on_stationary_noise() -> None:
    """2,000 readings of in-control noise after the warm-up never score 0.5 with the defaults."""
    rng = np.random.default_rng(2)
    verdicts = [v for v in _run(CUSUMDetector(), rng.normal(10.0, 0.5, 2200)) if v is not None]
    assert len(verdicts) == 2000 and max(v.score for v in verdicts) < 0.5


def test_cusum_hold_caps_the_sums() -> None:
    """With after_signal='hold' a lasting shift keeps value at cap * h, the score at 1 - 2^-cap (never 1.0)."""
    rng = np.random.default_rng(4)
    xs = rng.normal(0.0, 1.0, 600)
    xs[200:] += 5.0
    last = _run(CUSUMDetector(), xs)[-1]
    assert last is not None and last.value == 36.0 and last.score == pytest.approx(1 - 2 ** -3.0)


def test_cusum_zero_restarts_the_sums_after_a_signal() -> None:
    """With after_signal='zero' the reading after a signal starts from 0: value drops below h."""
    rng = np.random.default_rng(4)
    xs = rng.normal(0.0, 1.0, 400)
    xs[200:] += 3.0
    verdicts = _run(CUSUMDetector(CUSUMParams(after_signal="zero")), xs)
    first = _first_alarm(verdicts)
    after = verdicts[first + 1]
    assert after is not None and after.value < 12.0 * 0.5


def test_cusum_relearn_goes_quiet_at_the_new_level() -> None:
    """With after_signal='relearn' a step to a new set point signals once, warms up again, then stays quiet."""
    rng = np.random.default_rng(6)
    xs = rng.normal(0.25, 0.005, 1200)
    xs[300:] += 0.05
    det = CUSUMDetector(CUSUMParams(after_signal="relearn"))
    verdicts = _run(det, xs)
    first = _first_alarm(verdicts)
    assert 300 <= first <= 310
    assert all(v is None for v in verdicts[first + 1:first + 201])
    assert max(v.score for v in verdicts[first + 201:] if v is not None) < 0.5
    base = det.baseline
    assert base is not None and base[0] == pytest.approx(0.30, abs=0.002)


def test_cusum_rejects_bad_params_with_exact_messages() -> None:
    """Every bad value is reported at once, naming the field, the rule and the value."""
    with pytest.raises(ParamError) as err:
        params_from_config(CUSUMParams, {"k": -0.5, "h": 0.0, "warmup": 3, "after_signal": "reset", "cap": 0.5,
                                         "min_sigma": -1.0, "side": "all"})
    assert err.value.problems == [
        ("k", "must not be negative (got -0.5)"),
        ("h", "must be positive (got 0.0)"),
        ("warmup", "must be at least 10 (got 3)"),
        ("after_signal", "must be 'hold', 'zero' or 'relearn' (got 'reset')"),
        ("cap", "must be at least 1 (got 0.5)"),
        ("min_sigma", "must be positive (got -1.0)"),
        ("side", "must be 'both', 'up' or 'down' (got 'all')"),
    ]
