"""The choice of reader: the backend `[influxdb] api` names, reading where the gateway writes.

A new backend is one module implementing gateway.stores.reader.Reader, plus its line here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1, probe_version

if TYPE_CHECKING:
    from gateway.config import InfluxConfig
    from gateway.stores.base import Store
    from gateway.stores.reader import Reader


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
    """A reader of what `store` writes: over its own connection on 1.x, else a new one (close it)."""
    return InfluxReader(store) if isinstance(store, InfluxV1) else compat_reader(cfg)


def compat_reader(cfg: InfluxConfig) -> Reader:
    """InfluxQL on InfluxDB 2.x: its v1-compatible `/query`, with the bucket as the database and the
    token in an `Authorization: Token` header (the bucket needs a DBRP mapping)."""
    v1 = cfg.model_copy(update={"database": cfg.bucket, "username": None})
    return InfluxReader(InfluxV1(v1, token=cfg.token()))
