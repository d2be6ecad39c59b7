"""Moves readings from the outbox to the broker and deletes them once acknowledged (store-and-forward).

Acknowledgements arrive as paho mids. Mids are only meaningful within one connection, so after every
reconnection everything still in the outbox is sent again, oldest first: a reading may reach the
broker twice (the gateway and InfluxDB keep one), but none is deleted before its PUBACK.
"""

from __future__ import annotations

import queue

from node.outbox import Outbox
from node.publisher import Acked, Connected, Publisher


class Forwarder:
    def __init__(self, outbox: Outbox, publisher: Publisher, topic: str, max_inflight: int) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._topic = topic
        self._max_inflight = max_inflight
        self._inflight: dict[int, int] = {}  # mid -> seq, for the current connection only
        self._sent_up_to = 0  # highest seq handed to paho on this connection
        self.acked = 0

    def pump(self) -> int:
        """Apply acknowledgements, then send what fits in the in-flight window; returns sent count."""
        acked: list[int] = []
        while True:
            try:
                event = self._publisher.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, Connected):
                self._inflight.clear()
                self._sent_up_to = 0
            elif isinstance(event, Acked) and event.mid in self._inflight:
                acked.append(self._inflight.pop(event.mid))
        self._outbox.remove(acked)
        self.acked += len(acked)
        room = self._max_inflight - len(self._inflight)
        if room <= 0 or not self._publisher.is_connected:
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
