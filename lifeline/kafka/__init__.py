"""lifeline on Kafka: the MQTT → Kafka bridge (``bridge.py``); see ``docs/kafka.md``."""
