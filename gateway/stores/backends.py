"""The choice of backend: the one `[influxdb] api` names, for writing and for reading what was written.

A new backend is one module implementing gateway.stores.base.Store and gateway.stores.reader.Reader,
plus its lines here; nothing outside gateway/stores/ knows which backend it talks to.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.stores.base import Store, StoreError
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_rollup import InfluxRollups
from gateway.stores.influx_v1 import InfluxV1, compat_v1, probe_version

if TYPE_CHECKING:
    from gateway.config import InfluxConfig
    from gateway.stores.reader import Reader
    from gateway.stores.rollups import RollupBackend

log = logging.getLogger(__name__)


def open_store(cfg: InfluxConfig, remember: Path | None = None) -> Store:
    """Connect to the configured InfluxDB, probing `/ping` when `api = "auto"`.

    With `remember` (a file in the data directory) the API found is written there, and when InfluxDB
    does not answer the probe the API found last time is used: a gateway restarted during an outage,
    or started before InfluxDB after a power cut, spools instead of refusing to start. Every part
    of the gateway that opens a store must pass it (the alert records did not, and a gateway
    restarted during an outage exited)."""
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


def open_reader(cfg: InfluxConfig) -> Reader:
    """InfluxDB 1.x is read over /query; 2.x over its v1-compatible /query with the bucket as
    database and the token (the bucket needs a DBRP mapping, docs/regulators.md). Only the 1.x path
    is tested against a real server."""
    api: str = cfg.api
    if api == "auto":
        api = "v1" if probe_version(str(cfg.url)).lstrip("v").startswith("1.") else "v2"
    if api == "v1":
        return InfluxReader(InfluxV1(cfg))
    return compat_reader(cfg)


def reader_for(store: Store, cfg: InfluxConfig) -> Reader:
    """A reader of what `store` writes: over the store's own connection on 1.x (closing the reader
    leaves it open), else a new connection of its own. Close it either way."""
    return InfluxReader(store, owned=False) if isinstance(store, InfluxV1) else compat_reader(cfg)


def compat_reader(cfg: InfluxConfig) -> Reader:
    """InfluxQL on InfluxDB 2.x: its v1-compatible `/query`, with the bucket as the database and the
    token in an `Authorization: Token` header (the bucket needs a DBRP mapping)."""
    return InfluxReader(compat_v1(cfg))


def dashboard_reader(cfg: InfluxConfig) -> Reader:
    """The dashboard's reader: InfluxQL over the v1 HTTP API (docs/api.md), made without probing,
    so that the pages start, and answer 503, while the database is down."""
    return InfluxReader(InfluxV1(cfg))


def rollups_for(store: Store, cfg: InfluxConfig) -> RollupBackend:
    """Roll-ups recomputed with InfluxQL (the store's own connection on 1.x, the v1-compatible
    `/query` on 2.x) and written through `store`."""
    if isinstance(store, InfluxV1):
        return InfluxRollups(store, store)
    return InfluxRollups(compat_v1(cfg), store)


class LazyStore:
    """`open_store` on the first write, not before: the dashboard starts (and its pages answer
    503) while InfluxDB is down, and connects when a form first writes (an observation, a
    decision, a maintenance visit). A failed open is tried again at the next write."""

    def __init__(self, cfg: InfluxConfig, remember: Path | None = None) -> None:
        self._cfg, self._remember = cfg, remember
        self._store: Store | None = None

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_store(self._cfg, self._remember)
        return self._store

    def prepare(self) -> None:
        self._open().prepare()

    def write(self, lines: list[str]) -> None:
        self._open().write(lines)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
