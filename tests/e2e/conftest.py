"""End-to-end tests share the integration tests' real Mosquitto fixture."""

from tests.integration.conftest import mosquitto

__all__ = ["mosquitto"]
