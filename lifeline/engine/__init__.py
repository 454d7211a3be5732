"""The engine: a pure, deterministic function of (input readings, event time) -> AlertEvents.

``processor.Engine`` is the core; ``runner`` is the live shell around it.
"""

from lifeline.engine.processor import Engine, EngineOutput

__all__ = ["Engine", "EngineOutput"]
