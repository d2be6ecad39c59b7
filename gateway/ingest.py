"""Validate -> batch -> store -> acknowledge. One instance, driven by the gateway's main thread.

A message is acknowledged to the broker only after the batch holding its reading has been written
(or, for a message we refuse, once it has been counted and logged), so a crash between receipt and
write loses nothing: the broker redelivers. A batch is written when it is full or when its oldest
reading has waited `max_delay_s`, whichever comes first.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.points import to_line
from gateway.schema import PayloadError, ReadingPayload, parse_reading
from gateway.stores.base import Store, StoreError
from gateway.subscriber import Message

log = logging.getLogger(__name__)

Ack = Callable[[list[Message]], None]
OnStored = Callable[[list[ReadingPayload]], None]
Verify = Callable[[ReadingPayload], None]
"""Raises PayloadError for a reading that must not be stored (e.g. gateway.trust.verifier)."""


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    write_failures: int = 0
    last_write: float | None = None  # time.time() of the last successful write


class Ingest:
    def __init__(
        self,
        store: Store,
        ack: Ack,
        *,
        prefix: str = "minewatch",
        max_size: int = 1000,
        max_delay_s: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
        on_stored: list[OnStored] | None = None,
        verify: Verify | None = None,
    ) -> None:
        self._store = store
        self._ack = ack
        self._prefix = prefix
        self._max_size = max_size
        self._max_delay_s = max_delay_s
        self._monotonic = monotonic
        self._on_stored = on_stored or []
        self._verify = verify
        self._lines: list[str] = []
        self._readings: list[ReadingPayload] = []
        self._messages: list[Message] = []
        self._oldest: float | None = None
        self._last_reject_log: dict[str, float] = {}
        self.stats = IngestStats()

    def handle(self, msg: Message) -> None:
        """Validate one message into the current batch; refused messages are counted and acked."""
        self.stats.received += 1
        try:
            reading = parse_reading(msg.topic, msg.payload, self._prefix)
            if self._verify is not None:
                self._verify(reading)
        except PayloadError as exc:
            self._reject(msg, exc)
            return
        if self._oldest is None:
            self._oldest = msg.received_at
        self._lines.append(to_line(reading))
        self._readings.append(reading)
        self._messages.append(msg)

    def is_due(self) -> bool:
        if not self._lines:
            return False
        if len(self._lines) >= self._max_size:
            return True
        return self._oldest is not None and self._monotonic() - self._oldest >= self._max_delay_s

    def next_due_in(self) -> float:
        """Seconds until the current batch is due (0 when due, a default when empty)."""
        if self._oldest is None:
            return self._max_delay_s
        return max(0.0, self._max_delay_s - (self._monotonic() - self._oldest))

    @property
    def pending(self) -> int:
        return len(self._lines)

    def flush(self) -> None:
        """Write the batch, then acknowledge it. StoreError (retryable) leaves the batch in place
        and unacknowledged so the caller can retry after a pause."""
        if not self._lines:
            return
        try:
            self._store.write(self._lines)
        except StoreError as exc:
            self.stats.write_failures += 1
            if exc.retryable:
                raise
            self._write_one_by_one(exc)
        else:
            self._done(self._readings, self._messages)
        self._lines, self._readings, self._messages, self._oldest = [], [], [], None

    def _write_one_by_one(self, batch_error: StoreError) -> None:
        """A batch the database refused as a whole: find the bad points so the good ones are kept."""
        log.warning("InfluxDB refused a batch (%s); writing its points one by one", batch_error)
        for line, reading, msg in zip(self._lines, self._readings, self._messages, strict=True):
            try:
                self._store.write([line])
            except StoreError as exc:
                if exc.retryable:
                    raise
                self._reject(msg, PayloadError("store_refused", str(exc)))
            else:
                self._done([reading], [msg])

    def _done(self, readings: list[ReadingPayload], messages: list[Message]) -> None:
        self.stats.stored += len(readings)
        self.stats.last_write = time.time()
        self._ack(messages)
        for hook in self._on_stored:
            hook(readings)

    def _reject(self, msg: Message, exc: PayloadError) -> None:
        self.stats.rejected[exc.reason] += 1
        now = self._monotonic()
        # One log line per reason per minute: a flood of garbage must not become a flood of logs.
        if now - self._last_reject_log.get(exc.reason, -1e9) >= 60:
            self._last_reject_log[exc.reason] = now
            log.warning(
                "rejected message on %s: %s (%d %s so far)",
                msg.topic[:200],
                exc,
                self.stats.rejected[exc.reason],
                exc.reason,
            )
        self._ack([msg])
