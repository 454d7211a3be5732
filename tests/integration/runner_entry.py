"""A runner process for the crash test: the real Runner with the test city, killed with SIGKILL."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lifeline.engine.runner import Runner
from tests.integration.helpers import city, config


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--client-id", required=True)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rules, reg = city()
    cfg = config(a.port, a.dir, client_id=a.client_id, batch_size=200, status_interval_s=1.0)
    return Runner(cfg, rules, reg).run()


if __name__ == "__main__":
    sys.exit(main())
