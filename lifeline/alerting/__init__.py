"""What happens to an alert after the engine: matchers (``matchers``), the routing tree to receivers
(``routing``), silences and maintenance windows (``silences``), noise control (``policy``: deduplication,
flapping, inhibition, silences, approval), escalation of unacknowledged alerts (``escalation``) and the
notification outbox's dispatcher (``outbox``). docs/delivery.md describes them."""
