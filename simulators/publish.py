"""Publish a run over MQTT (paho-mqtt 2.x, QoS 1): topic ``<prefix>/<domain>/<sensor_id>``, payload
``{"ts", "metrics", "seq"}`` (DESIGN.md §2). Paced by ``rate`` (readings/s) or by event time.

paho refuses ``publish()`` past its in-flight limit silently; every return code is checked and
the publisher waits for all acknowledgements before it returns (DESIGN.md §5).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.runner import Progress, Run


class PublishError(RuntimeError):
    pass


def publish(
    run: Run,
    host: str,
    port: int,
    *,
    prefix: str = "lifeline/readings",
    rate: float = 0.0,
    realtime: bool = False,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send every reading of ``run``; ``realtime`` waits until each reading's event time (the run must
    have been generated with ``start`` = now); ``rate`` > 0 caps readings per second."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"lifeline-sim-{int(clock())}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    if client.connect(host, port, keepalive=30) != mqtt.MQTT_ERR_SUCCESS:
        raise PublishError(f"cannot connect to MQTT broker {host}:{port}")
    client.loop_start()
    sent = 0
    infos: list[mqtt.MQTTMessageInfo] = []
    began = clock()
    rows = run.rows()
    step = max(len(rows) // 10, 1)
    try:
        for ts, sensor, domain, seq, metrics in rows:
            if realtime:
                wait = ts - clock()
                if wait > 0:
                    sleep(wait)
            elif rate > 0:
                wait = began + sent / rate - clock()
                if wait > 0:
                    sleep(wait)
            payload = orjson.dumps({"ts": ts, "metrics": metrics, "seq": seq})
            info = client.publish(f"{prefix}/{domain}/{sensor}", payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise PublishError(f"publish of {sensor} seq {seq} failed: {mqtt.error_string(info.rc)}")
            infos.append(info)
            sent += 1
            if len(infos) >= 500:
                for i in infos:
                    i.wait_for_publish(timeout=30)
                infos.clear()
            if progress and sent % step == 0:
                progress(f"published {sent}/{len(rows)} readings")
        for i in infos:
            i.wait_for_publish(timeout=30)
            if not i.is_published():
                raise PublishError(f"broker {host}:{port} did not acknowledge message {i.mid}")
    finally:
        client.loop_stop()
        client.disconnect()
    return sent
