"""The exception tree, in one place.

LifelineError
├── ConfigError          a configuration file is wrong (carries every problem, as file:line:col)
│   ├── RulesError       rule packs (lifeline.rules.loader)
│   ├── RegistryError    sensor register / district GeoJSON (lifeline.registry)
│   └── RoutingError     the notification routing tree (lifeline.alerting.routing)
└── StoreError           the alert store cannot be opened or written

Bad *input data* never raises: it becomes a DeadLetter with a reason (lifeline.codec.REASONS).
"""

from __future__ import annotations


class LifelineError(Exception):
    """Base of every error lifeline raises on purpose."""


class ConfigError(LifelineError):
    """A configuration file has problems; ``str()`` lists each on its own line."""


class StoreError(LifelineError):
    pass
