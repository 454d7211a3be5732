"""Conformance suite: every registered detector, for free, must hold these properties."""

from __future__ import annotations

import math
import time

import numpy as np
import orjson
import pytest
import yaml

from lifeline.detectors import DETECTORS, Detector, ParamError, Verdict
from lifeline.detectors.base import params_from_config, params_to_config

NAMES = DETECTORS.names()
T0 = 1_764_403_200.0


def _series(seed: int = 3, n: int = 1500) -> list[tuple[float, float | None]]:
    """Noise, a daily cycle, a slow drift, spikes, a step, a flat stretch and a few NaN/None gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float) * 60.0
    x = 10 + 2 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 0.3, n) + 0.0005 * np.arange(n)
    x[rng.choice(n, 12, replace=False)] += rng.choice([-6.0, 6.0], 12)
    x[900:] += 4.0
    x[1100:1200] = x[1100]
    out: list[tuple[float, float | None]] = [(T0 + ti, float(xi)) for ti, xi in zip(t, x, strict=True)]
    for i in (50, 51, 400, 1300):
        out[i] = (out[i][0], float("nan") if i % 2 else None)
    return out


def _run(det: Detector, series: list[tuple[float, float | None]]) -> list[Verdict | None]:
    return [det.update(ts, v) for ts, v in series]


@pytest.fixture(params=NAMES)
def cls(request: pytest.FixtureRequest) -> type[Detector]:
    return DETECTORS.get(request.param)


def test_detector_is_deterministic(cls: type[Detector]) -> None:
    """Two fresh instances give identical verdicts on the same series."""
    s = _series()
    assert _run(cls(), s) == _run(cls(), s)


@pytest.mark.parametrize("cut", [0, 1, 37, 700, 1499])
def test_detector_snapshot_restore_is_invisible(cls: type[Detector], cut: int) -> None:
    """Snapshot (through JSON) at any point, restore into a fresh instance: the same verdicts follow."""
    s = _series()
    whole = _run(cls(), s)
    a = cls()
    first = _run(a, s[:cut])
    b = cls()
    b.restore(orjson.loads(orjson.dumps(a.snapshot())))
    assert first + _run(b, s[cut:]) == whole


def test_detector_ignores_nan_and_none(cls: type[Detector]) -> None:
    """NaN and None give no verdict, raise nothing and leave the state as if they never came."""
    s = _series()
    clean = [(ts, v) for ts, v in s if v is not None and not math.isnan(v)]
    with_gaps = [v for v in _run(cls(), s)]
    gaps = [i for i, (_, v) in enumerate(s) if v is None or math.isnan(v)]
    assert all(with_gaps[i] is None for i in gaps)
    assert [v for i, v in enumerate(with_gaps) if i not in gaps] == _run(cls(), clean)


def test_detector_never_reads_the_wall_clock(cls: type[Detector], monkeypatch: pytest.MonkeyPatch) -> None:
    """update/snapshot/restore never call time.time, time.monotonic or friends."""
    def boom() -> float:
        raise AssertionError("a detector read the wall clock")

    s = _series()
    det = cls()
    for name in ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "process_time"):
        monkeypatch.setattr(time, name, boom)
    _run(det, s)
    det.restore(det.snapshot())


def test_detector_scores_are_graded_in_unit_interval(cls: type[Detector]) -> None:
    """Scores are finite, in [0, 1], graded (many distinct values) and do not pile up at 1.0."""
    verdicts = [v for v in _run(cls(), _series()) if v is not None]
    assert verdicts, "no verdict at all after 1,500 observations"
    scores = np.array([v.score for v in verdicts])
    assert np.all(np.isfinite(scores)) and scores.min() >= 0.0 and scores.max() <= 1.0
    assert np.all(np.isfinite([v.value for v in verdicts]))
    assert len(np.unique(scores)) >= 20
    assert np.mean(scores >= 1.0) <= 0.01


def test_detector_warms_up(cls: type[Detector]) -> None:
    """The very first observation gives no verdict: no history is not 'normal'."""
    assert cls().update(T0, 1.0) is None


def test_detector_params_round_trip_through_yaml(cls: type[Detector]) -> None:
    """Default params -> YAML -> params gives equal params, and the detector built from them agrees."""
    p = cls.params_type()
    text = yaml.safe_dump(params_to_config(p))
    back = params_from_config(cls.params_type, yaml.safe_load(text))
    assert back == p
    assert _run(cls(back), _series()[:300]) == _run(cls(), _series()[:300])


def test_detector_rejects_unknown_params(cls: type[Detector]) -> None:
    """An unknown parameter is an error naming it."""
    with pytest.raises(ParamError, match="no_such_param"):
        cls.from_config({"no_such_param": 1})
