"""Container healthchecks for lifeline's services (deploy/docker-compose.yml); exit 0 healthy, 1 not.

    python healthcheck.py http URL              the URL answers 2xx (deliver: the console's /api/health)
    python healthcheck.py listening HOST:PORT   something accepts TCP connections there (worker: Faust's web port)
    python healthcheck.py connected PORT...     this container holds an established TCP connection to each
                                                remote PORT (bridge: to the broker, 1883, and to Kafka, 9092)

Standard library only (the image has no curl). ``connected`` reads /proc/net/tcp and /proc/net/tcp6: a
bridge that lost its broker or its Kafka connection is unhealthy without having to serve anything itself.
Never sends traffic anywhere but the address it is given.
"""

from __future__ import annotations

import socket
import sys
import urllib.request
from pathlib import Path

ESTABLISHED = "01"
TIMEOUT_S = 3.0


def http(url: str) -> str | None:
    """None when ``url`` answers 2xx, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            status = int(resp.status)
    except OSError as exc:
        return f"{url}: {exc}"
    return None if 200 <= status < 300 else f"{url}: HTTP {status}"


def listening(address: str) -> str | None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=TIMEOUT_S):
            return None
    except OSError as exc:
        return f"{address}: {exc}"


def remote_ports(tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> set[int]:
    """The remote ports of this network namespace's established TCP connections."""
    out: set[int] = set()
    for table in tables:
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 3 and cols[3] == ESTABLISHED:
                out.add(int(cols[2].rpartition(":")[2], 16))
    return out


def connected(ports: list[str]) -> str | None:
    have = remote_ports()
    missing = [p for p in ports if int(p) not in have]
    return f"no established connection to port(s) {', '.join(missing)}" if missing else None


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("http", "listening", "connected"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, args = argv[0], argv[1:]
    problem = http(args[0]) if kind == "http" else listening(args[0]) if kind == "listening" else connected(args)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
