"""Sinks: where alert events go. ``store`` is the system of record (SQLite); ``jsonl`` writes the
byte-comparable JSON-lines form shared by ``lifeline backtest`` and ``lifeline run --alerts-out``."""
