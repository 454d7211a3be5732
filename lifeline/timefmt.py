"""Event-time parsing and formatting: epoch seconds <-> RFC 3339. Pure; never reads the clock."""

from __future__ import annotations

import math
from datetime import UTC, datetime


class TimeFormatError(ValueError):
    pass


def parse_ts(value: object) -> float:
    """Parse a wire ``ts``: epoch seconds (int/float) or an RFC 3339 string with an offset."""
    if isinstance(value, bool):
        raise TimeFormatError(f"ts must be epoch seconds or RFC 3339, got boolean {value!r}")
    if isinstance(value, int | float):
        ts = float(value)
        if not math.isfinite(ts):
            raise TimeFormatError(f"ts must be finite, got {value!r}")
        return ts
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise TimeFormatError(f"ts is not RFC 3339: {value[:40]!r}") from None
        if dt.tzinfo is None:
            raise TimeFormatError(f"ts has no UTC offset: {value[:40]!r} (add 'Z' or '+08:00')")
        return dt.timestamp()
    raise TimeFormatError(f"ts must be epoch seconds or RFC 3339, got {type(value).__name__}")


def rfc3339(ts: float) -> str:
    """Render epoch seconds as RFC 3339 UTC with milliseconds."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Parse '30s', '5m', '1h', '1h30m', '250ms', '2d' into seconds; raise TimeFormatError otherwise."""
    s = text.strip()
    if not s:
        raise TimeFormatError("empty duration")
    total, num = 0.0, ""
    i = 0
    matched = False
    while i < len(s):
        ch = s[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = "ms" if s.startswith("ms", i) else ch
        if unit not in _UNITS or not num:
            raise TimeFormatError(f"expected a duration like '30s', '5m' or '1h' (got {text!r})")
        try:
            total += float(num) * _UNITS[unit]
        except ValueError:
            raise TimeFormatError(f"expected a duration like '30s', '5m' or '1h' (got {text!r})") from None
        num = ""
        matched = True
        i += len(unit)
    if num or not matched:
        raise TimeFormatError(f"expected a duration like '30s', '5m' or '1h' (got {text!r})")
    return total
