"""Entry point: ``python -m simulators {run,city,scenarios}``."""

from simulators.cli import main

raise SystemExit(main())
