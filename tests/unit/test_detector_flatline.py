"""Flatline: a stuck sensor is called after min_duration_s, a healthy or legitimately constant one never."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from lifeline.detectors import DETECTORS, ParamError, Verdict
from lifeline.detectors.flatline import FlatlineDetector, FlatlineParams
from lifeline.registry import Registry, load_registry
from simulators.faults import Fault
from simulators.runner import simulate_sensor
from simulators.scenario import Scenario

DEMO = Path(__file__).resolve().parents[2] / "lifeline" / "data" / "demo_city"
T0 = 1784044800.0  # 2026-07-15 00:00 +08:00
DAY = 86400.0
FAULT_AT = T0 + 6 * 3600.0


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(DEMO / "sensors.csv", DEMO / "districts.geojson")


def _series(registry: Registry, sensor: str, metric: str, faults: list[Fault] | None = None,
            seed: int = 1) -> tuple[list[float], list[float]]:
    """One simulated day of one metric, as sent on the wire (rounded), with faults applied."""
    stream = simulate_sensor(registry.sensors[sensor], Scenario("t", T0, DAY, seed), [], faults or [])
    return stream.ts.tolist(), [float(v) for v in stream.column(metric)]


def _run(det: FlatlineDetector, ts: list[float], xs: list[float]) -> list[Verdict | None]:
    return [det.update(t, x) for t, x in zip(ts, xs, strict=True)]


def _first_call(ts: list[float], verdicts: list[Verdict | None]) -> float | None:
    return next((t for t, v in zip(ts, verdicts, strict=True) if v is not None and v.score >= 0.5), None)


@pytest.mark.parametrize(("sensor", "metric"), [("BH-WAT-M1-N1", "pressure_mpa"), ("BH-GAS-C1-W02", "ch4_lel"),
                                                 ("BH-GAS-C1-P1", "pressure_mpa")])
def test_flatline_catches_stuck_fault_within_min_duration(registry: Registry, sensor: str, metric: str) -> None:
    """A `stuck` fault is called 30 min (min_duration_s) after it starts, give or take two readings."""
    ts, xs = _series(registry, sensor, metric, [Fault(0, "stuck", sensor, FAULT_AT, FAULT_AT + 7200.0, metric)])
    verdicts = _run(FlatlineDetector(), ts, xs)
    first = _first_call(ts, verdicts)
    assert first is not None and FAULT_AT + 1800.0 <= first <= FAULT_AT + 1800.0 + 120.0
    assert _first_call(ts[: ts.index(first)], verdicts[: ts.index(first)]) is None


def test_flatline_value_is_flat_seconds_and_score_is_graded(registry: Registry) -> None:
    """value counts the flat seconds; the score is 0.5 at min_duration_s and keeps rising below 1."""
    sensor, metric = "BH-WAT-M1-N1", "pressure_mpa"
    ts, xs = _series(registry, sensor, metric, [Fault(0, "stuck", sensor, FAULT_AT, FAULT_AT + 7200.0, metric)])
    verdicts = _run(FlatlineDetector(), ts, xs)
    inside = [(t, v) for t, v in zip(ts, verdicts, strict=True) if v is not None and FAULT_AT <= t < FAULT_AT + 7200]
    t_first = inside[0][0]
    assert all(v.value == pytest.approx(t - t_first) for t, v in inside)
    scores = [v.score for _, v in inside]
    assert scores == sorted(scores) and scores[-1] < 1.0 and scores[-1] > 0.75


@pytest.mark.parametrize(("sensor", "metric"), [("BH-WAT-M1-N1", "pressure_mpa"), ("BH-GAS-C1-W02", "ch4_lel"),
                                                 ("BH-GAS-C1-P1", "pressure_mpa"), ("BH-DRN-S1", "fill_ratio")])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_flatline_clean_day_gives_no_finding(registry: Registry, sensor: str, metric: str, seed: int) -> None:
    """A healthy simulated day never scores 0.5 or more."""
    ts, xs = _series(registry, sensor, metric, seed=seed)
    assert max(v.score for v in _run(FlatlineDetector(), ts, xs) if v is not None) < 0.5


def test_flatline_ends_when_the_value_moves(registry: Registry) -> None:
    """The first reading after a stuck stretch scores near 0, so the health alert can clear."""
    sensor, metric = "BH-WAT-M1-N1", "pressure_mpa"
    ts, xs = _series(registry, sensor, metric, [Fault(0, "stuck", sensor, FAULT_AT, FAULT_AT + 7200.0, metric)])
    verdicts = _run(FlatlineDetector(), ts, xs)
    after = next(i for i, t in enumerate(ts) if t >= FAULT_AT + 7200.0)
    assert verdicts[after - 1] is not None and verdicts[after - 1].score > 0.75
    assert verdicts[after] is not None and verdicts[after].score < 0.1


def test_flatline_dry_underpass_at_zero_is_not_flatlined_with_ignore_values() -> None:
    """A dry underpass gauge reading exactly 0 cm for two days: called by default, never with ignore_values [0]."""
    ts = [T0 + 60.0 * i for i in range(2 * 1440)]
    xs = [0.0] * len(ts)
    assert _first_call(ts, _run(FlatlineDetector(), ts, xs)) is not None
    quiet = _run(FlatlineDetector(FlatlineParams(ignore_values=(0.0,))), ts, xs)
    assert all(v is None or (v.score == 0.0 and v.value == 0.0) for v in quiet)


def test_flatline_ignore_values_still_catches_a_gauge_stuck_elsewhere() -> None:
    """With ignore_values [0] a gauge stuck at 12.3 cm after a storm is still called."""
    ts = [T0 + 60.0 * i for i in range(240)]
    xs = [0.0] * 60 + [0.5 * i for i in range(30)] + [12.3] * 150
    det = FlatlineDetector(FlatlineParams(ignore_values=(0.0,)))
    first = _first_call(ts, _run(det, ts, xs))
    assert first == pytest.approx(ts[89] + 1800.0)


def test_flatline_noisy_dry_underpass_is_quiet_with_ignore_below(registry: Registry) -> None:
    """The simulated dry underpass (0-0.6 cm of gauge noise) is never flatlined with ignore_below 0.5."""
    ts, xs = _series(registry, "BH-DRN-U1", "depth_cm")
    verdicts = _run(FlatlineDetector(FlatlineParams(ignore_below=0.5)), ts, xs)
    assert max(v.score for v in verdicts if v is not None) < 0.5


def test_flatline_slow_sensor_is_not_called_for_two_equal_readings() -> None:
    """Two equal readings 6 h apart are not a flat run: min_samples holds the call back."""
    det = FlatlineDetector()
    assert det.update(T0, 3.0) is None
    v = det.update(T0 + 6 * 3600.0, 3.0)
    assert v is not None and v.value == 6 * 3600.0 and v.score < 0.5


def test_flatline_quantised_sensor_needs_a_longer_run() -> None:
    """A 0/1 contact that often repeats itself is not called after 31 equal readings; a precise one is."""
    rng = np.random.default_rng(5)
    flips = (np.cumsum(rng.random(3000) < 0.1) % 2).astype(float).tolist()  # a flip every ~10 readings
    ts = [T0 + 60.0 * i for i in range(3000 + 31)]
    det = FlatlineDetector()
    _run(det, ts[:3000], flips)
    v = _run(det, ts[3000:], [flips[-1]] * 31)[-1]
    assert v is not None and v.value >= 1800.0 and v.score < 0.5
    precise = FlatlineDetector(FlatlineParams(expected_change=0.5))
    assert (w := _run(precise, ts[:31], [1.0] * 31)[-1]) is not None and w.score >= 0.5


def test_flatline_drift_and_dropout_are_not_flatlines(registry: Registry) -> None:
    """Drift and dropout faults are for other rules (drift, nodata): no flat run is called."""
    sensor, metric = "BH-WAT-M1-N1", "pressure_mpa"
    faults = [Fault(0, "drift", sensor, FAULT_AT, FAULT_AT + 7200.0, metric, {"rate_per_h": -0.06}),
              Fault(1, "dropout", sensor, FAULT_AT + 9000.0, FAULT_AT + 12600.0)]
    ts, xs = _series(registry, sensor, metric, faults)
    assert max(v.score for v in _run(FlatlineDetector(), ts, xs) if v is not None) < 0.5


def test_flatline_is_a_registered_health_detector() -> None:
    """Registered as 'flatline', and its findings are health alerts."""
    assert DETECTORS.get("flatline") is FlatlineDetector and FlatlineDetector.health


def test_flatline_params_from_yaml_and_bad_values_named() -> None:
    """ignore_values comes from a YAML list; every bad value is named at once."""
    det = FlatlineDetector.from_config({"ignore_values": [0, 1], "min_duration_s": "1h"})
    assert isinstance(det.params, FlatlineParams)
    assert det.params.ignore_values == (0.0, 1.0) and det.params.min_duration_s == 3600.0
    with pytest.raises(ParamError) as err:
        FlatlineDetector.from_config({"ignore_values": 0, "min_samples": 1, "ignore_below": "low"})
    assert {k for k, _ in err.value.problems} == {"ignore_values", "min_samples", "ignore_below"}


@pytest.mark.parametrize("learn_steps", [10, 500, 7777])
def test_flatline_one_reading_run_learned_as_the_general_rule_would(learn_steps: int) -> None:
    """The shortcut for a run of one reading (every step of a noisy series) learns the same floats as
    the general rule: no flat step, so never called, d**0 = 1 and nothing grown."""
    rng = random.Random(learn_steps)
    for _ in range(300):
        state = {"seen": True, "run_n": 1, "run_start": 60.0, "run_last": 60.0, "lo": 1.0, "hi": 1.0,
                 "flat_w": rng.choice([0.0, rng.uniform(0, learn_steps)]), "all_w": rng.uniform(0, learn_steps)}
        state["all_w"] = max(state["all_w"], state["flat_w"])
        fast = FlatlineDetector(FlatlineParams(learn_steps=learn_steps))
        full = FlatlineDetector(FlatlineParams(learn_steps=learn_steps))
        fast.restore(state)
        full.restore(state)
        fast._learn_step()
        full._learn_run()
        assert fast.snapshot() == full.snapshot() and fast._surprise_step == full._surprise_step


def test_flatline_numpy_and_float_input_give_the_same_verdicts_and_state() -> None:
    """numpy scalars are converted on the way in: the same verdicts, and a JSON-able snapshot."""
    rng = random.Random(3)
    # noise, flat stretches and readings at the ignored 0
    xs = [0.0 if i % 97 == 0 else round(rng.gauss(1.0, 0.3), 1) if i % 50 < 40 else 2.0 for i in range(600)]
    params = FlatlineParams(ignore_values=(0.0,))
    a, b = FlatlineDetector(params), FlatlineDetector(params)
    for i, x in enumerate(xs):
        assert a.update(T0 + 60.0 * i, x) == b.update(np.float64(T0 + 60.0 * i), np.float64(x))
    assert a.snapshot() == b.snapshot()
    assert all(type(v) is float for k, v in b.snapshot().items() if k not in ("seen", "run_n"))
