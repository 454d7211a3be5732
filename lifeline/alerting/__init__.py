"""What happens to an alert after the engine: the routing tree to receivers (``routing``) and the
notification outbox's dispatcher (``outbox``). Grouping, silences, inhibition and escalation come next
(docs/delivery.md)."""
