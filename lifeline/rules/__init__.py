"""The rule language: YAML packs -> validated, compiled ``Rule`` objects the engine runs.

Rule files never execute code: conditions use the small expression language in ``expr``.
"""
