"""A runner process for the crash tests: the real Runner with the test city, killed with SIGKILL.

``--routes FILE`` notifies the file's receivers (its secrets from this process's environment), with
``--notify-retry-max`` as ``lifeline run``'s option of that name; ``--checkpoint-every`` sets how often the
engine state is checkpointed (a long one makes a restart replay the journal and re-derive its alerts)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from lifeline.alerting.routing import load_routing
from lifeline.engine.runner import Runner
from tests.integration.helpers import city, config


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--routes", type=Path, default=None)
    p.add_argument("--notify-retry-max", type=float, default=None, metavar="SECONDS")
    p.add_argument("--checkpoint-every", type=float, default=None, metavar="SECONDS")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rules, reg = city()
    extra: dict[str, Any] = {}
    if a.routes is not None:
        extra["routing"] = load_routing(a.routes)
    if a.notify_retry_max is not None:
        extra["notify_retry_max_s"] = a.notify_retry_max
    if a.checkpoint_every is not None:
        extra["checkpoint_interval_s"] = a.checkpoint_every
    cfg = config(a.port, a.dir, client_id=a.client_id, batch_size=200, status_interval_s=1.0, **extra)
    return Runner(cfg, rules, reg).run()


if __name__ == "__main__":
    sys.exit(main())
