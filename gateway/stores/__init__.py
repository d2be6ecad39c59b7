"""Where the gateway writes and reads: InfluxDB over its v1 HTTP API (1.x, Debian's package) or v2 API
(2.x/3.x). Writes go through `Store`, reads through `Reader`; no query text exists outside this package."""

from __future__ import annotations

from gateway.stores.base import Store, StoreError, open_store
from gateway.stores.reader import Reader, Span
from gateway.stores.readers import open_reader, reader_for

__all__ = ["Reader", "Span", "Store", "StoreError", "open_reader", "open_store", "reader_for"]
