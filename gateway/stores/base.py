"""The one interface every store offers, and the choice between them (`[influxdb] api`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.config import InfluxConfig
    from gateway.stores.influx_v1 import InfluxV1


class StoreError(Exception):
    """A write that did not happen. `retryable` says whether the same lines may succeed later
    (unreachable, timeout, 5xx) or never will (4xx: a bad point, a type conflict, no permission)."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class Store(Protocol):
    def write(self, lines: list[str]) -> None:
        """Write line protocol (millisecond precision) durably, or raise StoreError."""

    def close(self) -> None: ...


def open_store(cfg: InfluxConfig) -> Store:
    """Connect to the configured InfluxDB, probing `/ping` when `api = "auto"`."""
    from gateway.stores.influx_v1 import InfluxV1, probe_version
    from gateway.stores.influx_v2 import InfluxV2

    api = cfg.api
    if api == "auto":
        version = probe_version(str(cfg.url))
        api = "v1" if version.lstrip("v").startswith("1.") else "v2"
    if api == "v1":
        return InfluxV1(cfg)
    return InfluxV2(cfg)


def open_reader(cfg: InfluxConfig) -> InfluxV1:
    """An InfluxQL reader for `export` and `report`. InfluxDB 1.x is read over /query; 2.x over its
    v1-compatible /query with the bucket as database and the token (the bucket needs a DBRP mapping,
    docs/regulators.md). Only the 1.x path is tested against a real server."""
    from gateway.stores.influx_v1 import InfluxV1, probe_version

    api = cfg.api
    if api == "auto":
        api = "v1" if probe_version(str(cfg.url)).lstrip("v").startswith("1.") else "v2"
    if api == "v1":
        return InfluxV1(cfg)
    return InfluxV1(cfg.model_copy(update={"database": cfg.bucket, "username": None}), token=cfg.token())
