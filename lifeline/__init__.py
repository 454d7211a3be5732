"""lifeline: a streaming monitoring engine for a city's lifelines.

The package never imports ``simulators``; the engine core (``lifeline.engine``) never does I/O,
never reads the wall clock and never draws random numbers.
"""

__version__ = "0.1.0"
