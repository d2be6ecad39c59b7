"""Where the gateway writes and reads: InfluxDB over its v1 HTTP API (1.x, Debian's package) or v2 API
(2.x/3.x). Writes go through `Store`, reads through `Reader`; no query text exists outside this package."""

from __future__ import annotations

from gateway.stores.backends import open_reader, open_store, reader_for, rollups_for
from gateway.stores.base import Store, StoreError
from gateway.stores.influxql import CONDITION_EXAMPLE
from gateway.stores.reader import Reader, Span

__all__ = [
    "CONDITION_EXAMPLE",
    "Reader",
    "Span",
    "Store",
    "StoreError",
    "open_reader",
    "open_store",
    "reader_for",
    "rollups_for",
]
