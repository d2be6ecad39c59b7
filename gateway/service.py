"""The gateway's main loop: subscriber inbox -> ingest (validate, batch, store, ack).

Other parts plug in without editing the loop: `on_stored` hooks see every stored batch (alerts),
`handlers` take messages of other topic kinds (`("status", f)` subscribes to `<prefix>/v1/+/+/status`;
several handlers may share a kind),
and `tickers` run about once a second on the main thread (time-based checks, status, draining).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.config import GatewayConfig
from gateway.ingest import Ingest, OnStored, Verify
from gateway.schema import CONTRACT_VERSION, TopicKind, subscription
from gateway.stores import Store, StoreError, open_store
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message, Subscriber
from gateway.trust.registry import KeyRegistry
from gateway.trust.verifier import RequireSignatures, Verifier

log = logging.getLogger(__name__)

RETRY_MAX_S = 30.0
TICK_S = 1.0

Handler = Callable[[Message], None]


@dataclass
class GatewayService:
    cfg: GatewayConfig
    on_stored: list[OnStored] = field(default_factory=list)
    handlers: list[tuple[str, Handler]] = field(default_factory=list)
    tickers: list[Callable[[], None]] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    ingest: Ingest | None = None
    subscriber: Subscriber | None = None
    store: Store | None = None
    verify: Verify | None = None  # signature policy; run() builds it from [trust] when None

    def _topics(self) -> list[str]:
        prefix = self.cfg.topic_prefix
        kinds = dict.fromkeys(kind for kind, _ in self.handlers)
        extra = [f"{prefix}/{CONTRACT_VERSION}/+/+/{kind}" for kind in kinds]
        return [subscription(prefix, TopicKind.READING), *extra]

    def _dispatch(self, msg: Message) -> bool:
        """Hand a non-reading message to its handler; True when it was one."""
        assert self.subscriber is not None
        matched = False
        for kind, handler in self.handlers:
            if msg.topic.endswith("/" + kind):
                matched = True
                try:
                    handler(msg)
                except Exception:  # a broken handler must not stop ingest
                    log.exception("handler for %s failed on %s", kind, msg.topic[:200])
        if matched:
            self.subscriber.ack([msg])
        return matched

    def _verifier(self) -> Verify:
        self.verify = Verifier(
            KeyRegistry(self.cfg.keys_dir), RequireSignatures(self.cfg.trust.require_signatures)
        )
        return self.verify

    def run(self) -> None:
        cfg = self.cfg
        verify = self.verify or self._verifier()  # a broken key registry stops us before we connect
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        store = self.store = open_store(cfg.influxdb)
        if isinstance(store, InfluxV1):
            store.ensure_database()
        sub = self.subscriber = Subscriber(
            cfg.mqtt.host,
            cfg.mqtt.port,
            cfg.mqtt.client_id,
            self._topics(),
            username=cfg.mqtt.username,
            password=cfg.mqtt.password(),
            tls=cfg.mqtt.tls,
            ca_file=str(cfg.mqtt.ca_file) if cfg.mqtt.ca_file else None,
            keepalive_s=cfg.mqtt.keepalive_s,
            session_expiry_s=cfg.mqtt.session_expiry_s,
            receive_maximum=max(2 * cfg.batch.max_size, 100),
            queue_size=max(4 * cfg.batch.max_size, 1000),
        )
        ingest = self.ingest = Ingest(
            store,
            sub.ack,
            prefix=cfg.topic_prefix,
            max_size=cfg.batch.max_size,
            max_delay_s=cfg.batch.max_delay_s,
            on_stored=self.on_stored,
            verify=verify,
        )
        sub.start()
        log.info("gateway %s: data in %s", cfg.gateway_id, cfg.data_dir)
        backoff = 0.0
        next_tick = time.monotonic()
        try:
            while not self.stop_event.is_set():
                if ingest.pending < cfg.batch.max_size:
                    wait = min(ingest.next_due_in(), max(next_tick - time.monotonic(), 0.0))
                    try:
                        msg: Message | None = sub.inbox.get(timeout=max(wait, 0.01))
                    except queue.Empty:
                        msg = None
                    while msg is not None and ingest.pending < cfg.batch.max_size:
                        if not self._dispatch(msg):
                            ingest.handle(msg)
                        try:
                            msg = sub.inbox.get_nowait()  # take what already waits
                        except queue.Empty:
                            msg = None
                    if msg is not None and not self._dispatch(msg):
                        ingest.handle(msg)  # one over max_size: cheaper than putting it back
                if ingest.is_due():
                    try:
                        ingest.flush()
                        backoff = 0.0
                    except StoreError as exc:
                        backoff = min(max(backoff * 2, 0.5), RETRY_MAX_S)
                        log.warning("InfluxDB write failed (%s); retrying in %.1f s", exc, backoff)
                        self.stop_event.wait(backoff)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_S
                    for tick in self.tickers:
                        try:
                            tick()
                        except Exception:
                            log.exception("periodic task %r failed", tick)
            try:
                ingest.flush()
            except StoreError as exc:
                log.warning("final write failed (%s); the broker will redeliver", exc)
        finally:
            sub.stop()
            store.close()
