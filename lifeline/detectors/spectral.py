"""Spectral peak tracker: a bridge's first modal frequency f1 and its temperature-corrected drop.

A stiffness loss lowers f1; so does a warm deck (−0.1 to −0.3 %/°C, REFERENCE §4 [B6]). This
detector estimates f1, corrects it to 20 °C and reports ``value`` = its drop in % against the
reference (positive = softer), so the [B2] grades apply directly (3 / 5 / 10 / 15 %: a rule with
``threshold.on: value``). ``score`` = 1 - exp(-|drop| / drop_scale_pct) (``side: drop``: a rise
scores 0).

Two inputs (``input``):

* ``accel``: raw vertical acceleration, one sample per observation at ``fs_hz`` (the engine feeds
  a published batch sample by sample; the sample clock is the count, ``ts`` is not read). A ring
  keeps ``window_s``; once it is full, every ``hop_s`` a median-averaged Welch log-PSD of the
  window is folded into an exponential average (time constant ``smooth_s``), whose strongest peak
  in a band around the expected f1 is refined by a parabola through the log-PSD. The median over
  Welch segments and the average of *log* spectra over hops keep traffic bursts (body bounce
  3–4 Hz [B7]) from passing for the mode: a burst dominates a few segments of a few windows, the
  ambient-excited mode is in all of them. Between hops ``update`` returns None (no new evidence;
  the engine skips it): one verdict per hop.
* ``frequency``: an identified f1 (``freq1_hz``, once a minute from the demo city): corrected to
  20 °C, then the dominant cluster of the estimates of the last ``smooth_s`` of event time
  (``dominant_mean``). The first observation gives None.

The reference is the sensor's ``f1_ref_hz`` label when ``env`` has it, else ``f_ref_hz``; the
temperature is ``env["temp_c"]`` when present, else none (no correction).

Cost per reading: O(1) between hops (one store into a preallocated ring), one Welch of the window
at a hop; amortised figures in docs/detectors/spectral_peak.md. Never reads the wall clock; the
state is the ring, one smoothed log-PSD over fmin..fmax and (frequency input) recent estimates.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import welch

from lifeline.detectors.base import Detector, Params, Verdict, squash

MAX_WINDOW_SAMPLES = 200_000  # bounds memory and snapshot size (over an hour at 50 Hz)
MAX_ESTIMATES = 10_000  # bounds the smoothing window whatever smooth_s and the input rate


@dataclass(frozen=True, slots=True)
class SpectralPeakParams(Params):
    input: str = "accel"  # "accel" (raw samples at fs_hz) or "frequency" (an identified f1 in Hz)
    fs_hz: float = 50.0  # sample rate of the raw acceleration [B2]
    window_s: float = 16.0  # ring buffer (800 samples at 50 Hz); the first verdict comes once it is full
    hop_s: float = 0.5  # a Welch PSD (and a verdict) every hop_s of samples
    segment_s: float = 4.0  # Welch segment (200 samples at 50 Hz: 0.25 Hz bins, 50 % overlap)
    fmin_hz: float = 0.16  # the platform's band-pass [B2]: the PSD is kept and searched only inside it
    fmax_hz: float = 10.0
    f_ref_hz: float = 4.5  # reference f1 at 20 °C when the sensor has no f1_ref_hz label
    search_below_pct: float = 25.0  # search band: expected f1 -25 % .. +10 % (a red drop is >=15 %)
    search_above_pct: float = 10.0
    temp_coeff_per_c: float = -0.002  # df/f per °C [B6] (⚠INF, -0.001..-0.003)
    smooth_s: float = 120.0  # accel: log-PSD averaging time constant; frequency: estimates kept
    drop_scale_pct: float = 5.0  # score = 1 - exp(-|drop| / drop_scale_pct): 5 % -> 0.63, 15 % -> 0.95
    side: str = "both"  # "both": |drop| scores (a rise is unexplained too); "drop": a rise scores 0

    def check(self) -> list[tuple[str, str]]:
        out = []
        if self.input not in ("accel", "frequency"):
            out.append(("input", f"must be 'accel' or 'frequency' (got {self.input!r})"))
        if self.side not in ("drop", "both"):
            out.append(("side", f"must be 'drop' or 'both' (got {self.side!r})"))
        for name in ("fs_hz", "window_s", "hop_s", "segment_s", "f_ref_hz", "drop_scale_pct", "search_above_pct"):
            if getattr(self, name) <= 0:
                out.append((name, f"must be positive (got {getattr(self, name)})"))
        if not 0 < self.search_below_pct < 100:
            out.append(("search_below_pct", f"must be between 0 and 100 (got {self.search_below_pct})"))
        if not 0 <= self.fmin_hz < self.fmax_hz:
            out.append(("fmax_hz", f"must be above fmin_hz={self.fmin_hz} >= 0 (got {self.fmax_hz})"))
        elif self.fmax_hz > self.fs_hz / 2:
            out.append(("fmax_hz", f"must not exceed the Nyquist frequency {self.fs_hz / 2} (got {self.fmax_hz})"))
        if abs(self.temp_coeff_per_c) >= 0.05:
            out.append(("temp_coeff_per_c", f"must be a fraction per °C, |c| < 0.05 (got {self.temp_coeff_per_c})"))
        if self.smooth_s < 0:
            out.append(("smooth_s", f"must not be negative (got {self.smooth_s})"))
        if out:
            return out
        seg, win = self.samples(self.segment_s), self.samples(self.window_s)
        if seg < 8 or seg > win:
            out.append(("segment_s", f"must span 8 samples up to window_s={self.window_s} (got {seg} samples)"))
        if win > MAX_WINDOW_SAMPLES:
            out.append(("window_s", f"must hold at most {MAX_WINDOW_SAMPLES} samples (got {win})"))
        return out

    def samples(self, seconds: float) -> int:
        return max(1, round(seconds * self.fs_hz))


def _env(env: Mapping[str, float] | None, name: str) -> float | None:
    """A metric or label from env; env falls back to labels via __missing__, so no ``.get``."""
    if env is None:
        return None
    try:
        v = float(env[name])
    except (KeyError, TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def refine_peak(logp: np.ndarray, k: int) -> float:
    """Fractional bin of the peak at bin k: vertex of the parabola through k-1, k, k+1 (log-PSD)."""
    if k <= 0 or k >= len(logp) - 1:
        return float(k)
    a, b, c = float(logp[k - 1]), float(logp[k]), float(logp[k + 1])
    den = a - 2.0 * b + c
    if den >= 0.0:  # not a local maximum (band edge on a slope): keep the bin
        return float(k)
    return k + min(0.5, max(-0.5, 0.5 * (a - c) / den))


def dominant_mean(xs: list[float]) -> float:
    """Mean of the dominant cluster of sorted estimates: find the shortest half (its centre c and
    width w), then average every estimate within c +- w.

    Identifications that took a traffic peak for f1 form their own cluster at the body-bounce
    frequency [B7]; up to half of the estimates can be such without moving the result, where a
    mean moves with every one and a trimmed mean with every one past its trim. On a single
    Gaussian cluster c +- w keeps ~80 % of it, so little precision is lost."""
    n = len(xs)
    h = n // 2 + 1
    i = min(range(n - h + 1), key=lambda j: xs[j + h - 1] - xs[j])
    half = xs[i: i + h]
    c, w = math.fsum(half) / h, half[-1] - half[0]
    kept = [x for x in xs if abs(x - c) <= w]
    return math.fsum(kept) / len(kept)


class SpectralPeakDetector(Detector):
    kind = "spectral_peak"
    params_type = SpectralPeakParams
    value_unit = "% drop of temperature-corrected f1 vs reference (positive = softer)"

    params: SpectralPeakParams

    def reset(self) -> None:
        p = self.params
        self._cap = p.samples(p.window_s) if p.input == "accel" else 0
        self._hop = p.samples(p.hop_s)
        self._seg = p.samples(p.segment_s)
        freqs = np.fft.rfftfreq(self._seg, 1.0 / p.fs_hz)
        self._b0 = int(np.searchsorted(freqs, p.fmin_hz))  # the stored band: bins within fmin..fmax
        self._b1 = int(np.searchsorted(freqs, p.fmax_hz, side="right"))
        self._df = float(freqs[1])
        self._alpha = 1.0 if p.smooth_s == 0 else 1.0 - math.exp(-p.hop_s / p.smooth_s)
        self._buf = np.zeros(self._cap)
        self._i = 0  # next write position in the ring
        self._n = 0  # samples held (<= cap)
        self._since = self._hop  # samples since the last PSD; the first full window runs at once
        self._logpsd: np.ndarray | None = None  # accel: smoothed log-PSD over the band
        self._psds = 0  # accel: PSDs folded into it
        self._est: deque[tuple[float, float]] = deque()  # frequency: (ts, f1 at 20 °C) of the last smooth_s

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        if self.params.input == "frequency":
            return self._update_frequency(ts, value, env)
        self._buf[self._i] = value
        self._i = (self._i + 1) % self._cap
        if self._n < self._cap:
            self._n += 1
        self._since += 1
        if self._n < self._cap or self._since < self._hop:
            return None  # between hops: no new evidence (the engine skips None)
        self._since = 0
        logp = self._window_log_psd()
        if logp is None:
            return None
        self._smooth(logp)
        ref, temp = self._reference(env)
        f = self._pick(ref * self._temp_factor(temp))
        return None if f is None else self._verdict(f / self._temp_factor(temp), ref)

    def _update_frequency(self, ts: float, value: float, env: Mapping[str, float] | None) -> Verdict | None:
        if value <= 0.0:  # not a frequency: a sensor fault, for the health rules to see
            return None
        ref, temp = self._reference(env)
        est = self._est
        first = not est
        est.append((ts, value / self._temp_factor(temp)))
        while len(est) > MAX_ESTIMATES or (len(est) > 1 and est[0][0] <= ts - self.params.smooth_s):
            est.popleft()
        if first:
            return None
        return self._verdict(dominant_mean(sorted(f for _, f in est)), ref)

    def _temp_factor(self, temp: float | None) -> float:
        return 1.0 if temp is None else 1.0 + self.params.temp_coeff_per_c * (temp - 20.0)

    def _reference(self, env: Mapping[str, float] | None) -> tuple[float, float | None]:
        """The 20 °C reference (label, else param) and the current temperature (None: no correction)."""
        ref = _env(env, "f1_ref_hz")
        temp = _env(env, "temp_c")
        if temp is not None and abs(self.params.temp_coeff_per_c * (temp - 20.0)) >= 0.5:
            temp = None  # a temperature that would move f1 by half is a broken channel, not weather
        return (ref if ref is not None and ref > 0.0 else self.params.f_ref_hz), temp

    def _window_log_psd(self) -> np.ndarray | None:
        """Median-averaged Welch log-PSD of the window over fmin..fmax, or None for a flat window."""
        p = self.params
        x = self._buf if self._i == 0 else np.concatenate((self._buf[self._i:], self._buf[: self._i]))
        # One demean of the window instead of welch's per-segment detrend (a third of its cost): it
        # removes a gravity offset, and the rest of the low band leaks nowhere near f1 through Hann.
        _, psd = welch(x - x.mean(), fs=p.fs_hz, nperseg=self._seg,
                       detrend=False, average="median")
        band = psd[self._b0: self._b1]
        top = float(band.max()) if band.size else 0.0
        if not top > 0.0 or not math.isfinite(top):  # a stuck sensor: no spectrum, no evidence
            return None
        return np.asarray(np.log(np.maximum(band, top * 1e-12)))

    def _smooth(self, logp: np.ndarray) -> None:
        """Exponential average of the log-PSD over smooth_s (a running mean until it is covered)."""
        self._psds += 1
        if self._logpsd is None:
            self._logpsd = logp.copy()
        else:
            self._logpsd += max(self._alpha, 1.0 / self._psds) * (logp - self._logpsd)

    def _pick(self, f_exp: float) -> float | None:
        """The refined frequency of the strongest smoothed peak in the search band around f_exp."""
        p, logp = self.params, self._logpsd
        assert logp is not None
        lo = max(p.fmin_hz, f_exp * (1.0 - p.search_below_pct / 100.0))
        hi = min(p.fmax_hz, f_exp * (1.0 + p.search_above_pct / 100.0))
        k0 = max(math.ceil(lo / self._df) - self._b0, 0)
        k1 = min(math.floor(hi / self._df) - self._b0 + 1, logp.size)
        if k1 <= k0:
            return None
        k = k0 + int(np.argmax(logp[k0:k1]))
        return (self._b0 + refine_peak(logp, k)) * self._df

    def _verdict(self, f20: float, ref: float) -> Verdict:
        p = self.params
        drop = 100.0 * (1.0 - f20 / ref)
        return Verdict(squash(abs(drop) if p.side == "both" else drop, p.drop_scale_pct), drop)

    def snapshot(self) -> dict[str, Any]:
        ring = self._buf[: self._n] if self._n < self._cap else np.concatenate(
            (self._buf[self._i:], self._buf[: self._i]))
        return {"ring": ring.tolist(), "since": self._since, "psds": self._psds,
                "logpsd": None if self._logpsd is None else self._logpsd.tolist(),
                "est": [list(e) for e in self._est]}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        ring = [float(x) for x in state["ring"]]
        self._n = len(ring)
        self._buf[: self._n] = ring
        self._i = self._n % self._cap if self._cap else 0
        self._since = int(state["since"])
        self._psds = int(state["psds"])
        if state["logpsd"] is not None:
            self._logpsd = np.array(state["logpsd"], dtype=float)
        self._est.extend((float(t), float(f)) for t, f in state["est"])
