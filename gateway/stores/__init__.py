"""Where the gateway writes: InfluxDB over its v1 HTTP API (1.x, Debian's package) or v2 API (2.x/3.x)."""

from __future__ import annotations

from gateway.stores.base import Store, StoreError, open_reader, open_store

__all__ = ["Store", "StoreError", "open_reader", "open_store"]
