"""Validate -> batch -> store (or spool) -> acknowledge. One instance, driven by the gateway's main thread.

A message is acknowledged to the broker only once it is durable: its reading written to InfluxDB or
committed to the spool (gateway/spool.py), or, for a message we refuse, its body committed to the
dead-letter store (gateway/deadletter.py). A crash at any instant therefore loses nothing: the broker
redelivers what was not acknowledged. A batch is flushed when it is full or when its oldest message
has waited `max_delay_s`, whichever comes first.

A signed reading's signature is checked before its batch is written, not as it arrives: the checks
of a batch are handed to `checks` (gateway/trust/checker.py) as it fills, so a worker process can
do the arithmetic while this thread parses the next messages, and the verdicts are taken when the
batch is flushed. One that fails is refused as `bad_signature` and kept as a dead letter, as before.

The `on_stored` hooks see each durable reading once: repeats of a (site, node, seq) already shown
to them, such as a node resending after a reconnection, are filtered out (gateway/dedup.py).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from contract.wire import DEFAULT_CLOCK_TOLERANCE_S, PayloadError, ReadingPayload
from gateway.deadletter import DeadLetters, Reject
from gateway.dedup import RecentSeqs
from gateway.points import to_line
from gateway.spool import Entry, Spool
from gateway.stores.base import Store, StoreError, write_sifting
from gateway.subscriber import Message
from gateway.trust.checker import Checks, InlineChecks
from gateway.trust.verifier import SignatureCheck
from gateway.validate import parse_reading

log = logging.getLogger(__name__)

Ack = Callable[[list[Message]], None]
OnStored = Callable[[list[ReadingPayload]], None]
Verify = Callable[[ReadingPayload], SignatureCheck | None]
"""Raises PayloadError for a reading that must not be stored; returns the signature check still to
make, or None (gateway.trust.verifier.Verifier.prepare)."""
SUBMIT_EVERY = 100  # signature checks handed over at a time: a write to the worker per 100 readings


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0  # written to InfluxDB or to the spool
    spooled: int = 0
    duplicates: int = 0  # repeats kept from the on_stored hooks
    rejected: Counter[str] = field(default_factory=Counter)
    write_failures: int = 0
    last_write: float | None = None  # time.time() of the last successful InfluxDB write
    influx_reachable: bool | None = None  # outcome of the last InfluxDB write, None before any


class Ingest:
    def __init__(
        self,
        store: Store,
        ack: Ack,
        *,
        prefix: str = "minewatch",
        max_size: int = 1000,
        max_delay_s: float = 0.2,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
        on_stored: list[OnStored] | None = None,
        dead: DeadLetters | None = None,
        spool: Spool | None = None,
        recent: RecentSeqs | None = None,
        clock_tolerance_s: float = DEFAULT_CLOCK_TOLERANCE_S,
        verify: Verify | None = None,
        checks: Checks | None = None,
    ) -> None:
        self._store = store
        self._ack = ack
        self._prefix = prefix
        self._max_size = max_size
        self._max_delay_s = max_delay_s
        self._monotonic = monotonic
        self._clock = clock
        self._on_stored = on_stored or []
        self._dead = dead
        self._spool = spool
        self._recent = recent if recent is not None else RecentSeqs()
        self._tolerance_s = clock_tolerance_s
        self._verify = verify
        self._checks = checks if checks is not None else InlineChecks()
        # readings whose signature check is under way, in arrival order, and how many of them were
        # handed to the checks (an unsigned one among them waits too, to keep the order)
        self._unchecked: list[tuple[Message, ReadingPayload, datetime, SignatureCheck | None]] = []
        self._submitted = 0
        self._lines: list[str] = []
        self._readings: list[ReadingPayload] = []
        self._messages: list[Message] = []
        self._rejects: list[tuple[Message, Reject]] = []
        self._repeats: list[Message] = []  # readings stored before: acknowledged, not written
        self._oldest: float | None = None
        self._last_reject_log: dict[str, float] = {}
        self.stats = IngestStats()

    def handle(self, msg: Message) -> None:
        """Validate one message into the current batch, as a reading or as a reject."""
        self.stats.received += 1
        if self._oldest is None:
            self._oldest = msg.received_at
        try:
            now = datetime.fromtimestamp(self._clock(), UTC)
            reading = parse_reading(
                msg.topic, msg.payload, self._prefix, now=now, clock_tolerance_s=self._tolerance_s
            )
            check = self._verify(reading) if self._verify is not None else None
        except PayloadError as exc:
            self._reject(msg, exc.reason, exc.detail)
            return
        if check is not None or self._unchecked:
            self._unchecked.append((msg, reading, now, check))
            if len(self._unchecked) - self._submitted >= SUBMIT_EVERY:
                self._submit()
            return
        self._accept(msg, reading, now)

    def _submit(self) -> None:
        todo = self._unchecked[self._submitted :]
        self._checks.submit([c for _, _, _, c in todo if c is not None])
        self._submitted = len(self._unchecked)

    def _settle(self) -> None:
        """Take the verdicts of the checks under way: a reading that passed joins the batch."""
        self._submit()
        verdicts = iter(self._checks.collect())
        unchecked, self._unchecked, self._submitted = self._unchecked, [], 0
        for msg, reading, now, check in unchecked:
            if check is None or next(verdicts):
                self._accept(msg, reading, now)
            else:
                self._reject(msg, "bad_signature", f"signature does not match key {check.kid}")

    def _accept(self, msg: Message, reading: ReadingPayload, now: datetime) -> None:
        if self._recent.has(reading.site, reading.node, reading.seq, int(reading.ts.timestamp() * 1000)):
            # already stored: writing it again would only replace its `received` time with a later
            # one, and nothing stored is replaced. It is acknowledged with the next batch.
            self.stats.duplicates += 1
            self._repeats.append(msg)
            return
        self._lines.append(to_line(reading, received=now))
        self._readings.append(reading)
        self._messages.append(msg)

    def is_due(self) -> bool:
        if self._oldest is None:
            return False
        if self.pending >= self._max_size:
            return True
        return self._monotonic() - self._oldest >= self._max_delay_s

    def next_due_in(self) -> float:
        """Seconds until the current batch is due (0 when due, a default when empty)."""
        if self._oldest is None:
            return self._max_delay_s
        return max(0.0, self._max_delay_s - (self._monotonic() - self._oldest))

    @property
    def pending(self) -> int:
        return len(self._lines) + len(self._rejects) + len(self._repeats) + len(self._unchecked)

    def flush(self) -> None:
        """Make the batch durable, then acknowledge it. A retryable StoreError (InfluxDB down and no
        spool, the spool full, a disk error) leaves what is not durable in place and unacknowledged,
        so the caller can retry after a pause."""
        if self._unchecked:
            self._settle()
        if self._rejects:
            self._keep_rejects()
        if self._lines:
            self._store_readings()
        if self._repeats:
            self._ack(self._repeats)
            self._repeats = []
        self._oldest = None

    def _keep_rejects(self) -> None:
        if self._dead is not None:
            try:
                self._dead.add([r for _, r in self._rejects])
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the dead-letter store: {exc}", retryable=True) from exc
        self._ack([m for m, _ in self._rejects])
        self._rejects = []

    def _store_readings(self) -> None:
        spool = self._spool
        if spool is not None and spool.depth > 0:
            self._to_spool(spool)  # behind what already waits, to keep the order
            return
        try:
            refused = write_sifting(self._store, self._lines)
        except StoreError as exc:
            self.stats.write_failures += 1
            self.stats.influx_reachable = False
            if spool is None:
                raise
            log.warning("InfluxDB write failed (%s); spooling %d readings", exc, len(self._lines))
            self._to_spool(spool)
            return
        self.stats.influx_reachable = True
        self.stats.last_write = self._clock()
        if refused:
            self.stats.write_failures += 1
            bad = {i for i, _ in refused}
            for i, error in refused:
                log.warning("InfluxDB refused a point from %s: %s", self._messages[i].topic[:200], error)
                self._reject(self._messages[i], "store_refused", str(error))
            if self._rejects:
                self._keep_rejects()
            keep = [i for i in range(len(self._lines)) if i not in bad]
            self._done([self._readings[i] for i in keep], [self._messages[i] for i in keep])
        else:
            self._done(self._readings, self._messages)
        self._lines, self._readings, self._messages = [], [], []

    def _to_spool(self, spool: Spool) -> None:
        spool.append(
            [Entry(line, m.topic, m.payload) for line, m in zip(self._lines, self._messages, strict=True)]
        )
        self.stats.spooled += len(self._lines)
        self._done(self._readings, self._messages)
        self._lines, self._readings, self._messages = [], [], []

    def _done(self, readings: list[ReadingPayload], messages: list[Message]) -> None:
        """Hooks run before the node's messages are acknowledged: a gateway killed in between gets
        them again from the broker, so a hook that keeps what it is handed (the hub forwarder's
        outbox) never misses a stored reading."""
        self.stats.stored += len(readings)
        recent = self._recent
        fresh = [r for r in readings if recent.is_new(r.site, r.node, r.seq, int(r.ts.timestamp() * 1000))]
        self.stats.duplicates += len(readings) - len(fresh)
        if fresh:
            for hook in self._on_stored:
                try:
                    hook(fresh)
                except Exception:  # a broken hook must not stop ingest; the readings are stored
                    log.exception("on_stored hook %r failed", hook)
        self._ack(messages)

    def _reject(self, msg: Message, reason: str, detail: str) -> None:
        self.stats.rejected[reason] += 1
        self._rejects.append((msg, Reject(self._clock(), msg.topic, msg.payload, reason, detail)))
        now = self._monotonic()
        # One log line per reason per minute: a flood of garbage must not become a flood of logs.
        if now - self._last_reject_log.get(reason, -1e9) >= 60:
            self._last_reject_log[reason] = now
            log.warning(
                "rejected message on %s: %s: %s (%d %s so far)",
                msg.topic[:200],
                reason,
                detail[:300],
                self.stats.rejected[reason],
                reason,
            )
