"""The steps of a stop, run from a `finally:` without hiding why we stop.

A step that fails on the way out (saving a file when the process has no file descriptors left,
the very fault that stopped it) used to replace the exception that was leaving: the log then said
"cannot save recent-seqs.json" and never what had gone wrong first. Here every step runs whatever
the others do; while an exception is leaving, a failing step is logged beside it and the cause goes
on; on a clean stop, the first failing step is raised once all have run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

Step = tuple[str, Callable[[], None]]


def shut_down(steps: Iterable[Step], cause: BaseException | None) -> None:
    """Run `steps` (what each does, for the log; the call) in order. `cause` is the exception the
    caller is stopping on, or None for a clean stop."""
    first: Exception | None = None
    for what, step in steps:
        try:
            step()
        except Exception as exc:
            if cause is not None:
                log.error("%s failed while stopping on %s: %s", what, _name(cause), exc)
            elif first is None:
                first = exc
            else:
                log.error("%s failed while stopping: %s", what, exc)
    if first is not None:
        raise first


def _name(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
