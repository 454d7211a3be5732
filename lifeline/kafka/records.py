"""What lifeline writes to Kafka and reads back: the record formats shared by the bridge, the workers and the
delivery worker (docs/kafka.md, "Topics").

* ``readings``: the sensor's MQTT payload, unchanged; key = the sensor id; header ``mqtt_topic`` = the MQTT
  topic it came on (the domain is in it). A **tick** (event time moves on without a reading, e.g. the end of a
  replay or an idle partition) is the payload ``{"tick": <epoch s>}`` with ``mqtt_topic`` = ``TICK_TOPIC``, sent
  to every partition.
* ``alerts``: one alert event (``AlertEvent.to_dict()`` as JSON); key = the alert id (its transitions stay in
  order on one partition). A worker also sends, at each checkpoint, a **watermark** record per partition it
  owns (key ``~watermark/<partition>``, value ``{"watermark": ts, "partition": p}``): the delivery worker's
  clock for noise control, which would otherwise stop whenever no alert changes.
* ``deadletter``: a dead letter (``DeadLetter.to_dict()``); header ``reason``.
"""

from __future__ import annotations

from typing import Any

import orjson

from lifeline.model import AlertEvent, DeadLetter

TOPIC_HEADER = "mqtt_topic"
REASON_HEADER = "reason"
TICK_TOPIC = "lifeline/tick"
WATERMARK_KEY = b"~watermark/"


def header(headers: Any, name: str) -> bytes | None:
    """A header's value from Kafka client headers: a list of pairs (confluent-kafka, aiokafka) or a mapping
    (Faust's ``Message.headers``)."""
    if not headers:
        return None
    if isinstance(headers, dict):
        v = headers.get(name)
        return v if isinstance(v, bytes) or v is None else str(v).encode()
    for k, v in headers:
        if k == name:
            return v if isinstance(v, bytes) else str(v).encode()
    return None


def tick_value(ts: float) -> bytes:
    return orjson.dumps({"tick": ts})


def alert_value(e: AlertEvent) -> bytes:
    return orjson.dumps(e.to_dict())


def watermark_record(partition: int, wm: float) -> tuple[bytes, bytes]:
    return WATERMARK_KEY + str(partition).encode(), orjson.dumps({"watermark": wm, "partition": partition})


def dead_value(d: DeadLetter) -> bytes:
    return orjson.dumps(d.to_dict())


def parse_alert_record(key: bytes | None, value: bytes) -> AlertEvent | float:
    """An ``alerts`` record: the event, or a worker's watermark (a float). Raises ValueError on anything
    else (the delivery worker dead-letters it)."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if key is not None and key.startswith(WATERMARK_KEY):
        wm = doc.get("watermark")
        if not isinstance(wm, int | float):
            raise ValueError("a watermark record without a number 'watermark'")
        return float(wm)
    try:
        return AlertEvent.from_dict(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an alert event: {type(exc).__name__}: {exc}") from None
