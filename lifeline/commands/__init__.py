"""CLI subcommands: each module offers ``add_parser(subparsers)`` and a ``cmd_*(args) -> int``."""
