"""A real Mosquitto for the integration tests, on a free loopback port, with lifeline's shipped settings.

The broker is started from ``deploy/mosquitto.conf`` (listener and persistence path rewritten for the
test), and exactly that process is terminated at the end. If ``mosquitto`` is missing the fixture FAILS:
the test command installs it (``apt-get install mosquitto mosquitto-clients``); never silently skip.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONF = REPO / "deploy" / "mosquitto.conf"


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
        pytest.fail("mosquitto is not installed: the integration tests need a real broker "
                    "(apt-get install mosquitto mosquitto-clients)", pytrace=False)
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_conf(port: int, data_dir: Path) -> str:
    """The shipped config with the listener on ``port`` and persistence under ``data_dir``."""
    lines = []
    for line in SHIPPED_CONF.read_text().splitlines():
        if line.startswith("listener "):
            line = f"listener {port} 127.0.0.1"
        elif line.startswith("persistence_location "):
            line = f"persistence_location {data_dir}/"
        lines.append(line)
    # Started as root, mosquitto drops to user "mosquitto", which cannot write the test's directory.
    lines.append(f"user {getpass.getuser()}")
    return "\n".join(lines) + "\n"


def start_broker(tmp: Path, timeout: float = 10.0) -> Broker:
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
            pytest.fail(f"mosquitto exited with {proc.returncode} at start: {log.read_text()[-2000:]}", pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Broker("127.0.0.1", port, proc, log)
        except OSError:
            time.sleep(0.05)
    stop_broker(proc)
    pytest.fail(f"mosquitto did not accept connections on 127.0.0.1:{port} within {timeout} s", pytrace=False)


def stop_broker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A running Mosquitto (lifeline's settings) on a free loopback port: yields host/port."""
    broker = start_broker(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker
    finally:
        stop_broker(broker.proc)
