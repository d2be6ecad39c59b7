"""The one interface every store offers, and the choice between them (`[influxdb] api`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.config import InfluxConfig

log = logging.getLogger(__name__)

API_FILE = "influxdb-api"
"""In the gateway's data directory: the API `api = "auto"` found last time ("v1" or "v2")."""


class StoreError(Exception):
    """A write that did not happen. `retryable` says whether the same lines may succeed later
    (unreachable, timeout, 5xx, no permission yet) or never will (a bad point, a type conflict)."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


BAD_POINT_STATUSES = (400, 413, 422)
"""Answers that mean the points themselves are wrong (syntax, type conflict, too large): retrying
the same lines can never succeed. Any other failure (unreachable, timeout, 5xx, 401/403/404: a
server or configuration problem) may succeed later and is retried."""


def is_retryable(status: int | None) -> bool:
    return status not in BAD_POINT_STATUSES


class Store(Protocol):
    def write(self, lines: list[str]) -> None:
        """Write line protocol (millisecond precision) durably, or raise StoreError."""

    def close(self) -> None: ...


def open_store(cfg: InfluxConfig, remember: Path | None = None) -> Store:
    """Connect to the configured InfluxDB, probing `/ping` when `api = "auto"`.

    With `remember` (a file in the data directory) the API found is written there, and when InfluxDB
    does not answer the probe the API found last time is used: a gateway restarted during an outage,
    or started before InfluxDB after a power cut, spools instead of refusing to start. Every part
    of the gateway that opens a store must pass it (the alert records did not, and a gateway
    restarted during an outage exited)."""
    from gateway.stores.influx_v1 import InfluxV1, probe_version

    api: str = cfg.api
    if api == "auto":
        try:
            version = probe_version(str(cfg.url))
        except StoreError as exc:
            if remember is None or not exc.retryable or not remember.exists():
                raise
            api = remember.read_text().strip()
            log.warning("InfluxDB does not answer (%s); using its %s API as last time", exc, api)
        else:
            api = "v1" if version.lstrip("v").startswith("1.") else "v2"
            if remember is not None:
                remember.parent.mkdir(parents=True, exist_ok=True)
                remember.write_text(api + "\n")
    if api == "v1":
        return InfluxV1(cfg)
    # only now: influxdb-client (and the numpy it imports when installed) costs ~30 MB resident
    from gateway.stores.influx_v2 import InfluxV2

    return InfluxV2(cfg)


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
