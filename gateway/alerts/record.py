"""The `alert` measurement in InfluxDB, written like a channel (its own worker, retries, outbox row)
so a slow or absent database delays the record but never the ingest path or the notifications."""

from __future__ import annotations

from gateway.alerts.events import AlertEvent
from gateway.channels.base import ChannelError, ChannelOptions, Notification
from gateway.stores.base import Store, StoreError


class RecordOptions(ChannelOptions):
    """Not a user channel: the record every event gets. No rate limit, no quiet hours."""

    rate_limit: int = 0
    retries: int = 8


class InfluxRecord:
    def __init__(self, store: Store) -> None:
        self._store = store

    def send(self, note: Notification) -> None:
        docs = note.events or [note.body]
        try:
            self._store.write([AlertEvent.from_json(doc).to_line() for doc in docs])
        except StoreError as exc:
            raise ChannelError(str(exc), retryable=exc.retryable) from exc

    def close(self) -> None:
        self._store.close()
