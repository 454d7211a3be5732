"""``python -m lifeline``: the same as the ``lifeline`` command."""

import sys

from lifeline.cli import main

sys.exit(main())
