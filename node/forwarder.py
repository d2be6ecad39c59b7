"""Moves readings from the outbox to the broker and deletes them once acknowledged (store-and-forward).

Readings go out strictly in `seq` order, oldest first, with at most `max_inflight` unacknowledged at
any time: the broker's PUBACKs set the pace, so a week of backlog never floods it. Each `pump` does a
bounded amount of work (`max_per_pump`) and returns, so the main loop keeps sampling on time while a
backlog drains and fresh readings queue behind it for seconds, not hours.

paho keeps unacknowledged messages across reconnections and resends them with their mids, so the
mid -> seq map lives as long as this process. After a restart the map is empty and everything still
in the outbox is sent again: a reading may reach the broker twice (the gateway and InfluxDB keep
one), but none is deleted before its PUBACK.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

from node.outbox import Outbox
from node.publisher import Acked, Connected, Publisher


class Forwarder:
    def __init__(
        self,
        outbox: Outbox,
        publisher: Publisher,
        topic: str,
        max_inflight: int,
        max_per_pump: int = 500,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._topic = topic
        self._max_inflight = max_inflight
        self._max_per_pump = max_per_pump
        self._monotonic = monotonic
        self._inflight: dict[int, int] = {}  # mid -> seq, for the life of this process
        self._sent_up_to = 0  # highest seq handed to paho
        # Acknowledged but not yet deleted: deleting in batches costs one SQLite transaction per
        # batch instead of one per wake-up. A crash before the delete only means a resend.
        self._acked: list[int] = []
        self._acked_since: float | None = None
        # Refill the window in chunks (a quarter of it), not one reading per acknowledgement.
        self._refill_at = max(1, max_inflight // 4)
        self.acked = 0
        self.connections = 0

    def pump(self, send: bool = True) -> int:
        """Apply acknowledgements, then (if `send`) send what fits in the in-flight window; returns
        the number sent."""
        while True:
            try:
                event = self._publisher.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, Connected):
                self.connections += 1
            elif isinstance(event, Acked) and event.mid in self._inflight:
                self._acked.append(self._inflight.pop(event.mid))
                self.acked += 1
        if self._acked:
            now = self._monotonic()
            self._acked_since = self._acked_since or now
            if not send or not self._inflight or len(self._acked) >= 500 or now - self._acked_since >= 1.0:
                self.flush_acked()
        room = min(self._max_inflight - len(self._inflight), self._max_per_pump)
        waiting = self._outbox.depth() - len(self._inflight) - len(self._acked)
        # While a backlog drains, wake the main loop once a chunk of the window is free, not per ack.
        self._publisher.wake_every = self._refill_at if waiting > self._refill_at else 1
        if not send or room < min(self._refill_at, waiting) or room <= 0 or not self._publisher.is_connected:
            return 0
        sent = 0
        for seq, payload in self._outbox.pending(after_seq=self._sent_up_to, limit=room):
            mid = self._publisher.publish(self._topic, payload)
            if mid is None:
                break
            self._inflight[mid] = seq
            self._sent_up_to = seq
            sent += 1
        return sent

    def flush_acked(self) -> None:
        """Delete every acknowledged reading from the outbox now."""
        self._outbox.remove(self._acked)
        self._acked, self._acked_since = [], None

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def has_backlog(self) -> bool:
        """More is waiting than is in flight: worth pumping again as soon as acks come back."""
        return self._outbox.depth() > len(self._inflight) + len(self._acked)
