"""Configuration files: YAML loaded with a ``file:line:col`` for every value, problems reported all at once."""

from lifeline.config.yamlmarks import (
    Checker,
    Document,
    Mark,
    Problem,
    describe,
    did_you_mean,
    format_path,
    load_yaml,
    parse_yaml,
)

__all__ = [
    "Checker",
    "Document",
    "Mark",
    "Problem",
    "describe",
    "did_you_mean",
    "format_path",
    "load_yaml",
    "parse_yaml",
]
