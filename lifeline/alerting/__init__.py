"""What happens to an alert after the engine: the notification outbox (routing, grouping, silences,
inhibition and escalation come with issue 4)."""
