"""The process's open-file limit: raised to what the system allows, and read to size what a flood
of connections may take (gateway/web/guard.py)."""

from __future__ import annotations

import resource

CEILING = 1 << 20  # Linux's default fs.nr_open: a soft limit above it is refused even when "unlimited"


def raise_open_files() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one (systemd starts services at a soft 1024 whatever
    the unit's hard limit) and return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = CEILING if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft  # a container may forbid it: live with what we have
        return target
    return soft


def open_files_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return CEILING if soft == resource.RLIM_INFINITY else soft
