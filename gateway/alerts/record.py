"""The `alert` measurement in InfluxDB, written like a channel (its own worker, retries, outbox row)
so a slow or absent database delays the record but never the ingest path or the notifications."""

from __future__ import annotations

from typing import Any

from gateway.alerts.events import AlertEvent, params_json
from gateway.channels.base import ChannelError, ChannelOptions, Notification
from gateway.stores.base import Store, StoreError
from gateway.stores.reader import AlertEvent as StoredAlert


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


def as_recorded(doc: dict[str, Any]) -> StoredAlert:
    """What the reader gives for this event once the record stored it (gateway/stores/influx_read.py
    `_alert` of the point `to_line` writes), so the dashboard can list it from the alert store."""
    e = AlertEvent.from_json(doc)
    return StoredAlert(
        time=e.at,
        site=e.site,
        node=e.node,
        rule=e.rule,
        metric=e.metric,
        state=e.state,
        severity=e.severity,
        value=None if e.value is None else float(e.value),
        limit=None if e.limit is None else float(e.limit),
        average=e.average,
        late=e.late,
        message=e.message,
        msg_id=e.msg_id or None,
        msg_params=params_json(e.msg_params) if e.msg_params else None,
        peak=None if e.peak is None else float(e.peak),
        started=e.started,
        ended=e.ended,
        alert_id=e.id,
        acked_by=e.acked_by or None,
        unit=e.unit or None,
    )
