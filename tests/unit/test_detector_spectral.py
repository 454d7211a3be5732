"""spectral_peak: f1 tracked from synthetic 50 Hz bridge acceleration, and from identified freq1_hz."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter, welch

from lifeline.detectors import DETECTORS, ParamError
from lifeline.detectors.spectral import SpectralPeakDetector, SpectralPeakParams

FS = 50.0
T0 = 1_764_403_200.0
FAST = SpectralPeakParams(hop_s=1.0)  # half the Welch calls of the default; changes how often, not what


def _modal(rng: np.random.Generator, seconds: float, f_hz: float, zeta: float = 0.02) -> np.ndarray:
    """A single mode (f_hz, damping zeta) excited by white noise: a two-pole resonator, unit RMS."""
    dt, w = 1.0 / FS, 2.0 * np.pi * f_hz
    r = np.exp(-zeta * w * dt)
    a = [1.0, -2.0 * r * np.cos(w * np.sqrt(1.0 - zeta**2) * dt), r * r]
    y = lfilter([1.0], a, rng.normal(0.0, 1.0, int(seconds * FS)))
    return np.asarray(y / y.std())


def _bursts(rng: np.random.Generator, n: int, f_hz: float, amp: float) -> np.ndarray:
    """Vehicles: 4 s Hann-shaped sine bursts at f_hz, one every 20 s on average (Poisson)."""
    m, t, out = int(4.0 * FS), np.arange(n) / FS, np.zeros(n)
    for s in np.flatnonzero(rng.random(n) < 1.0 / (20.0 * FS)):
        e = min(n, s + m)
        out[s:e] += amp * np.hanning(m)[: e - s] * np.sin(2 * np.pi * f_hz * t[s:e] + rng.uniform(0, 2 * np.pi))
    return out


def _accel(seed: int, seconds: float, f_hz: float, traffic: float = 4.0) -> np.ndarray:
    """Mode at f_hz + body-bounce bursts at 0.7 and 3.5 Hz [B7] + white noise (mode RMS 1)."""
    rng = np.random.default_rng(seed)
    x = _modal(rng, seconds, f_hz)
    x += _bursts(rng, x.size, 0.7, traffic) + _bursts(rng, x.size, 3.5, traffic) + rng.normal(0.0, 0.5, x.size)
    return x


def _values(det: SpectralPeakDetector, x: np.ndarray, env: dict[str, float] | None = None,
            start: int = 0) -> list[float]:
    out = []
    for i, v in enumerate(x.tolist(), start):
        verdict = det.update(T0 + i / FS, v, env)
        if verdict is not None:
            out.append(verdict.value)
    return out


def test_spectral_peak_tracks_modal_frequency_within_one_percent() -> None:
    """A 4.5 Hz mode among traffic bursts and noise is tracked within 1 % (defaults, last 30 s)."""
    drops = _values(SpectralPeakDetector(), _accel(1, 180.0, 4.5))
    tracked = 4.5 * (1 - np.array(drops[-60:]) / 100)
    assert np.all(np.abs(tracked / 4.5 - 1) < 0.01)


def test_spectral_peak_reports_a_five_percent_stiffness_drop() -> None:
    """f1 4.5 -> 4.275 Hz (stiffness -10 %): ~0 % before, ~5 % once smooth_s has passed twice."""
    det = SpectralPeakDetector(FAST)
    before = _values(det, _accel(2, 60.0, 4.5))
    after = _values(det, _accel(3, 300.0, 4.275), start=int(60 * FS))
    assert abs(before[-1]) < 1.0
    assert all(4.0 < d < 6.0 for d in after[-30:])


def test_spectral_peak_corrects_temperature_to_20c() -> None:
    """At +10 °C with f1 following -0.2 %/°C (4.41 Hz) the corrected drop is ~0 %, not 2 %."""
    drops = _values(SpectralPeakDetector(FAST), _accel(4, 150.0, 4.5 * (1 - 0.002 * 10)), {"temp_c": 30.0})
    assert all(abs(d) < 1.0 for d in drops[-30:])


def test_spectral_peak_is_not_fooled_by_traffic_peaks() -> None:
    """Bursts at 3.5 Hz that out-weigh the mode in a plain Welch average still leave f1 at 4.5 Hz."""
    x = _accel(5, 180.0, 4.5, traffic=8.0)
    freqs, psd = welch(x, fs=FS, nperseg=200)
    band = (freqs > 3.3) & (freqs < 5.0)
    assert abs(freqs[band][np.argmax(psd[band])] - 3.5) < 0.2  # the naive estimate takes the traffic
    drops = _values(SpectralPeakDetector(FAST), x)
    assert all(abs(d) < 1.0 for d in drops[-30:])


def test_spectral_peak_prefers_the_sensor_f1_ref_label() -> None:
    """The f1_ref_hz label replaces the f_ref_hz param: a 3.2 Hz span is at 0 %, not 29 %."""
    drops = _values(SpectralPeakDetector(FAST), _accel(6, 120.0, 3.2, traffic=0.0), {"f1_ref_hz": 3.2})
    assert abs(drops[-1]) < 1.0


def test_spectral_peak_gives_one_verdict_per_hop_after_the_window() -> None:
    """None until the window (16 s) is full, then one verdict every hop (0.5 s), None in between."""
    det = SpectralPeakDetector()
    x = _accel(7, 30.0, 4.5).tolist()
    got = [i for i, v in enumerate(x) if det.update(T0 + i / FS, v) is not None]
    assert got == list(range(799, len(x), 25))


def test_spectral_peak_gives_no_verdict_on_a_stuck_sensor() -> None:
    """A constant signal has no spectrum: no verdict, no exception."""
    det = SpectralPeakDetector()
    assert all(det.update(T0 + i / FS, 1.5) is None for i in range(2000))


def test_spectral_peak_ignores_an_impossible_temperature() -> None:
    """A broken temperature channel (1e6 °C) means no correction, not a division by zero or a sign flip."""
    det = SpectralPeakDetector.from_config({"input": "frequency", "temp_coeff_per_c": -0.04})
    det.update(T0, 4.4, {"temp_c": 1e6})
    verdict = det.update(T0 + 60, 4.4, {"temp_c": 45.0})  # |-0.04 * 25| = 100 %: also impossible
    assert verdict is not None and abs(verdict.value - 100 * (1 - 4.4 / 4.5)) < 1e-9


def test_spectral_peak_frequency_input_reports_corrected_drop() -> None:
    """input: frequency reads freq1_hz once a minute: 0 % through a warm day, ~5 % after a loss."""
    det = DETECTORS.get("spectral_peak").from_config({"input": "frequency", "smooth_s": "15m"})
    rng = np.random.default_rng(8)
    out = []
    for i in range(240):  # four hours, one identification a minute
        temp = 20.0 + 8.0 * np.sin(2 * np.pi * i / 240)
        loss = 0.05 if i >= 120 else 0.0
        f1 = 4.0 * (1 - 0.002 * (temp - 20)) * (1 - loss) * (1 + rng.normal(0, 0.002))
        verdict = det.update(T0 + 60.0 * i, f1, {"temp_c": temp, "f1_ref_hz": 4.0})
        out.append(verdict)
    assert out[0] is None and all(v is not None for v in out[1:])
    drops = [v.value for v in out if v is not None]
    assert max(abs(d) for d in drops[:119]) < 0.5
    assert all(4.5 < d < 5.5 for d in drops[-100:])


def test_spectral_peak_rejects_impossible_params() -> None:
    """fmax above Nyquist and a Welch segment longer than the window are errors naming the field."""
    with pytest.raises(ParamError, match=r"fmax_hz.*Nyquist"):
        SpectralPeakDetector(SpectralPeakParams(fs_hz=10.0))
    with pytest.raises(ParamError, match="segment_s"):
        SpectralPeakDetector.from_config({"segment_s": "30s"})
