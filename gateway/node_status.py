"""Stores every node status message in InfluxDB measurement `node_status` (docs/protocol.md), so a
regulator can see when and why a node was not measuring: offline, a sensor failing, a backlog, an
unsynchronised clock.

The point's time is the gateway's clock when the message is handled: the status payload carries no
timestamp of its own, and a node's clock may be the very thing that is wrong. A retained status
delivered when the gateway (re)subscribes is stored too: it truthfully says what the node's last
word was at that moment. A refused message is counted and logged (once per reason per minute); a
write that fails is kept (up to `max_pending` points) and retried about once a second.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from contract.status import NodeStatus, parse_status
from contract.wire import PayloadError, TopicKind, parse_topic
from gateway.hooks import Hooks
from gateway.points import FieldValue, format_line
from gateway.stores.base import Store, StoreError
from gateway.subscriber import Message

log = logging.getLogger(__name__)

MEASUREMENT = "node_status"


def status_line(site: str, node: str, status: NodeStatus, at: datetime) -> str:
    fields: dict[str, FieldValue] = {
        "state": status.state,
        "version": status.version,
        "uptime_s": None if status.uptime_s is None else int(status.uptime_s),
        "clock_synced": None if status.clock_synced is None else bool(status.clock_synced),
    }
    if status.outbox is not None:
        fields["outbox_depth"] = int(status.outbox.depth)
        fields["outbox_dropped"] = int(status.outbox.dropped)
        # the node started a fresh outbox and kept the damaged one aside under this name
        fields["outbox_recovered_from"] = status.outbox.recovered_from
    for name, sensor in status.sensors.items():
        fields[f"sensor_{name}_ok"] = bool(sensor.ok)
    return format_line(MEASUREMENT, {"site": site, "node": node}, fields, at)


class NodeStatusStore:
    def __init__(
        self,
        store: Store,
        *,
        prefix: str = "minewatch",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        max_pending: int = 1000,
    ) -> None:
        self._store, self._prefix, self._clock, self._monotonic = store, prefix, clock, monotonic
        self._max_pending = max_pending
        self._pending: list[str] = []
        self._last_log: dict[str, float] = {}
        self.stored = 0
        self.rejected: Counter[str] = Counter()
        self.dropped = 0

    def handle(self, msg: Message) -> None:
        if not msg.payload:  # an empty retained message clears a removed node's status: nothing to store
            return
        try:
            site, node, kind = parse_topic(self._prefix, msg.topic)
            if kind is not TopicKind.STATUS:
                raise PayloadError("bad_topic", f"{msg.topic!r} is not a status topic")
            status = parse_status(msg.payload)
        except ValueError as exc:
            reason = exc.reason if isinstance(exc, PayloadError) else "bad_topic"
            self.rejected[reason] += 1
            self._warn(
                reason, "rejected status on %s: %s (%d so far)", msg.topic[:200], exc, self.rejected[reason]
            )
            return
        self._pending.append(status_line(site, node, status, self._clock()))
        if len(self._pending) > self._max_pending:
            excess = len(self._pending) - self._max_pending
            del self._pending[:excess]
            self.dropped += excess
            self._warn("dropped", "InfluxDB unreachable: dropped %d old status points", excess)
        self.tick()

    def tick(self) -> None:
        """Write what is pending; on failure keep it for the next tick."""
        if not self._pending:
            return
        try:
            self._store.write(self._pending)
        except StoreError as exc:
            if not exc.retryable:  # the database refuses these points: retrying cannot help
                self.rejected["store_refused"] += len(self._pending)
                self._pending = []
            self._warn("write", "writing node_status failed: %s", exc)
            return
        self.stored += len(self._pending)
        self._pending = []

    def _warn(self, key: str, fmt: str, *args: object) -> None:
        """One line per kind of trouble per minute: a flood of bad messages is not a flood of logs."""
        now = self._monotonic()
        if now - self._last_log.get(key, -1e9) >= 60:
            self._last_log[key] = now
            log.warning(fmt, *args)


def attach(hooks: Hooks, store: Store, prefix: str) -> NodeStatusStore:
    """Write node statuses to the gateway's store: a handler (topic kind `status`) and its retry ticker."""
    handler = NodeStatusStore(store, prefix=prefix)
    hooks.handlers.append((TopicKind.STATUS.value, handler.handle))
    hooks.tickers.append(handler.tick)
    return handler
