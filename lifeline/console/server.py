"""Serve the console over HTTP with uvicorn, in a thread of the calling process (``lifeline run --console``).

Binds its own socket first, so port 0 means "any free port" and ``port`` tells which one it got. Plain HTTP:
put it behind the city's TLS terminator (nginx) in production, and pass ``secure_cookies=True``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn

from lifeline.console.app import Console

log = logging.getLogger(__name__)


class ConsoleServer:
    def __init__(self, console: Console, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.console = console
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> int:
        """Start serving; the port it listens on."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.console.app(), log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="console",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"console did not start on {self.host}:{self.port} within {timeout_s:g} s")
            time.sleep(0.02)
        log.info("console on http://%s:%d/", self.host, self.port)
        return self.port

    def stop(self) -> None:
        self.console.closing.set()  # end the live feeds first: they would hold the shutdown for its grace period
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
