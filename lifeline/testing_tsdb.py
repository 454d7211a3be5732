"""A real line-protocol server for tests: VictoriaMetrics (Debian's ``victoria-metrics``) on a free loopback port.

It accepts InfluxDB line-protocol writes at ``/api/v2/write`` as InfluxDB 2.x does (``../shared/DESIGN.md``
§4) and is read back through its export API. ``stop`` ends exactly the process ``start`` started; a
stopped server can be started again on the same port and data directory (a store that goes down and
comes back). A missing binary is an error (``TsdbError``), never a silent skip: the test command
installs it (``apt-get install victoria-metrics``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from lifeline.errors import LifelineError
from lifeline.testing_broker import free_port, stop_broker


class TsdbError(LifelineError):
    """VictoriaMetrics is missing or did not start; the message says why."""


class VictoriaMetrics:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        exe = shutil.which("victoria-metrics")
        if exe is None:
            raise TsdbError("victoria-metrics is not installed: the time-series tests need a real line-protocol "
                            "server (apt-get install victoria-metrics)")
        self.exe, self.data_dir = exe, data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "victoria-metrics.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.exe, f"-httpListenAddr=127.0.0.1:{self.port}", f"-storageDataPath={self.data_dir / 'data'}",
                 "-retentionPeriod=100y", "-loggerLevel=ERROR"], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TsdbError(f"victoria-metrics exited with {self.proc.returncode} at start: "
                                f"{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=0.5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TsdbError(f"victoria-metrics did not answer on {self.url} within {timeout} s (log {self.log})")

    def stop(self) -> None:
        """Terminate exactly this process, and wait until its port is free again."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        stop_broker(proc)  # SIGTERM, then SIGKILL: any one process we started, not only a broker
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)

    def export(self, match: str, start: float, end: float) -> list[dict[str, Any]]:
        """Every stored series matching ``match`` (a series selector) between two epoch times, each with its
        ``metric`` labels, ``values`` and ``timestamps`` (ms)."""
        with urllib.request.urlopen(self.url + "/internal/force_flush", timeout=10):
            pass
        q = urllib.parse.urlencode({"match[]": match, "start": f"{start:.3f}", "end": f"{end:.3f}"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=10) as r:
            return [json.loads(x) for x in r.read().decode().splitlines() if x.strip()]
