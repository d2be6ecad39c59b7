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
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._topic = topic
        self._max_inflight = max_inflight
        self._max_per_pump = max_per_pump
        self._inflight: dict[int, int] = {}  # mid -> seq, for the life of this process
        self._sent_up_to = 0  # highest seq handed to paho
        self.acked = 0
        self.connections = 0

    def pump(self, send: bool = True) -> int:
        """Apply acknowledgements, then (if `send`) send what fits in the in-flight window; returns
        the number sent."""
        acked: list[int] = []
        while True:
            try:
                event = self._publisher.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, Connected):
                self.connections += 1
            elif isinstance(event, Acked) and event.mid in self._inflight:
                acked.append(self._inflight.pop(event.mid))
        self._outbox.remove(acked)
        self.acked += len(acked)
        room = min(self._max_inflight - len(self._inflight), self._max_per_pump)
        if not send or room <= 0 or not self._publisher.is_connected:
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

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def has_backlog(self) -> bool:
        """More is waiting than is in flight: worth pumping again as soon as acks come back."""
        return self._outbox.depth() > len(self._inflight)
