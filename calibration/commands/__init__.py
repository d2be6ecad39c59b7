"""Subcommands of `minewatch-calibrate`, one module each, each defining `add(sub)` (as node/commands)."""
