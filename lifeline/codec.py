"""bytes <-> Reading: the one wire format (README "Readings over MQTT"), shared with the simulators.

Pure: the receive time is passed in, never read. Every rejected input becomes a ``DeadLetter``
with a machine-readable reason from ``REASONS`` and a detail naming the thing, place and value.
Stateful checks (duplicate ``seq``, late readings) belong to the engine, not here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from lifeline.model import QUALITIES, DeadLetter, Reading
from lifeline.registry import Registry
from lifeline.timefmt import TimeFormatError, parse_ts

REASONS: frozenset[str] = frozenset(
    {
        "empty",  # zero-length payload
        "oversize",  # payload larger than Limits.max_bytes
        "not_utf8",
        "not_json",
        "bad_shape",  # JSON, but not an object / array of objects with the required keys
        "bad_type",  # a field of the wrong type (value a string, seq a float, ...)
        "non_finite",  # NaN / Infinity
        "batch_too_large",
        "bad_topic",  # topic outside the prefix, or missing the sensor id
        "unknown_domain",
        "unknown_sensor",
        "domain_mismatch",  # the registry says the sensor belongs to another domain
        "bad_ts",
        "future_ts",
        "duplicate_seq",  # engine
        "late",  # engine: not newer than the last reading of that sensor metric
        "internal_error",  # runner: an unexpected exception while handling this message (a bug; logged)
    }
)

_EXCERPT = 120
_MISSING: Any = object()
# a Reading straight from its tuple of fields: Reading(...) would run NamedTuple's Python-level __new__
_reading = tuple.__new__


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 256 * 1024
    max_batch: int = 10_000
    max_future_s: float = 300.0


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _excerpt(payload: bytes) -> str:
    return payload[:_EXCERPT].decode("utf-8", "replace")


def split_topic(topic: str, prefix: str) -> tuple[str, str]:
    """``<prefix>/<domain>/<sensor>`` -> (domain, sensor); raise _Reject('bad_topic')."""
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head):
        raise _Reject("bad_topic", f"topic {topic!r} is not under {head!r}")
    domain, _, sensor = topic[len(head) :].partition("/")
    if not domain or not sensor or "/" in sensor:
        raise _Reject("bad_topic", f"topic {topic!r}: expected {head}<domain>/<sensor_id>")
    return domain, sensor


# Topics repeat (one per sensor) and splitting one cost ~10 % of a decode; bounded (~6 MB at most), and a
# topic that is rejected raises every time (lru_cache keeps no exceptions).
_split_topic_cached = functools.lru_cache(maxsize=16384)(split_topic)


def decode(
    topic: str,
    payload: bytes,
    *,
    registry: Registry,
    received_at: float | None,
    prefix: str = "lifeline/readings",
    limits: Limits = Limits(),
) -> Decoded:
    """Decode one MQTT message into readings and dead letters. Never raises on bad input."""
    try:
        domain, sensor = _split_topic_cached(topic, prefix)
        obj = _parse_json(payload, limits)
        if isinstance(obj, list):
            return _decode_batch(obj, topic, (domain, sensor, registry, received_at, limits))
        return Decoded(_decode_one(obj, (domain, sensor, registry, received_at, limits)), [])
    except _Reject as rej:
        return Decoded([], [DeadLetter(rej.reason, rej.detail, topic, _excerpt(payload))])


def decode_line(
    line: bytes | str,
    *,
    registry: Registry,
    received_at: float | None = None,
    limits: Limits = Limits(),
    where: str = "",
) -> tuple[Decoded, float | None]:
    """Decode one JSON line of the replay format: a wire object with ``sensor`` (and optionally
    ``domain``), or a tick ``{"tick": ts}``. Returns (decoded, tick_ts)."""
    raw = line.encode() if isinstance(line, str) else line
    out = Decoded([], [])
    try:
        obj = _parse_json(raw, limits)
        if isinstance(obj, dict) and len(obj) == 1 and "tick" in obj:
            return out, _ts_of(obj["tick"])
        items = obj if isinstance(obj, list) else [obj]
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("sensor"), str):
                raise _Reject("bad_shape", f"{where}replay line needs an object with a 'sensor' string")
            sensor = item["sensor"]
            known = registry.get(sensor)
            domain = item.get("domain") or (known.domain if known else "")
            if not isinstance(domain, str):
                raise _Reject("bad_type", f"{where}replay line's 'domain' must be a string (got {_short(domain)})")
            if not domain:
                raise _Reject("unknown_sensor", f"{where}sensor {sensor!r} is not in the registry")
            out.readings += _decode_one(item, (domain, sensor, registry, received_at, limits))
    except _Reject as rej:
        out.dead.append(DeadLetter(rej.reason, where + rej.detail, "", _excerpt(raw)))
    return out, None


def _parse_json(payload: bytes, limits: Limits) -> Any:
    if not payload:
        raise _Reject("empty", "payload is empty")
    if len(payload) > limits.max_bytes:
        raise _Reject("oversize", f"payload is {len(payload)} bytes, over the limit of {limits.max_bytes}")
    if type(payload) is not bytes:  # orjson would also take a str or a memoryview: keep the exact checks
        _check_utf8(payload)
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # orjson validates all of a bytes input as UTF-8 before parsing (and fails as a JSON error), so the
        # happy path needs no decode of its own: only a rejected payload is checked, to name the bad byte
        _check_utf8(payload)
        msg = str(exc)
        if "infinity" in msg.lower() or b"NaN" in payload or b"Infinity" in payload:
            raise _Reject("non_finite", "NaN and Infinity are not valid values") from None
        raise _Reject("not_json", f"payload is not JSON: {msg[:100]}") from None


def _check_utf8(payload: bytes) -> None:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject("not_utf8", f"payload is not UTF-8 (byte {exc.start}: {payload[exc.start]:#04x})") from None


def _ts_of(value: Any) -> float:
    try:
        return parse_ts(value)
    except TimeFormatError as exc:
        raise _Reject("bad_ts", str(exc)) from None


# Where a payload came from and what it is checked against: (domain, topic's sensor id, registry,
# receive time, limits). A plain tuple, as it is built once per message.
_Where = tuple[str, str, Registry, float | None, Limits]


def _decode_batch(items: list[Any], topic: str, where: _Where) -> Decoded:
    """A JSON array: each item decoded alone, a bad one dead-lettered under its index."""
    max_batch = where[4].max_batch
    if len(items) > max_batch:
        raise _Reject("batch_too_large", f"batch of {len(items)} items, over the limit of {max_batch}")
    if not items:
        raise _Reject("bad_shape", "batch is an empty array")
    out = Decoded([], [])
    for i, item in enumerate(items):
        try:
            out.readings += _decode_one(item, where)
        except _Reject as rej:
            out.dead.append(DeadLetter(rej.reason, f"item {i}: {rej.detail}", topic, _short(item)))
    return out


def _short(item: Any) -> str:
    try:
        return orjson.dumps(item)[:_EXCERPT].decode("utf-8", "replace")
    except TypeError:
        return repr(item)[:_EXCERPT]


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        f = float(value)
        if not math.isfinite(f):
            raise _Reject("non_finite", f"metric {name!r}: value {value!r} is not finite")
        return f
    got = f"{type(value).__name__} {_short(value)}"
    raise _Reject("bad_type", f"metric {name!r}: expected a number or boolean (got {got})")


def _decode_one(obj: Any, where: _Where) -> list[Reading]:
    """One wire object -> its readings, all or none. The checks run in a fixed order: the first failure is
    the one reported. (The hot path of the decoder: the common cases are inline, the rest in helpers.)"""
    domain, topic_sensor, registry, received_at, limits = where
    if not isinstance(obj, dict):
        raise _Reject("bad_shape", f"expected a JSON object (got {type(obj).__name__})")
    sensor = obj.get("sensor", topic_sensor)
    if not isinstance(sensor, str) or not sensor:
        raise _Reject("bad_type", f"'sensor' must be a non-empty string (got {_short(sensor)})")
    if registry.domains and domain not in registry.domains:
        known_domains = ", ".join(sorted(registry.domains))
        raise _Reject("unknown_domain", f"domain {domain!r} is not registered (known: {known_domains})")
    known = registry.get(sensor)
    if known is None and registry.strict:
        raise _Reject("unknown_sensor", f"sensor {sensor!r} is not in the registry")
    if known is not None and known.domain != domain:
        raise _Reject("domain_mismatch", f"sensor {sensor!r} is registered under {known.domain!r}, not {domain!r}")
    m = obj.get("metrics", _MISSING)
    if type(m) is dict and m:
        # each name checked before its value, in order; JSON keys are str, finite floats and ints the common case
        values = [(v if type(v) is float and math.isfinite(v) else float(v) if type(v) is int else _number(k, v))
                  if 0 < len(k) <= 64 else _bad_metric_name(k) for k, v in m.items()]
        names: Iterable[str] = m
    else:
        names, values = _metrics_other(obj, m)
    raw_ts = obj.get("ts", _MISSING)
    if type(raw_ts) is float and math.isfinite(raw_ts):  # what parse_ts returns as it is
        ts, assumed = raw_ts, False
        if received_at is not None and ts > received_at + limits.max_future_s:
            _reject_future(ts, received_at, limits)
    else:
        ts, assumed = _event_time(raw_ts, received_at, limits)
    seq = obj.get("seq")
    if seq is not None and type(seq) is not int:  # from JSON: not a bool either
        raise _Reject("bad_type", f"'seq' must be an integer (got {_short(seq)})")
    quality = obj.get("quality", "good")
    if type(quality) is not str or quality not in QUALITIES:  # a list or object is not hashable: check the type first
        raise _Reject("bad_type", f"'quality' must be good, suspect or bad (got {_short(quality)})")
    unit = obj.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise _Reject("bad_type", f"'unit' must be a string (got {_short(unit)})")
    return [_reading(Reading, (sensor, domain, name, ts, value, seq, quality, unit, assumed))
            for name, value in zip(names, values, strict=False)]


def _metrics_other(obj: dict[str, Any], m: Any) -> tuple[Iterable[str], list[float]]:
    """(names, values) when "metrics" is not a non-empty object: a bad one, or "metric" and "value"."""
    if m is not _MISSING:
        raise _Reject("bad_shape", "'metrics' must be a non-empty object of name: number")
    if "metric" in obj and "value" in obj:
        name = _metric_name(obj["metric"])
        return (name,), [_number(str(name), obj["value"])]
    raise _Reject("bad_shape", "expected 'metric' and 'value', or 'metrics'")


def _bad_metric_name(name: Any) -> float:
    _metric_name(name)
    raise AssertionError(f"metric name {name!r} passed the check it failed")


def _metric_name(name: Any) -> str:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise _Reject("bad_type", f"metric name must be a string of 1-64 characters (got {_short(name)})")
    return name


def _event_time(raw: Any, received_at: float | None, limits: Limits) -> tuple[float, bool]:
    """(ts, assumed) from the raw "ts" value (``_MISSING`` when absent)."""
    if raw is _MISSING:
        if received_at is None:
            raise _Reject("bad_ts", "reading has no 'ts' and no receive time is known")
        return received_at, True
    ts = _ts_of(raw)
    if received_at is not None and ts > received_at + limits.max_future_s:
        _reject_future(ts, received_at, limits)
    return ts, False


def _reject_future(ts: float, received_at: float, limits: Limits) -> None:
    ahead = ts - received_at
    raise _Reject("future_ts", f"ts is {ahead:.0f} s ahead of the receive time (limit {limits.max_future_s:.0f} s)")


def encode_reading(ts: float, metrics: Mapping[str, float], *, seq: int | None = None, **extra: Any) -> bytes:
    """Encode one multi-metric wire payload (the simulators and tests use this)."""
    obj: dict[str, Any] = {"ts": ts, "metrics": dict(metrics)}
    if seq is not None:
        obj["seq"] = seq
    obj.update(extra)
    return orjson.dumps(obj)
