"""The log channel: each notification as one JSON line, for the duty log, a SIEM or a log shipper.

``{"key", "receiver", "created", "title", "text", "alert"}``, keys sorted, the text rendered in ``lang``. With
``path`` the line is appended to that file and flushed to disk (``fsync``) before the notification counts as
delivered, so a line in the file is a notification that happened; a disk that refuses the write is retried
like any other receiver. Without ``path`` it goes to the ``lifeline.notify`` logger at WARNING (the runner's
log). The idempotency key is in the line: after a crash between the write and recording it, the line may
appear twice with the same key.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

import orjson

from lifeline.notifiers.base import DeliveryError, Notification, Notifier, channel_problems, require_valid
from lifeline.notifiers.templates import render

log = logging.getLogger("lifeline.notify")


@dataclass(frozen=True)
class LogSettings:
    path: str = ""  # empty: the lifeline.notify logger
    lang: str = "zh"
    console_url: str = ""

    def problems(self) -> list[str]:
        out = channel_problems(self.lang, 1.0)
        if self.path and os.path.isdir(self.path):
            out.append(f"path: {self.path!r} is a directory; name a file")
        return out


class LogNotifier(Notifier):
    kind = "log"

    def __init__(self, settings: LogSettings) -> None:
        require_valid(settings, "log")
        self.settings = settings
        self._lock = threading.Lock()

    def line(self, n: Notification) -> bytes:
        r = render(n.payload, self.settings.lang, self.settings.console_url)
        return orjson.dumps({"key": n.key, "receiver": n.receiver, "created": n.created, "title": r.title,
                             "text": r.text, "alert": n.payload}, option=orjson.OPT_SORT_KEYS) + b"\n"

    def send(self, n: Notification) -> None:
        data = self.line(n)
        if not self.settings.path:
            log.warning("%s", data.decode().rstrip())
            return
        try:
            with self._lock:
                fd = os.open(self.settings.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise DeliveryError(f"log file {self.settings.path}: {exc.strerror or exc}") from exc
