"""The site side of the regional link: every stored reading, and the site's node keys, to the hub.

Installed by `run` when `[forward]` is present. Live readings come from the `on_stored` hook
(which runs before the node's message is acknowledged, so a gateway killed in between is handed
them again); what was stored before forwarding began is read back from InfluxDB, oldest first, a
window at a time, and only while the outbox holds little backfill, so the disk holds a bounded
amount of it; an unsigned row an earlier version stored without `period_s` goes marked
(`ForwardBatch.period_unknown`). The site's alert events come as a delivery route of the alert
store (`AlertsToOutbox`), whose row is committed with the event, so none is lost to a kill.
The site's field records (maintenance visits; accepted observations with their decisions) are
read every `field_scan_s` and queued when new or changed (gateway/forward/field.py).
Everything waits in the durable outbox until the hub's ack for its batch arrives.

Keys go first: when the site's registry has changed since the hub last acknowledged it, a batch
with the keys alone is sent, and readings wait for its ack, so the hub never sees a reading
signed by a key it has not been given.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contract.hub import (
    ForwardBatch,
    ForwardedKey,
    ForwardedObservation,
    ForwardedStatus,
    ForwardedVisit,
    HubAck,
    StoredReading,
    ack_topic,
    canonical_json,
    forward_topic,
)
from contract.signing import Signer
from contract.status import parse_status
from contract.verify_offline import parse_time
from contract.wire import ReadingPayload, format_ts, parse_topic
from gateway.alerts.events import AlertEvent
from gateway.alerts.record import RecordOptions
from gateway.channels.base import ChannelError, Notification
from gateway.config import ForwardConfig
from gateway.dataset import DEFAULT_INTERVAL_S, inferred_interval_s
from gateway.forward import field
from gateway.forward.link import link_for
from gateway.forward.outbox import Batch, Outbox
from gateway.hooks import Hooks
from gateway.points import epoch_ms
from gateway.stores.reader import Reader, Span
from gateway.subscriber import Message, Subscriber
from gateway.trust.registry import KeyRegistry
from gateway.trust.reverify import reading_of_row

if TYPE_CHECKING:
    from gateway.alerts.service import Alerts

log = logging.getLogger(__name__)

FUTURE_MARGIN = timedelta(minutes=10)
"""Backfill runs up to the first start plus this: a reading may be stamped a little ahead (the
gateway accepts `clock_tolerance_s` into the future) and was still stored before forwarding began."""
WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=30))


class Forwarder:
    def __init__(
        self,
        cfg: ForwardConfig,
        outbox: Outbox,
        reader: Reader,
        registry: KeyRegistry,
        *,
        prefix: str = "minewatch",
        link: Subscriber | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cfg, self._outbox, self._reader, self._registry = cfg, outbox, reader, registry
        self._identity = Signer.from_file(cfg.identity_file)
        self.link = link or link_for(cfg.mqtt)
        self._clock = clock
        self._prefix_site = prefix
        self._keys_batch: tuple[int, str] | None = None  # (batch id, keys hash) awaiting its ack
        self._keys_sent_at = 0.0
        self._field_scanned_at: float | None = None
        self.acked = 0

    def install(self, hooks: Hooks, alerts: Alerts | None = None) -> None:
        hooks.on_stored.append(self.on_stored)
        hooks.handlers.append(("status", self.on_status))
        hooks.tickers.append(self.tick)
        if alerts is not None:
            # A delivery route of the alert store, not an `on_event` hook: the route's row is
            # committed with the event, so an event raised in the instant of a kill still reaches
            # the outbox after the restart (which raises nothing again: the machine is stored).
            alerts.routes.append(
                (RecordOptions(name="forward"), AlertsToOutbox(self._outbox.path, self._cfg.site))
            )

    def start(self) -> None:
        if self._cfg.backfill and self._outbox.get("backfill_until") is None:
            until = datetime.fromtimestamp(self._clock(), UTC) + FUTURE_MARGIN
            first = self._reader.first_reading_time(self._cfg.site)
            cursor = until if first is None else first - timedelta(milliseconds=1)
            self._outbox.put("backfill_until", format_ts(until))
            self._outbox.put("backfill_cursor", format_ts(cursor))
        self.link.start([ack_topic(self._cfg.topic_prefix, self._cfg.site)])

    def stop(self) -> None:
        self.link.stop()
        self._outbox.close()

    def on_stored(self, readings: list[ReadingPayload]) -> None:
        # The gateway stored them a moment ago (its `received` column): the hub judges a key the
        # site revokes later by this time, as the site does (docs/trust.md).
        site, now = self._cfg.site, datetime.fromtimestamp(self._clock(), UTC)
        self._outbox.add(
            (
                StoredReading(received=now, reading=r).model_dump_json(by_alias=True).encode()
                for r in readings
                if r.site == site
            ),
            live=True,
            kind="stored",
        )

    def on_status(self, msg: Message) -> None:
        """A node's status as the site received it (the gateway stores it in node_status)."""
        try:
            site, node, _ = parse_topic(self._prefix_site, msg.topic)
            status = parse_status(msg.payload)
        except ValueError:  # PayloadError is one
            return  # the gateway's own status handler counts and keeps it
        if site != self._cfg.site:
            return
        received = datetime.fromtimestamp(self._clock(), UTC)
        body = ForwardedStatus(node=node, received=received, status=status)
        self._outbox.add([body.model_dump_json().encode()], live=True, kind="status")

    def tick(self) -> None:
        now = self._clock()
        self._take_acks()
        self._outbox.expire(now - self._cfg.ack_timeout_s)
        if self._keys_batch is not None and now - self._keys_sent_at > self._cfg.ack_timeout_s:
            self._keys_batch = None  # never acknowledged: send them again
        self._backfill()
        if self._field_scanned_at is None or now - self._field_scanned_at >= self._cfg.field_scan_s:
            self._field_scanned_at = now
            self._scan_fields()
        if not self.link.connected.is_set():
            return
        keys_hash, records = self._keys()
        if keys_hash != self._outbox.get("keys_hash"):
            if self._keys_batch is None:
                batch = int(self._outbox.get("key_batches") or "0") + 1
                self._outbox.put("key_batches", str(batch))
                # key batches count down from the top so they never share an id with readings
                bid = 2**62 - batch
                # vouched only when sent: signing every key at every tick would be the loop's main cost
                keys = [ForwardedKey.vouched(r, self._identity.private) for r in records]
                body = ForwardBatch(site=self._cfg.site, batch=bid, keys=keys)
                if self._send(body):
                    self._keys_batch, self._keys_sent_at = (bid, keys_hash), now
            return
        while self._outbox.in_flight() < self._cfg.max_in_flight:
            taken = self._outbox.take(self._cfg.batch_size, now)
            if taken is None:
                break
            if not self._send(self._batch(taken)):
                self._outbox.expire(now + 1)  # not queued: the next tick tries again
                break

    def _batch(self, taken: Batch) -> ForwardBatch:
        readings: list[ReadingPayload] = []
        received: list[datetime | None] = []
        statuses: list[ForwardedStatus] = []
        alerts: list[dict[str, Any]] = []
        period_unknown: list[int] = []
        visits: list[ForwardedVisit] = []
        observations: list[ForwardedObservation] = []
        for kind, body in taken.bodies:
            if kind == "visit":
                visits.append(ForwardedVisit.model_validate_json(body))
            elif kind == "observation":
                observations.append(ForwardedObservation.model_validate_json(body))
            elif kind == "status":
                statuses.append(ForwardedStatus.model_validate_json(body))
            elif kind == "alert":
                alerts.append(json.loads(body))
            elif kind == "stored":
                stored = StoredReading.model_validate_json(body)
                if not stored.period_known:
                    period_unknown.append(len(readings))
                readings.append(stored.reading)
                received.append(stored.received)
            else:  # a bare reading, queued by an earlier version: no stored time
                readings.append(ReadingPayload.model_validate_json(body))
                received.append(None)
        return ForwardBatch(
            site=self._cfg.site, batch=taken.id, readings=readings, statuses=statuses, alerts=alerts,
            received=received if any(t is not None for t in received) else [],
            period_unknown=period_unknown, visits=visits, observations=observations,
        )  # fmt: skip

    def _send(self, batch: ForwardBatch) -> bool:
        topic = forward_topic(self._cfg.topic_prefix, self._cfg.site)
        # the fields added later only when used: a hub that predates one refuses it as malformed
        omit = {f for f in ("period_unknown", "visits", "observations") if not getattr(batch, f)}
        return self.link.publish(topic, batch.model_dump_json(by_alias=True, exclude=omit).encode(), qos=1)

    def _take_acks(self) -> None:
        while (msg := self.link.inbox.get_nowait()) is not None:
            try:
                ack = HubAck.model_validate_json(msg.payload)
            except ValidationError:
                log.warning("not a hub ack on %s: ignored", msg.topic)
            else:
                if self._keys_batch is not None and ack.batch == self._keys_batch[0]:
                    self._outbox.put("keys_hash", self._keys_batch[1])
                    self._keys_batch = None
                else:
                    self.acked += self._outbox.acked(ack.batch)
                if ack.refused:
                    log.warning(
                        "the hub refused %d of batch %d (kept there for review)", ack.refused, ack.batch
                    )
            self.link.ack([msg])

    def _keys(self) -> tuple[str, list[dict[str, Any]]]:
        """The site's key records as the registry holds them now, and their digest."""
        self._registry.refresh()
        records = sorted(
            (r.model_dump(mode="json") for r in self._registry.records() if r.site == self._cfg.site),
            key=lambda r: str(r["kid"]),
        )
        digest = hashlib.sha256(canonical_json({"keys": records})).hexdigest()
        return digest, records

    def _backfill(self) -> None:
        until_text, cursor_text = self._outbox.get("backfill_until"), self._outbox.get("backfill_cursor")
        if until_text is None or cursor_text is None:
            return
        until, cursor = parse_time(until_text), parse_time(cursor_text)
        if cursor >= until or self._outbox.pending(live=False) >= 2 * self._cfg.batch_size:
            return
        for window in WINDOWS:  # an empty window widens the next: a year of silence is quick to cross
            end = min(cursor + window, until)
            bodies = []
            rows = list(self._reader.stored_readings(Span(self._cfg.site, [], cursor, end)))
            guesses = _periods(rows)
            for row in rows:
                try:
                    stored = _stored(row, guesses)
                except ValueError as exc:
                    log.warning("backfill: a stored row is not a reading (%s); not forwarded", exc)
                    continue
                bodies.append(stored.model_dump_json(by_alias=True).encode())
            self._outbox.add(bodies, live=False, kind="stored", state={"backfill_cursor": format_ts(end)})
            cursor = end
            if bodies or cursor >= until:
                break
        if cursor >= until:
            log.info("backfill to the hub complete up to %s", format_ts(until))

    def _scan_fields(self) -> None:
        """Queue the field records not queued before, or changed since (docs/region.md). With
        `backfill` off, those there at the first scan are taken as sent, as readings are."""
        # a reader that fails raises into the loop, which logs it: the next scan is field_scan_s on
        found = field.scan(self._reader, self._cfg.site, self._outbox.field_seen())
        first = self._outbox.get("field_scanned") is None
        send = self._cfg.backfill or not first
        for kind in ("visit", "observation"):
            mine = [q for q in found if q.kind == kind]
            if mine or first:
                self._outbox.add(
                    [q.body for q in mine] if send else [], live=True, kind=kind,
                    seen={q.key: q.digest for q in mine}, state={"field_scanned": "1"},
                )  # fmt: skip


class AlertsToOutbox:
    """The site's alert events into the forwarder's outbox, as a route of the alert dispatcher
    (`Alerts.routes`): on the route's own worker thread, so with a connection of its own."""

    def __init__(self, path: Path, site: str) -> None:
        self._outbox, self._site = Outbox(path), site

    def send(self, note: Notification) -> None:
        docs = [d for d in (note.events or [note.body]) if d.get("site") == self._site]
        if not docs:
            return  # another site's event (a gateway may store several): not forwarded
        # as the site recorded it, without the site's own acknowledgement topic
        bodies = [json.dumps(AlertEvent.from_json(d).to_json()).encode() for d in docs]
        try:
            self._outbox.add(bodies, live=True, kind="alert")
        except sqlite3.Error as exc:
            raise ChannelError(f"cannot keep the alert event in {self._outbox.path}: {exc}") from exc

    def close(self) -> None:
        self._outbox.close()


def _stored(row: Any, guesses: dict[str, int]) -> StoredReading:
    """A stored row as the reading it holds. An unsigned row an earlier version stored without
    `period_s` goes with the node's estimated interval, marked (`period_known`): the hub keeps it
    without one. A signed row without it is not a whole reading (ValueError, as any such row)."""
    known = not _empty(row.get("period_s"))
    if not known and _empty(row.get("sig")) and _empty(row.get("kid")):
        row = {**row, "period_s": guesses.get(str(row.get("node")), DEFAULT_INTERVAL_S)}
    return StoredReading(received=_received(row), reading=reading_of_row(row), period_known=known)


def _periods(rows: list[Any]) -> dict[str, int]:
    """Per node, its interval inferred from the rows (oldest first) of those without `period_s`."""
    clocks: dict[str, list[tuple[int, int]]] = {}
    for row in rows:
        if _empty(row.get("period_s")):
            with contextlib.suppress(ValueError, TypeError):
                at = parse_time(row.get("time"))
                clocks.setdefault(str(row.get("node")), []).append((epoch_ms(at), int(float(row["seq"]))))
    return {node: inferred_interval_s(clock) for node, clock in clocks.items()}


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _received(row: Any) -> datetime | None:
    """The time the gateway stored a row (field `received`), as the stores give it back."""
    value = row.get("received")
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    return parse_time(str(value))


def describe(outbox: Outbox) -> dict[str, object]:
    """What `status` shows of the link: waiting readings, batches in flight, backfill progress."""
    return {
        "pending": outbox.pending(),
        "pending_backfill": outbox.pending(live=False),
        "in_flight": outbox.in_flight(),
        "backfill_cursor": outbox.get("backfill_cursor"),
        "backfill_until": outbox.get("backfill_until"),
        "keys_sent": outbox.get("keys_hash") is not None,
    }
