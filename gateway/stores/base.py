"""The write seam every backend offers, and the errors every store raises (the choice between the
backends is gateway/stores/backends.py)."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)

API_FILE = "influxdb-api"
"""In the gateway's data directory: the API `api = "auto"` found last time ("v1" or "v2")."""


class StoreError(Exception):
    """A write that did not happen. `retryable` says whether the same lines may succeed later
    (unreachable, timeout, 5xx, no permission yet) or never will (a bad point, a type conflict)."""

    def __init__(
        self, message: str, *, retryable: bool, status: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message if hint is None else f"{message} ({hint})")
        self.retryable = retryable
        self.status = status
        self.hint = hint  # what an operator must set up for this to work (a 2.x bucket's DBRP mapping)


BAD_POINT_STATUSES = (400, 413, 422)
"""Answers that mean the points themselves are wrong (syntax, type conflict, too large): retrying
the same lines can never succeed. Any other failure (unreachable, timeout, 5xx, 401/403/404: a
server or configuration problem) may succeed later and is retried."""


def is_retryable(status: int | None) -> bool:
    return status not in BAD_POINT_STATUSES


class Store(Protocol):
    def write(self, lines: list[str]) -> None:
        """Write line protocol (millisecond precision) durably, or raise StoreError."""

    def prepare(self) -> None:
        """Create what the backend needs before the first write (InfluxDB 1.x: the database), or
        raise StoreError; the gateway starts all the same and the write retries."""

    def close(self) -> None: ...


def write_sifting(store: Store, lines: list[str]) -> list[tuple[int, StoreError]]:
    """Write `lines`; when the database refuses the batch as bad points, split it in halves until
    each refused line is alone, so the good ones are kept. Returns (index, error) of the refused
    lines; a retryable error propagates (some lines may already be written: rewriting is harmless)."""
    try:
        store.write(lines)
    except StoreError as exc:
        if exc.retryable:
            raise
        if len(lines) == 1:
            return [(0, exc)]
        half = len(lines) // 2
        left = write_sifting(store, lines[:half])
        right = write_sifting(store, lines[half:])
        return left + [(i + half, e) for i, e in right]
    return []
