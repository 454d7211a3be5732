"""The operator console: a JSON API (``app``) over the alert store, with accounts and roles (``accounts``),
served by ``lifeline run --console`` and ``lifeline demo``. docs/console.md describes it."""
