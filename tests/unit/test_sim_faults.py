"""Sensor faults: stuck, drift, spike and dropout applied to simulated metrics."""

from __future__ import annotations

import numpy as np

from simulators.faults import Fault, apply_faults


def _series() -> tuple[dict[str, np.ndarray], np.ndarray]:
    ts = np.arange(0.0, 3600.0, 60.0)
    return {"x": np.sin(ts / 600.0), "y": np.ones(ts.size)}, ts


def test_faults_stuck_holds_first_value_in_window() -> None:
    """A stuck metric repeats its first in-window value, and only inside the window."""
    metrics, ts = _series()
    out, keep = apply_faults(metrics, ts, [Fault(0, "stuck", "s", 600.0, 1200.0, "x")], seed=1)
    inside = (ts >= 600) & (ts < 1200)
    assert np.all(out["x"][inside] == metrics["x"][inside][0])
    assert np.array_equal(out["x"][~inside], metrics["x"][~inside]) and keep.all()


def test_faults_drift_grows_linearly() -> None:
    """Drift adds rate_per_h times the hours since the fault started."""
    metrics, ts = _series()
    out, _ = apply_faults(metrics, ts, [Fault(0, "drift", "s", 0.0, 3600.0, "y", {"rate_per_h": 2.0})], seed=1)
    assert np.allclose(out["y"], 1.0 + 2.0 * ts / 3600.0)


def test_faults_spike_adds_magnitude_on_some_samples_only() -> None:
    """Spikes add the magnitude on a random subset of in-window samples, reproducibly."""
    metrics, ts = _series()
    fault = Fault(0, "spike", "s", 0.0, 3600.0, "y", {"probability": 0.3, "magnitude": 10.0})
    out, _ = apply_faults(metrics, ts, [fault], seed=1)
    hits = out["y"] == 11.0
    assert 3 <= hits.sum() <= 40 and np.all(out["y"][~hits] == 1.0)
    assert np.array_equal(out["y"], apply_faults(metrics, ts, [fault], seed=1)[0]["y"])


def test_faults_dropout_removes_samples_and_composes() -> None:
    """Dropout removes in-window samples from every metric; other faults still apply."""
    metrics, ts = _series()
    faults = [Fault(0, "dropout", "s", 600.0, 900.0), Fault(1, "stuck", "s", 0.0, 300.0, "y", {"value": 5.0})]
    out, keep = apply_faults(metrics, ts, faults, seed=1)
    assert (~keep).sum() == 5 and np.all(out["y"][ts < 300] == 5.0)


def test_faults_spike_has_at_least_one_spike() -> None:
    """A rare spike over a short window of slow reports still hits one in-window sample, reproducibly,
    whatever the seed; samples outside the window are never touched."""
    ts = np.arange(0.0, 7200.0, 300.0)  # 5-min reports
    metrics = {"y": np.ones(ts.size)}
    fault = Fault(0, "spike", "s", 1800.0, 3600.0, "y", {"probability": 1e-6, "magnitude": 10.0})
    inside = (ts >= 1800.0) & (ts < 3600.0)
    for seed in range(20):
        out, _ = apply_faults(metrics, ts, [fault], seed=seed)
        hits = out["y"] == 11.0
        assert hits.sum() == 1 and hits[inside].sum() == 1
        assert np.array_equal(out["y"], apply_faults(metrics, ts, [fault], seed=seed)[0]["y"])
