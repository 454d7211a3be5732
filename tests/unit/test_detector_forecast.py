"""Forecast: minutes until a trend reaches its target; huge for flat data, 0 once past."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from lifeline.detectors import DETECTORS, ParamError
from lifeline.detectors.forecast import ForecastDetector, ForecastParams

T0 = 1_764_518_400.0


def _ramp(slope_per_min: float, start: float, minutes: float, seed: int = 5,
          noise: float = 0.0) -> list[tuple[float, float]]:
    """Readings every 20-40 s (irregular) along start + slope * t, with optional Gaussian noise."""
    rng = np.random.default_rng(seed)
    out, t = [], 0.0
    while t <= minutes * 60.0:
        out.append((T0 + t, start + slope_per_min * t / 60.0 + rng.normal(0.0, noise) * (noise > 0)))
        t += float(rng.uniform(20.0, 40.0))
    return out


def _last(det: ForecastDetector, series: list[tuple[float, float]]) -> tuple[float, float]:
    verdict = None
    for ts, v in series:
        verdict = det.update(ts, v)
    assert verdict is not None
    return verdict.value, verdict.score


def test_forecast_is_registered() -> None:
    """The registry resolves 'forecast' to this detector."""
    assert DETECTORS.get("forecast") is ForecastDetector


def test_forecast_gives_minutes_left_on_a_linear_ramp() -> None:
    """Density rising 0.1 p/m² per min, now at 3.8: red (5 p/m²) is 12 minutes away."""
    series = _ramp(0.1, 1.0, 28.0)
    value, score = _last(ForecastDetector(), series)
    level_now = 1.0 + 0.1 * (series[-1][0] - T0) / 60.0
    assert value == pytest.approx((5.0 - level_now) / 0.1, abs=1e-6)
    assert score == pytest.approx(0.9 * (1.0 - value / 60.0))


def test_forecast_is_close_on_a_noisy_ramp() -> None:
    """Ponding rising 1 cm/min with ±0.3 cm noise, 25 cm target, 10-min fit: within a minute of the truth."""
    series = _ramp(1.0, 0.0, 15.0, noise=0.3)  # over 200 seeds the error has sd 0.33 min
    det = ForecastDetector(ForecastParams(target=25.0))
    value, _ = _last(det, series)
    truth = 25.0 - (series[-1][0] - T0) / 60.0
    assert abs(value - truth) < 1.0


def test_forecast_shrinks_as_the_target_approaches() -> None:
    """Along a ramp the forecast minutes fall monotonically and the score rises."""
    det = ForecastDetector()
    verdicts = [det.update(ts, v) for ts, v in _ramp(0.1, 1.0, 39.0)]
    got = [v for v in verdicts if v is not None]
    values, scores = [v.value for v in got], [v.score for v in got]
    assert all(a > b for a, b in pairwise(values))
    assert all(a < b for a, b in pairwise(scores))


def test_forecast_gives_the_horizon_for_flat_data() -> None:
    """A flat or noisy-flat series is not heading anywhere: value = horizon (60 min), score 0."""
    assert _last(ForecastDetector(), _ramp(0.0, 1.0, 30.0)) == (60.0, 0.0)
    value, score = _last(ForecastDetector(), _ramp(0.0, 1.0, 30.0, noise=0.05))
    assert (value, score) == (60.0, 0.0)


def test_forecast_gives_the_horizon_when_moving_away() -> None:
    """A falling density never reaches 5 p/m² from below."""
    assert _last(ForecastDetector(), _ramp(-0.05, 4.0, 20.0))[0] == 60.0


def test_forecast_is_zero_once_past_and_grades_time_past() -> None:
    """Past the target: value 0, score above 0.9 and rising with the time spent past, never 1.0."""
    det = ForecastDetector()
    got = [det.update(ts, v) for ts, v in _ramp(0.1, 6.0, 30.0)]
    past = [v for v in got if v is not None]
    assert {v.value for v in past} == {0.0}
    scores = [v.score for v in past]
    assert 0.9 <= scores[0] < scores[-1] < 1.0


def test_forecast_down_side_watches_a_falling_pressure() -> None:
    """Pressure falling 0.002 MPa/min from 0.30 with side 'down': 0.14 MPa is reached at minute 80."""
    det = ForecastDetector(ForecastParams(target=0.14, side="down", horizon_s=7200.0))
    series = _ramp(-0.002, 0.30, 30.0)
    value, _ = _last(det, series)
    assert value == pytest.approx(80.0 - (series[-1][0] - T0) / 60.0, abs=1e-6)


def test_forecast_waits_after_a_gap_longer_than_the_window() -> None:
    """Readings older than window_s are forgotten: after a 20-min silence the first reading gives None."""
    det = ForecastDetector()
    series = _ramp(0.1, 1.0, 10.0)
    for ts, v in series:
        det.update(ts, v)
    assert det.update(series[-1][0] + 1200.0, 3.0) is None


def test_forecast_memory_is_bounded_by_max_samples() -> None:
    """At 1 Hz with max_samples=100, the window holds 100 readings, not 600."""
    det = ForecastDetector(ForecastParams(max_samples=100))
    for i in range(2000):
        det.update(T0 + i, 1.0 + 0.001 * i)
    assert len(det.snapshot()["pts"]) == 100


def test_forecast_params_are_checked_with_exact_messages() -> None:
    """Every bad parameter is reported at once, named, with the value it got."""
    with pytest.raises(ParamError) as err:
        ForecastDetector.from_config({"side": "sideways", "window_s": 0, "horizon_s": "30s", "min_samples": 2})
    assert err.value.problems == [
        ("side", "must be 'up', 'down' or 'both' (got 'sideways')"),
        ("window_s", "must be positive (got 0)"),
        ("horizon_s", "must be at least 60 s (got 30)"),
        ("min_samples", "must be between 3 and max_samples=1000 (got 2)"),
    ]


def test_forecast_durations_accept_yaml_strings() -> None:
    """window_s and horizon_s take '5m' and '2h'."""
    det = ForecastDetector.from_config({"target": 25, "window_s": "5m", "horizon_s": "2h"})
    assert det.params == ForecastParams(target=25.0, window_s=300.0, horizon_s=7200.0)
