"""One registry shape for every plugin family: ``name -> "module:Class"``, resolved lazily.

A family (detectors, later sources, sinks, notifiers) lists its built-in plugins as import strings,
so an optional dependency is imported only when a configuration names that plugin. Unknown names
answer with a did-you-mean suggestion. Never imports a plugin module at import time.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from lifeline.errors import LifelineError

T = TypeVar("T")


class UnknownPlugin(LifelineError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class PluginRegistry(Generic[T]):
    def __init__(self, family: str, base: type[Any], builtins: Mapping[str, str]) -> None:
        self.family = family
        self.base = base
        self._paths = dict(builtins)
        self._loaded: dict[str, type[T]] = {}

    def names(self) -> list[str]:
        return sorted(self._paths)

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._paths, n=1, cutoff=0.6)
        return f" (did you mean {close[0]!r}?)" if close else ""

    def get(self, name: str) -> type[T]:
        cls = self._loaded.get(name)
        if cls is not None:
            return cls
        path = self._paths.get(name)
        if path is None:
            raise UnknownPlugin(f"unknown {self.family} {name!r}{self.suggest(name)}; "
                                f"known: {', '.join(self.names())}")
        module_name, _, attr = path.partition(":")
        loaded = getattr(importlib.import_module(module_name), attr)
        if not (isinstance(loaded, type) and issubclass(loaded, self.base)):
            raise TypeError(f"{self.family} {name!r}: {path} is not a {self.base.__name__}")
        self._loaded[name] = loaded
        return loaded

    def register(self, name: str, path: str) -> None:
        """Add a plugin (e.g. a city's own detector): ``name -> "package.module:Class"``."""
        self._paths[name] = path
        self._loaded.pop(name, None)
