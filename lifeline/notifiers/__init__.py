"""Notification channels: one module per channel, the contract in ``base``; the outbox
(``lifeline.alerting.outbox``) delivers through them."""

from lifeline.notifiers.base import DeliveryError, Notification, Notifier, notification_key

__all__ = ["DeliveryError", "Notification", "Notifier", "notification_key"]
