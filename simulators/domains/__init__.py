"""One physical model per domain. Each module exposes

* ``DOMAIN`` — the registry domain it simulates,
* ``simulate(sensor, ts, rng, effects) -> {metric: values}`` — pure and vectorised over ``ts``,
* ``INCIDENTS`` — incident kind -> ``expand(incident, registry) -> [Effect]``, which spreads an
  incident over the sensors that feel it (delays and attenuation computed from the *whole*
  registry, so a sensor's stream never depends on which other sensors are simulated).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from lifeline.registry import Registry
from simulators.base import Effect, Incident, resolve
from simulators.domains import bridge, crowd, drainage, elevator, gas, water

Expand = Callable[[Incident, Registry], list[Effect]]

MODELS: dict[str, ModuleType] = {m.DOMAIN: m for m in (gas, water, drainage, bridge, elevator, crowd)}
INCIDENTS: dict[str, Expand] = {k: v for m in MODELS.values() for k, v in m.INCIDENTS.items()}

__all__ = ["INCIDENTS", "MODELS", "Expand", "resolve"]

