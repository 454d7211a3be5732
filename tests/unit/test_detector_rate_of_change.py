"""rate_of_change: the least-squares slope over an event-time window, scored against rate_scale."""

from __future__ import annotations

import numpy as np
import pytest

from lifeline.detectors import ParamError
from lifeline.detectors.base import params_from_config
from lifeline.detectors.rate_of_change import RateOfChangeDetector, RateOfChangeParams

T0 = 1_764_403_200.0


def test_rate_of_change_measures_slope_under_irregular_sampling() -> None:
    """A clean ramp of 0.5 unit/min sampled at random gaps gives value 0.5 and score 1 - 2^-0.5."""
    rng = np.random.default_rng(11)
    ts = T0 + np.cumsum(rng.uniform(5.0, 90.0, 200))
    det = RateOfChangeDetector()
    verdicts = [det.update(float(t), 0.5 * (t - T0) / 60.0) for t in ts]
    last = verdicts[-1]
    assert last is not None
    assert last.value == pytest.approx(0.5, rel=1e-9)
    assert last.score == pytest.approx(1 - 2 ** -0.5, rel=1e-9)


def test_rate_of_change_reports_per_hour() -> None:
    """Gas rising 6 %LEL/h with per='h', rate_scale=5 (REFERENCE §1.2 yellow trend) gives value 6, score > 0.5."""
    det = RateOfChangeDetector(RateOfChangeParams(window_s=3600.0, per="h", rate_scale=5.0, side="up"))
    verdicts = [det.update(T0 + 60 * i, 2.0 + 6.0 * i / 60) for i in range(90)]
    last = verdicts[-1]
    assert last is not None and last.value == pytest.approx(6.0, rel=1e-9)
    assert last.score == pytest.approx(1 - 2 ** -1.2, rel=1e-9)


def test_rate_of_change_detects_ponding_rise_within_five_readings() -> None:
    """Ponding rising 1.5 cm/min in 0.3 cm noise scores >= 0.5 (rate_scale 1 cm/min, §3.2) within 5 readings."""
    rng = np.random.default_rng(5)
    depth = 2.0 + rng.normal(0, 0.3, 120)
    depth[60:] += 1.5 * np.arange(1, 61)
    det = RateOfChangeDetector(RateOfChangeParams(window_s=300.0, side="up"))
    scores = [v.score if (v := det.update(T0 + 60 * i, float(x))) else 0.0 for i, x in enumerate(depth)]
    assert max(scores[:60]) < 0.5
    first = next(i for i, s in enumerate(scores) if s >= 0.5)
    assert 60 <= first <= 64


def test_rate_of_change_stays_quiet_on_stationary_noise() -> None:
    """2,000 readings of white noise (sigma 0.5, one a minute) never score 0.5 with the defaults."""
    rng = np.random.default_rng(2)
    det = RateOfChangeDetector()
    scores = [v.score for i, x in enumerate(rng.normal(10, 0.5, 2000)) if (v := det.update(T0 + 60 * i, float(x)))]
    assert len(scores) > 1900 and max(scores) < 0.5


def test_rate_of_change_side_down_scores_only_falls() -> None:
    """With side='down' a rise scores 0 (value still signed) and a fall of rate_scale scores 0.5."""
    up = RateOfChangeDetector(RateOfChangeParams(side="down"))
    rising = [up.update(T0 + 60 * i, float(i)) for i in range(10)][-1]
    assert rising is not None and rising.score == 0.0 and rising.value == pytest.approx(1.0)
    down = RateOfChangeDetector(RateOfChangeParams(side="down"))
    falling = [down.update(T0 + 60 * i, float(-i)) for i in range(10)][-1]
    assert falling is not None and falling.score == pytest.approx(0.5)


def test_rate_of_change_warms_up_again_after_silence() -> None:
    """After a silence longer than window_s the old readings are gone: no verdict until min_span_s again."""
    det = RateOfChangeDetector(RateOfChangeParams(window_s=600.0, min_span_s=120.0))
    for i in range(10):
        det.update(T0 + 60 * i, 1.0)
    assert det.update(T0 + 3600, 50.0) is None
    assert det.update(T0 + 3660, 50.0) is None
    after = det.update(T0 + 3720, 50.0)
    assert after is not None and after.value == 0.0


def test_rate_of_change_ignores_readings_not_after_the_last() -> None:
    """A reading with ts equal to or before the previous one gives None and changes nothing."""
    det = RateOfChangeDetector()
    ref = RateOfChangeDetector()
    for i in range(5):
        det.update(T0 + 60 * i, float(i))
        ref.update(T0 + 60 * i, float(i))
    assert det.update(T0 + 240, 99.0) is None
    assert det.update(T0 + 100, 99.0) is None
    assert det.snapshot() == ref.snapshot()


def test_rate_of_change_bounds_memory_by_max_samples() -> None:
    """At 10 readings a second over a 10-minute window it keeps at most max_samples readings."""
    det = RateOfChangeDetector(RateOfChangeParams(max_samples=50))
    for i in range(1000):
        det.update(T0 + 0.1 * i, 1.0)
    assert len(det.snapshot()["ts"]) == 50


def test_rate_of_change_accepts_durations_in_yaml() -> None:
    """window_s and min_span_s accept '30m' and '2m' as in rule files."""
    p = params_from_config(RateOfChangeParams, {"window_s": "30m", "min_span_s": "2m", "per": "h"})
    assert p == RateOfChangeParams(window_s=1800.0, min_span_s=120.0, per="h")


def test_rate_of_change_rejects_bad_params_with_exact_messages() -> None:
    """Every bad value is reported at once, naming the field, the rule and the value."""
    with pytest.raises(ParamError) as err:
        params_from_config(RateOfChangeParams, {"window_s": 0.0, "min_samples": 1, "per": "day", "rate_scale": -1.0,
                                                "side": "left", "max_samples": 1, "fit": "ransac"})
    assert err.value.problems == [
        ("window_s", "must be positive (got 0.0)"),
        ("max_samples", "must be at least 2 (got 1)"),
        ("min_samples", "must be between 2 and max_samples=1 (got 1)"),
        ("min_span_s", "must be at least 0 and less than window_s=0.0 (got 120.0)"),
        ("per", "must be 's', 'min' or 'h' (got 'day')"),
        ("rate_scale", "must be positive (got -1.0)"),
        ("side", "must be 'both', 'up' or 'down' (got 'left')"),
        ("fit", "must be 'least_squares' or 'theil_sen' (got 'ransac')"),
    ]


def _burst_slopes(fit: str, values: list[float]) -> list[float]:
    """The water burst rule's detector (5-min window, 1-min readings) over ``values``: the rates it gives."""
    det = RateOfChangeDetector(RateOfChangeParams(window_s=300.0, min_span_s=180.0, min_samples=4, per="min",
                                                  side="down", fit=fit))
    out = []
    for k, v in enumerate(values):
        verdict = det.update(T0 + 60.0 * k, v)
        if verdict is not None:
            out.append(verdict.value)
    return out


def test_rate_of_change_theil_sen_ignores_a_glitch_that_least_squares_reads_as_a_fall() -> None:
    """A steady 0.30 MPa main with one reading glitched up by 0.1 MPa (5x the day's spread, as the fault suite
    injects): while the glitch leaves the window the least-squares slope reads a fall of -0.02 then -0.01 MPa/min
    (the burst rule's red and yellow) on two readings in a row; the median of pairwise slopes stays at 0."""
    values = [0.30] * 10 + [0.40] + [0.30] * 10
    ls = _burst_slopes("least_squares", values)
    ts = _burst_slopes("theil_sen", values)
    assert sorted(ls)[:2] == pytest.approx([-0.02, -0.01])
    assert all(r == 0.0 for r in ts)


def test_rate_of_change_theil_sen_sees_a_step_as_least_squares_does() -> None:
    """A 0.05 MPa burst drop in a 5-reading window: least squares reads 0.2d, 0.3d, 0.3d, 0.2d per minute on
    the four readings after the step; the median of pairwise slopes reads about 0.29d on the second and third
    (the step is then in more than half of the pairs) and 0 on the first and fourth. Both pass the yellow
    -0.006 MPa/min on two readings in a row, there within 10 % of each other: a rule with the robust fit
    needs a ``for`` of one interval (two readings), not two."""
    values = [0.30] * 8 + [0.25] * 6
    ls = _burst_slopes("least_squares", values)
    ts = _burst_slopes("theil_sen", values)
    after = 8 - (len(values) - len(ls))  # index of the first verdict after the step
    assert ls[after:after + 4] == pytest.approx([-0.01, -0.015, -0.015, -0.01])
    assert ts[after] == 0.0 and ts[after + 3] == 0.0
    for a, b in zip(ls[after + 1:after + 3], ts[after + 1:after + 3], strict=True):
        assert b <= -0.006 and 0.9 <= b / a <= 1.1


def test_rate_of_change_theil_sen_survives_snapshot() -> None:
    """The robust fit reads the same window the snapshot keeps: restore mid-stream changes nothing."""
    values = [0.30 + 0.001 * ((k * 7) % 5) for k in range(20)]
    params = RateOfChangeParams(window_s=300.0, min_span_s=180.0, min_samples=4, per="min", fit="theil_sen")
    a, b = RateOfChangeDetector(params), RateOfChangeDetector(params)
    for k, v in enumerate(values[:10]):
        a.update(T0 + 60.0 * k, v)
        b.update(T0 + 60.0 * k, v)
    c = RateOfChangeDetector(params)
    c.restore(b.snapshot())
    for k, v in enumerate(values[10:], start=10):
        assert a.update(T0 + 60.0 * k, v) == c.update(T0 + 60.0 * k, v)
