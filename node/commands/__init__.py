"""Subcommands of `minewatch-node`, one module each.

Each module defines `add(sub)`, which adds its parser to the subparsers and sets `func` (a callable
taking the parsed args and returning the exit code). Dropping a new module here is all the CLI needs.
"""
