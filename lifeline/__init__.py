"""lifeline: a streaming monitoring engine for a city's lifelines.

The package never imports ``simulators``; the engine core (``lifeline.engine``) never does I/O,
never reads the wall clock and never draws random numbers.
"""

__version__ = "0.1.0"

# The hot path may be compiled (lifeline/native.py): a stale or partial build must never load.
from lifeline._compiled import guard as _guard

_guard()
