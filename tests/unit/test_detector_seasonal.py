"""Seasonal baseline: learns a diurnal demand curve, flags a night-flow step, not the morning peak."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from lifeline.detectors import DETECTORS, ParamError
from lifeline.detectors.seasonal import SeasonalDetector, SeasonalParams, parse_window

CST = timezone(timedelta(hours=8))
DAY0 = datetime(2025, 12, 1, tzinfo=CST).timestamp()  # local midnight, UTC+8
STEP_S = 300.0  # 5-min readings
# Residential water-use likelihood by hour, 01:00 .. 24:00 (Roberts 2005, REFERENCE §2.2 [W9])
ROBERTS = [200, 100, 50, 30, 30, 30, 90, 270, 600, 500, 480, 430, 390, 290, 250, 230, 240, 280, 450, 400,
           330, 340, 310, 240]


def _demand(hours: np.ndarray) -> np.ndarray:
    """DMA inflow in m³/h: the Roberts curve damped to 0.4-1.6 x 100 m³/h (city scale, §2.2 ⚠INF)."""
    r = np.array(ROBERTS, dtype=float)
    shape = 0.4 + 1.2 * (r - r.min()) / (r.max() - r.min())
    knots = np.arange(1, 26, dtype=float)  # value at hour h is the count for hour h; 25 wraps to 01:00
    return 100.0 * np.interp(hours % 24 + (hours % 24 < 1) * 24, knots, np.append(shape, shape[0]))


def _days(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """n days of 5-min DMA inflow: the curve, a ±2 % day factor (1 on the last day), ±2 % reading noise."""
    rng = np.random.default_rng(seed)
    per_day = int(86400 / STEP_S)
    t = DAY0 + np.arange(n * per_day) * STEP_S
    hours = (t - DAY0) / 3600.0
    factors = rng.normal(1.0, 0.02, n)
    factors[-1] = 1.0  # the day under test is an ordinary day
    day_factor = np.repeat(factors, per_day)
    return t, _demand(hours) * day_factor * rng.normal(1.0, 0.02, t.size)


def _run(det: SeasonalDetector, t: np.ndarray, x: np.ndarray) -> list[float | None]:
    out = []
    for ts, v in zip(t, x, strict=True):
        verdict = det.update(float(ts), float(v))
        out.append(None if verdict is None else verdict.value)
    return out


def _local_hour(ts: float) -> float:
    return (ts - DAY0) % 86400 / 3600.0


def test_seasonal_is_registered() -> None:
    """The registry resolves 'seasonal' to this detector."""
    assert DETECTORS.get("seasonal") is SeasonalDetector


def test_seasonal_does_not_flag_the_normal_morning_peak() -> None:
    """After two weeks of learning, an ordinary day's 07:00-11:00 peak (~3x the night) stays within 3 sigma."""
    t, x = _days(15)
    z = _run(SeasonalDetector(), t, x)
    day = [v for v in z[-288:] if v is not None]
    peak = [v for ts, v in zip(t[-288:], z[-288:], strict=True) if v is not None and 7 <= _local_hour(ts) < 11]
    assert len(day) == 288 and len(peak) == 48
    assert max(abs(v) for v in peak) < 3.0
    assert sum(abs(v) > 3.0 for v in day) <= 2  # a lone 3-sigma reading is chance; rules add `for:`
    assert x[-288:].max() > 3 * x[-288:].min()  # the peak really is there


def test_seasonal_flags_a_night_flow_step_of_30_percent() -> None:
    """A new leak adding 30 % of the night flow puts every 02:00-04:00 reading above 3 sigma."""
    t, x = _days(8)
    hours = np.array([_local_hour(ts) for ts in t])
    leak = (np.arange(t.size) >= 7 * 288) & (hours >= 1.0)
    x = x + leak * 0.3 * 40.0  # night flow ~40 m³/h
    det = SeasonalDetector(SeasonalParams(window="02:00-04:00", side="up"))
    z = _run(det, t, x)
    night = [v for v in z[-288:] if v is not None]
    assert len(night) == 24
    assert min(night) > 3.0


def test_seasonal_judges_only_inside_the_local_window() -> None:
    """With window 02:00-04:00 at UTC+8, verdicts come only for local 02:00-04:00 readings."""
    t, x = _days(3)
    det = SeasonalDetector(SeasonalParams(window="02:00-04:00"))
    judged = {round(_local_hour(ts), 3) for ts, v in zip(t, _run(det, t, x), strict=True) if v is not None}
    assert judged and min(judged) == 2.0 and max(judged) < 4.0


def test_seasonal_baseline_survives_an_incident() -> None:
    """A +50 % burst for 3 hours on day 4 does not teach the baseline: the 08:00-11:00 peak of day 15 is normal."""
    t, x = _days(15)
    hours = np.array([_local_hour(ts) for ts in t])
    burst = (np.arange(t.size) // 288 == 3) & (hours >= 8) & (hours < 11)
    z = _run(SeasonalDetector(), t, np.where(burst, x * 1.5, x))
    clean = _run(SeasonalDetector(), t, x)
    assert min(v for v, b in zip(z, burst, strict=True) if b and v is not None) > 5.0  # the burst is flagged
    after = [abs(v) for v, h in zip(z[-288:], hours[-288:], strict=True) if v is not None and 8 <= h < 11]
    assert max(after) < 3.0
    drift = [abs(a - b) for a, b in zip(z[-288:], clean[-288:], strict=True) if a is not None and b is not None]
    assert max(drift) < 0.5  # the burst moved day 15's verdicts by less than half a sigma


def test_seasonal_waits_for_min_days_of_history() -> None:
    """With min_days=3 the first verdict comes on the fourth local day."""
    t, x = _days(4)
    z = _run(SeasonalDetector(SeasonalParams(min_days=3)), t, x)
    first = next(i for i, v in enumerate(z) if v is not None)
    assert first == 3 * 288


def test_seasonal_weekly_keeps_one_profile_per_weekday() -> None:
    """Weekly mode judges Monday against Mondays: a quiet Sunday does not make a normal Monday odd."""
    t, x = _days(15)
    weekday = np.array([datetime.fromtimestamp(ts, CST).weekday() for ts in t])
    x = np.where(weekday == 6, x * 0.6, x)  # Sundays are quiet
    det = SeasonalDetector(SeasonalParams(weekly=True, memory_s=28 * 86400.0))
    z = _run(det, t, x)
    last = [v for v in z[-288:] if v is not None]  # day 15 is a Monday, judged against the Monday before
    assert datetime.fromtimestamp(t[-1], CST).weekday() == 0 and len(last) == 288
    assert max(abs(v) for v in last) < 4.0


def test_seasonal_parse_window_reads_local_clock_times() -> None:
    """'02:00-04:00' is 7200-14400 s of the local day; '' is all day; '22:00-02:00' wraps midnight."""
    assert parse_window("02:00-04:00") == (7200.0, 14400.0)
    assert parse_window("") is None
    assert parse_window("22:00-02:00") == (79200.0, 7200.0)


def test_seasonal_params_are_checked_with_exact_messages() -> None:
    """Every bad parameter is reported at once, named, with the value it got."""
    with pytest.raises(ParamError) as err:
        SeasonalDetector.from_config({"bins": 0, "utc_offset_h": 20, "min_days": 0, "memory_s": "12h",
                                      "z_scale": 0, "side": "left", "window": "2-4"})
    assert err.value.problems == [
        ("bins", "must be between 1 and 1440 (got 0)"),
        ("utc_offset_h", "must be between -12 and 14 (got 20.0)"),
        ("min_days", "must be at least 1 (got 0)"),
        ("memory_s", "must be at least one period (86400 s) (got 43200)"),
        ("z_scale", "must be positive (got 0.0)"),
        ("side", "must be 'both', 'up' or 'down' (got 'left')"),
        ("window", "expected local 'HH:MM-HH:MM' like '02:00-04:00' (got '2-4')"),
    ]


def test_seasonal_memory_accepts_a_duration() -> None:
    """memory_s takes YAML durations like '14d'."""
    det = SeasonalDetector.from_config({"memory_s": "14d", "window": "02:00-04:00"})
    assert isinstance(det.params, SeasonalParams) and det.params.memory_s == 14 * 86400.0


def test_seasonal_uses_the_utc_offset_not_the_host_zone() -> None:
    """The same instant falls in local slot 02:00 at UTC+8 and in slot 18:00 at UTC+0."""
    ts = datetime(2025, 12, 1, 18, 0, tzinfo=UTC).timestamp()  # 02:00 next day in UTC+8
    assert SeasonalDetector()._locate(ts)[2] == 7200.0
    assert SeasonalDetector(SeasonalParams(utc_offset_h=0.0))._locate(ts)[2] == 64800.0
