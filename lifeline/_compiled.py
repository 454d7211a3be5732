"""Which build of the hot path runs: compiled (mypyc) or pure Python. Imported first by ``lifeline/__init__.py``.

A build is used only when it is complete and its stamp matches the sources; otherwise (a module edited
since, or ``LIFELINE_PURE=1``) every hot module is loaded from its ``.py`` file. ``lifeline.native``
builds, cleans and reports (see there).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

#: compiled together, in this order (the engine's hot path and the detectors the shipped packs use)
MODULES: tuple[str, ...] = (
    "lifeline.detectors.base",
    "lifeline.detectors.spike",
    "lifeline.detectors.flatline",
    "lifeline.detectors.forecast",
    "lifeline.detectors.rate_of_change",
    "lifeline.engine.lifecycle",
    "lifeline.engine.state",
    "lifeline.engine.evaluators",
    "lifeline.engine.processor",
)
GROUP = "lifeline._native"  # mypyc's shared library: lifeline/_native__mypyc.<abi>.so, inside the package
PURE_ENV = "LIFELINE_PURE"
ROOT = Path(__file__).resolve().parent.parent  # the directory that holds the lifeline package
STAMP = ROOT / "lifeline" / "_native.stamp"


def source(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def fingerprint() -> str:
    """What a build is valid for: the sources (names and bytes) and the interpreter's ABI."""
    h = hashlib.sha256(sys.implementation.cache_tag.encode())
    for m in MODULES:
        h.update(m.encode() + b"\0" + source(m).read_bytes() + b"\0")
    return h.hexdigest()


def _extension(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        p = base.with_name(base.name + suffix)
        if p.exists():
            return p
    return None


def built() -> list[Path]:
    return [p for p in map(_extension, (*MODULES, GROUP + "__mypyc")) if p is not None]


def state() -> tuple[str, str]:
    """("native", "") when a complete, current build is there and allowed, else ("pure", why)."""
    found = built()
    if not found:
        return "pure", "no native build (python -m lifeline.native build)"
    if len(found) < len(MODULES) + 1:
        return "pure", "incomplete native build (python -m lifeline.native build)"
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return "pure", f"{PURE_ENV}={os.environ[PURE_ENV]}"
    try:
        stamp = STAMP.read_text().strip()
    except OSError:
        stamp = ""
    if stamp != fingerprint():
        return "pure", "stale native build: the sources changed since (python -m lifeline.native build)"
    return "native", ""


def loaded() -> str:
    """How the engine actually runs in this process: "native" or "pure"."""
    import lifeline.engine.processor as mod

    return "native" if str(mod.__file__).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)) else "pure"


class _PureFinder:
    """Loads the hot modules from their sources when the build must not be used."""

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name not in MODULES:
            return None
        return importlib.util.spec_from_file_location(name, source(name))


def guard() -> None:
    """Called by ``lifeline/__init__.py`` before anything else: use the build only when ``state`` allows."""
    if built() and state()[0] != "native" and not any(isinstance(f, _PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder())
