"""A real Mosquitto on a free loopback port, with lifeline's shipped settings (``deploy/mosquitto.conf``).

Used by the integration tests (``tests/integration/conftest.py``) and the end-to-end benchmark
(``benchmarks/e2e_throughput.py``). The broker is started from the shipped config with the listener
and the persistence path rewritten, and exactly that process is terminated by ``stop_broker``.
A missing ``mosquitto`` is an error (``BrokerError``), never a silent skip.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lifeline.errors import LifelineError
from lifeline.paths import REPO

SHIPPED_CONF = REPO / "deploy" / "mosquitto.conf"


class BrokerError(LifelineError):
    """Mosquitto is missing or did not start; the message says why."""


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def find_mosquitto() -> str:
    exe = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
                                              if Path(p).exists()), None)
    if exe is None:
        raise BrokerError("mosquitto is not installed: the integration tests and benchmarks need a real broker "
                          "(apt-get install mosquitto mosquitto-clients)")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_conf(port: int, data_dir: Path, shipped: Path = SHIPPED_CONF) -> str:
    """The shipped config with the listener on ``port`` and persistence under ``data_dir``."""
    lines = []
    for line in shipped.read_text().splitlines():
        if line.startswith("listener "):
            line = f"listener {port} 127.0.0.1"
        elif line.startswith("persistence_location "):
            line = f"persistence_location {data_dir}/"
        lines.append(line)
    # Started as root, mosquitto drops to user "mosquitto", which cannot write the test's directory.
    lines.append(f"user {getpass.getuser()}")
    return "\n".join(lines) + "\n"


def start_broker(tmp: Path, timeout: float = 10.0) -> Broker:
    """Start Mosquitto with the shipped settings on a free 127.0.0.1 port; config, log and
    persistence live in ``tmp``. Returns once it accepts connections."""
    exe = find_mosquitto()
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    conf = tmp / "mosquitto.conf"
    conf.write_text(broker_conf(port, tmp))
    log = tmp / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"mosquitto ({exe} -c {conf}) exited with {proc.returncode} at start: "
                              f"{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Broker("127.0.0.1", port, proc, log)
        except OSError:
            time.sleep(0.05)
    stop_broker(proc)
    raise BrokerError(f"mosquitto did not accept connections on 127.0.0.1:{port} within {timeout} s (log {log})")


def stop_broker(proc: subprocess.Popen[bytes]) -> None:
    """Terminate exactly this broker process (SIGTERM, then SIGKILL after 10 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
