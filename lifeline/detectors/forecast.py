"""Time to threshold: at the present trend, in how many minutes will this value reach ``target``?

A level rule fires once a crowd is packed or an underpass is flooded; operators want the warning
before that: "density reaches 5 p/m² in 12 min", "ponding reaches 25 cm in 8 min". REFERENCE
§6.1/§6.3 proposes "projected to reach capacity within 30 / 15 / 5 min" = blue / yellow / orange
(⚠INF), §3.2 the ponding anchors (25 cm closes an underpass [D2][D4]).

An ordinary least-squares line is fitted to the readings of the last ``window_s`` of event time
(irregular sampling is fine: the fit uses the timestamps) and read at the newest reading's time.
``value`` is the minutes until that fitted line reaches ``target`` (``side`` "up": from below,
"down": from above, "both": either way): 0 when the fitted level is already at or past it, and
``horizon_s`` in minutes when the trend does not get there within the horizon (flat, or moving
away). It never rises as the danger grows, so rules map it with ``direction: below`` thresholds.
``score`` is 0.9 * (1 - minutes / horizon) while approaching; once past, 0.9 rising towards 1
with the time spent past (0.9 + 0.1 * (1 - exp(-t_past / horizon))).
Cost per reading: O(1) amortised (running sums; an O(window) re-anchoring every few windows).
Memory: at most ``max_samples`` readings.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from lifeline.detectors.base import Detector, Params, Verdict, squash

APPROACH_MAX = 0.9  # score just before the target is reached; being past scores above it
REANCHOR_WINDOWS = 4.0  # re-anchor the time origin every this many windows (keeps the sums well conditioned)


@dataclass(frozen=True, slots=True)
class ForecastParams(Params):
    target: float = 5.0  # the level whose arrival is forecast, in the metric's unit (crowd red 5 p/m², [C5][C6])
    side: str = "up"  # "up" (rising to target), "down" (falling to it) or "both"
    window_s: float = 600.0  # the trend is fitted to this much recent event time ('10m')
    horizon_s: float = 3600.0  # forecasts beyond this are reported as this ('1h'); also the score's scale
    min_samples: int = 5  # warm-up: readings in the window before a forecast
    max_samples: int = 1000  # memory bound: older readings in the window are dropped beyond this

    def check(self) -> list[tuple[str, str]]:
        out = []
        if self.side not in ("up", "down", "both"):
            out.append(("side", f"must be 'up', 'down' or 'both' (got {self.side!r})"))
        if not self.window_s > 0:
            out.append(("window_s", f"must be positive (got {self.window_s:g})"))
        if not self.horizon_s >= 60:
            out.append(("horizon_s", f"must be at least 60 s (got {self.horizon_s:g})"))
        if not 3 <= self.min_samples <= self.max_samples:
            out.append(("min_samples", f"must be between 3 and max_samples={self.max_samples} "
                                       f"(got {self.min_samples})"))
        return out


class ForecastDetector(Detector):
    kind = "forecast"
    params_type = ForecastParams
    value_unit = "minutes until target"

    __slots__ = ("_anchor", "_past_since", "_pts", "_st", "_stt", "_stx", "_sx")

    def reset(self) -> None:
        self._pts: deque[tuple[float, float]] = deque()  # (ts - anchor, value)
        self._anchor = 0.0
        # sums of t, x, t*t, t*x over _pts: four floats, not a list, so update keeps them in locals
        self._st = self._sx = self._stt = self._stx = 0.0
        self._past_since: float | None = None

    def _reanchor(self, ts: float) -> None:
        """Move the time origin to ``ts`` and recompute the sums exactly."""
        pts = [(t + self._anchor - ts, x) for t, x in self._pts]
        self._pts, self._anchor = deque(pts), ts
        st = sx = stt = stx = 0.0
        for t, x in pts:
            st += t
            sx += x
            stt += t * t
            stx += t * x
        self._st, self._sx, self._stt, self._stx = st, sx, stt, stx

    def update(self, ts: float, value: float | None, env: Mapping[str, float] | None = None) -> Verdict | None:
        if value is None or not math.isfinite(value):
            return None
        ts, value = float(ts), float(value)  # numpy scalars would leak into the JSON snapshot
        p = cast(ForecastParams, self.params)
        if not self._pts or ts - self._anchor > REANCHOR_WINDOWS * p.window_s:
            self._reanchor(ts)
        pts = self._pts
        t = ts - self._anchor
        pts.append((t, value))
        # the running sums in locals; adding then removing a point is exact-order identical to a
        # signed accumulation (x + (-1.0 * y) == x - y in IEEE arithmetic), so verdicts do not change
        st, sx, stt, stx = self._st + t, self._sx + value, self._stt + t * t, self._stx + t * value
        oldest, max_samples = t - p.window_s, p.max_samples
        while pts[0][0] < oldest or len(pts) > max_samples:
            u, y = pts.popleft()
            st, sx, stt, stx = st - u, sx - y, stt - u * u, stx - u * y
        self._st, self._sx, self._stt, self._stx = st, sx, stt, stx
        n = len(pts)
        if n < p.min_samples:
            self._past_since = None
            return None
        # the least-squares line's slope (unit per second) and its level at t
        var = stt - st * st / n
        slope = (stx - st * sx / n) / var if var > 1e-9 * max(stt, 1.0) else 0.0
        minutes = self._minutes(sx / n + slope * (t - st / n), slope)
        if minutes > 0.0:
            self._past_since = None
            return Verdict(APPROACH_MAX * (1.0 - minutes * 60.0 / p.horizon_s), minutes)
        if self._past_since is None:
            self._past_since = ts
        return Verdict(APPROACH_MAX + (1.0 - APPROACH_MAX) * squash(ts - self._past_since, p.horizon_s), 0.0)

    def _minutes(self, level: float, slope: float) -> float:
        """Minutes until the line reaches the target, 0 if past, the horizon if never within it."""
        p = cast(ForecastParams, self.params)
        gap = p.target - level
        if (p.side == "up" and gap <= 0.0) or (p.side == "down" and gap >= 0.0) or gap == 0.0:
            return 0.0
        eta = gap / slope if slope != 0.0 else math.inf
        return min(eta, p.horizon_s) / 60.0 if eta > 0.0 else p.horizon_s / 60.0

    def snapshot(self) -> dict[str, Any]:
        return {"pts": [list(pt) for pt in self._pts], "anchor": self._anchor,
                "sums": [self._st, self._sx, self._stt, self._stx], "past_since": self._past_since}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        self._pts = deque((float(t), float(x)) for t, x in state["pts"])
        self._anchor = float(state["anchor"])
        self._st, self._sx, self._stt, self._stx = (float(v) for v in state["sums"])
        self._past_since = None if state["past_since"] is None else float(state["past_since"])
