"""MQTT republish: a notification as a QoS 1 message on a topic of a broker (another system's, or the same),
for control-room software that listens on MQTT rather than HTTP.

Topic: ``topic`` with ``{receiver}``, ``{domain}``, ``{district}``, ``{level}`` and ``{rule}`` filled in
(default ``lifeline/notify/{receiver}/{domain}``). Payload: sorted JSON ``{"key", "receiver", "title",
"text", "alert"}`` (title and text from the templates, in ``lang``). Delivered when the broker has
acknowledged the message (PUBACK) within the timeout; a lost connection is retried by the outbox, and the
client reconnects by itself. Credentials come from the environment. The key is in the payload: a receiver
drops a repeat.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from lifeline.notifiers.base import DeliveryError, Notification, Notifier, channel_problems, require_valid
from lifeline.notifiers.templates import render


@dataclass(frozen=True)
class MqttNotifySettings:
    host: str
    port: int = 1883
    topic: str = "lifeline/notify/{receiver}/{domain}"
    client_id: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    lang: str = "zh"
    console_url: str = ""
    timeout_s: float = 10.0

    def problems(self) -> list[str]:
        out = []
        if not self.topic or any(c in self.topic for c in "#+"):
            out.append(f"topic: a topic to publish on, without wildcards (got {self.topic!r})")
        out.extend(channel_problems(self.lang, self.timeout_s, (self.host, self.port)))
        return out


class MqttNotifier(Notifier):
    kind = "mqtt"

    def __init__(self, settings: MqttNotifySettings) -> None:
        require_valid(settings, "mqtt")
        self.settings = settings
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self._up = threading.Event()  # set while connected

    def _connected(self) -> mqtt.Client:
        s = self.settings
        with self._lock:
            if self._client is None:
                c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id or "")
                if s.username:
                    c.username_pw_set(s.username, s.password)
                c.on_connect = self._on_connect
                c.on_disconnect = self._on_disconnect
                c.connect_async(s.host, s.port)
                c.loop_start()  # paho reconnects by itself from here on
                self._client = c
            return self._client

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            self._up.clear()  # refused (bad credentials, not authorised): paho keeps trying
        else:
            self._up.set()

    def _on_disconnect(self, *args: Any) -> None:
        self._up.clear()

    def topic_of(self, n: Notification) -> str:
        a = n.payload
        return self.settings.topic.format(receiver=n.receiver, domain=a.get("domain", ""),
                                          district=a.get("district", ""), level=a.get("level", ""),
                                          rule=a.get("rule", ""))

    def send(self, n: Notification) -> None:
        s = self.settings
        r = render(n.payload, s.lang, s.console_url)
        body = orjson.dumps({"key": n.key, "receiver": n.receiver, "title": r.title, "text": r.text,
                             "alert": n.payload}, option=orjson.OPT_SORT_KEYS)
        client = self._connected()
        # publish only while connected: paho would queue it otherwise and might send it after the outbox
        # has already scheduled a retry (a duplicate)
        if not self._up.wait(s.timeout_s):
            raise DeliveryError(f"mqtt {s.host}:{s.port}: not connected within {s.timeout_s:g} s")
        info = client.publish(self.topic_of(n), body, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise DeliveryError(f"mqtt {s.host}:{s.port}: {mqtt.error_string(info.rc)}")
        try:
            info.wait_for_publish(s.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"mqtt {s.host}:{s.port}: {exc}") from exc
        if not info.is_published():
            raise DeliveryError(f"mqtt {s.host}:{s.port}: no PUBACK within {s.timeout_s:g} s")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
