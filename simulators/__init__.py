"""Physical simulators for lifeline: a demo city, one model per domain, composable sensor faults,
scenarios with ground truth, and publishers (JSON lines, MQTT).

Simulators may import ``lifeline`` (model, registry); ``lifeline`` must never import simulators.
Everything is seeded: a sensor's stream is a function of (scenario, seed, sensor id) only, so
adding or removing other sensors never changes it.
"""

from simulators.runner import Run, generate
from simulators.scenario import Scenario, load_scenario

__all__ = ["Run", "Scenario", "generate", "load_scenario"]
