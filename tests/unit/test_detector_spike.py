"""Spike: a one-sample glitch is called at the next reading; a step, a leak or drift never is."""

from __future__ import annotations

import bisect
import random
from pathlib import Path

import numpy as np
import pytest

from lifeline.detectors import DETECTORS, Verdict
from lifeline.detectors.base import sorted_median
from lifeline.detectors.spike import SpikeDetector, SpikeParams, _mad
from lifeline.registry import Registry, load_registry
from simulators.base import Effect
from simulators.faults import Fault
from simulators.runner import simulate_sensor
from simulators.scenario import Scenario

DEMO = Path(__file__).resolve().parents[2] / "lifeline" / "data" / "demo_city"
T0 = 1784044800.0  # 2026-07-15 00:00 +08:00
DAY = 86400.0
FAULT_AT = T0 + 2 * 3600.0
SERIES = [("BH-WAT-M1-N1", "pressure_mpa"), ("BH-GAS-C1-W02", "ch4_lel"), ("BH-GAS-C1-P1", "pressure_mpa")]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(DEMO / "sensors.csv", DEMO / "districts.geojson")


def _series(registry: Registry, sensor: str, metric: str, faults: list[Fault] | None = None,
            effects: list[Effect] | None = None, seed: int = 1) -> tuple[list[float], list[float]]:
    """One simulated day of one metric, as sent on the wire (rounded), with effects and faults."""
    stream = simulate_sensor(registry.sensors[sensor], Scenario("t", T0, DAY, seed), effects or [], faults or [])
    return stream.ts.tolist(), [float(v) for v in stream.column(metric)]


def _run(det: SpikeDetector, ts: list[float], xs: list[float]) -> list[Verdict | None]:
    return [det.update(t, x) for t, x in zip(ts, xs, strict=True)]


def _calls(verdicts: list[Verdict | None]) -> list[int]:
    """Indices of the readings whose verdict called a spike (about the reading before)."""
    return [i for i, v in enumerate(verdicts) if v is not None and v.score >= 0.5]


@pytest.mark.parametrize(("sensor", "metric"), SERIES)
def test_spike_catches_spike_fault_at_the_next_reading(registry: Registry, sensor: str, metric: str) -> None:
    """A `spike` fault (default magnitude) is called one reading after its first glitch; >= 90 % of the
    isolated glitches are called and nothing is called away from a glitch."""
    fault = Fault(0, "spike", sensor, FAULT_AT, FAULT_AT + 12 * 3600.0, metric)
    ts, xs = _series(registry, sensor, metric, [fault])
    _, clean = _series(registry, sensor, metric)
    hits = [i for i, (a, b) in enumerate(zip(xs, clean, strict=True)) if a != b]
    isolated = [i for i in hits if not any(j in hits for j in (i - 2, i - 1, i + 1, i + 2))]
    calls = _calls(_run(SpikeDetector(), ts, xs))
    assert len(isolated) >= 20
    assert calls[0] == hits[0] + 1
    assert sum(i + 1 in calls for i in isolated) >= 0.9 * len(isolated)
    assert all(any(abs(i - 1 - h) <= 1 for h in hits) for i in calls)


def test_spike_catches_the_faults_scenario_glitches(registry: Registry) -> None:
    """The `faults` scenario's 30 %LEL glitches on a sewer well are every one called."""
    sensor, metric = "BH-GAS-C1-W02", "ch4_lel"
    fault = Fault(0, "spike", sensor, FAULT_AT, FAULT_AT + 1800.0, metric, {"probability": 0.1, "magnitude": 30})
    ts, xs = _series(registry, sensor, metric, [fault])
    hits = [i for i, x in enumerate(xs) if x > 20]
    calls = _calls(_run(SpikeDetector(), ts, xs))
    assert hits and [i + 1 for i in hits if i - 1 not in hits and i + 1 not in hits] == calls


@pytest.mark.parametrize(("sensor", "metric"), [*SERIES, ("BH-DRN-S1", "fill_ratio")])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_spike_clean_day_gives_no_finding(registry: Registry, sensor: str, metric: str, seed: int) -> None:
    """A healthy simulated day never scores 0.5 or more."""
    ts, xs = _series(registry, sensor, metric, seed=seed)
    assert max(v.score for v in _run(SpikeDetector(), ts, xs) if v is not None) < 0.5


@pytest.mark.parametrize("drop", [0.05, 0.2])
def test_spike_water_burst_step_is_not_a_spike(registry: Registry, drop: float) -> None:
    """A burst drops node pressure and it stays down: a step for the safety rules, never a spike."""
    sensor = "BH-WAT-M1-N1"
    burst = Effect("water_burst", sensor, T0 + 6 * 3600.0, T0 + 7 * 3600.0, drop)
    ts, xs = _series(registry, sensor, "pressure_mpa", effects=[burst])
    assert _calls(_run(SpikeDetector(), ts, xs)) == []


def test_spike_synthetic_step_scores_zero_at_and_after_the_jump() -> None:
    """A clean 10-unit step scores 0 at its own reading and at the confirmation reading."""
    xs = [10.0 + 0.1 * ((i * 7) % 5 - 2) for i in range(100)]
    xs = xs[:60] + [x + 10.0 for x in xs[60:]]
    verdicts = _run(SpikeDetector(), [T0 + 60.0 * i for i in range(100)], xs)
    assert verdicts[60] is not None and verdicts[60].score == 0.0
    assert verdicts[61] is not None and verdicts[61].score == 0.0
    assert _calls(verdicts) == []


@pytest.mark.parametrize("peak", [10.0, 30.0, 70.0])
def test_spike_gas_leak_fluctuation_is_not_a_spike(registry: Registry, peak: float) -> None:
    """A leak's large, strongly fluctuating CH4 (REFERENCE §1.1 [G5]) is safety, not a sensor glitch."""
    sensor = "BH-GAS-C1-W02"
    leak = Effect("gas_leak", sensor, T0 + 6 * 3600.0, T0 + 8 * 3600.0, peak)
    ts, xs = _series(registry, sensor, "ch4_lel", effects=[leak])
    assert _calls(_run(SpikeDetector(), ts, xs)) == []


def test_spike_verdict_refers_to_the_previous_reading() -> None:
    """The glitch's own reading scores 0; the next reading carries the verdict about it."""
    xs = [5.0 + 0.05 * ((i * 3) % 7 - 3) for i in range(60)]
    xs[40] += 4.0
    verdicts = _run(SpikeDetector(), [T0 + 60.0 * i for i in range(60)], xs)
    assert verdicts[40] is not None and verdicts[40].score == 0.0
    assert verdicts[41] is not None and verdicts[41].score > 0.9 and verdicts[41].value > 20
    assert _calls(verdicts) == [41]


def test_spike_drift_and_dropout_are_not_spikes(registry: Registry) -> None:
    """Drift and dropout faults are for other rules (drift, nodata): no spike is called."""
    sensor, metric = "BH-WAT-M1-N1", "pressure_mpa"
    faults = [Fault(0, "drift", sensor, FAULT_AT, FAULT_AT + 7200.0, metric, {"rate_per_h": -0.06}),
              Fault(1, "dropout", sensor, FAULT_AT + 9000.0, FAULT_AT + 12600.0)]
    ts, xs = _series(registry, sensor, metric, faults)
    assert _calls(_run(SpikeDetector(), ts, xs)) == []


def test_spike_side_up_ignores_downward_glitches() -> None:
    """side 'up' calls an upward glitch and ignores a downward one of the same size."""
    xs = [5.0 + 0.05 * ((i * 3) % 7 - 3) for i in range(80)]
    xs[40] += 4.0
    xs[60] -= 4.0
    ts = [T0 + 60.0 * i for i in range(80)]
    assert _calls(_run(SpikeDetector(SpikeParams(side="up")), ts, xs)) == [41]
    assert _calls(_run(SpikeDetector(), ts, xs)) == [41, 61]


def test_spike_max_width_two_calls_a_two_sample_glitch() -> None:
    """A two-reading glitch is no spike by default, and is one with max_width 2."""
    xs = [5.0 + 0.05 * ((i * 3) % 7 - 3) for i in range(60)]
    xs[40] += 4.0
    xs[41] += 4.0
    ts = [T0 + 60.0 * i for i in range(60)]
    assert _calls(_run(SpikeDetector(), ts, xs)) == []
    assert _calls(_run(SpikeDetector(SpikeParams(max_width=2)), ts, xs)) == [42]


def test_spike_is_a_registered_health_detector() -> None:
    """Registered as 'spike', and its findings are health alerts."""
    assert DETECTORS.get("spike") is SpikeDetector and SpikeDetector.health


@pytest.mark.parametrize("seed", range(4))
def test_spike_mad_search_equals_sorting_the_deviations(seed: int) -> None:
    """The windowed search gives the value a full sort of |x - med| gives, from any start: ties at the
    median (quantised steps), skewed lists (the start far off: bisection) and every length up to 70."""
    rng = random.Random(seed)
    for n in range(1, 71):
        for kind in ("gauss", "ties", "skew", "zeros"):
            if kind == "gauss":
                xs = [rng.gauss(0.0, 1.0) for _ in range(n)]
            elif kind == "ties":
                xs = [float(rng.randint(-2, 2)) for _ in range(n)]
            elif kind == "skew":
                xs = [rng.expovariate(1.0) ** 3 for _ in range(n)]
            else:
                xs = [rng.choice([0.0, -0.0, 5e-324, 0.1]) for _ in range(n)]
            xs.sort()
            med = sorted_median(xs)
            expected = sorted_median(sorted(abs(x - med) for x in xs))
            assert _mad(xs, med, bisect.bisect_left(xs, med)) == expected, (kind, xs)


def test_spike_numpy_and_float_input_give_the_same_verdicts_and_state() -> None:
    """numpy scalars are converted on the way in: the same verdicts, and a JSON-able snapshot."""
    rng = random.Random(5)
    xs = [rng.gauss(0.0, 1.0) + (6.0 if i % 37 == 0 else 0.0) for i in range(400)]
    a, b = SpikeDetector(), SpikeDetector()
    for i, x in enumerate(xs):
        assert a.update(T0 + 60.0 * i, x) == b.update(T0 + 60.0 * i, np.float64(x))
    assert a.snapshot() == b.snapshot()
    assert all(type(v) is float for v in b.snapshot()["diffs"] + b.snapshot()["recent"])
