"""Sources: where readings come from. ``mqtt`` (live, QoS 1, manual acks) and ``replay`` (JSON lines:
simulator output and the live journal)."""
