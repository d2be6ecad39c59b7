"""The gateway's main loop: subscriber inbox -> ingest (validate, batch, store, ack).

Other parts plug in without editing the loop: `on_stored` hooks see every stored batch (alerts),
`handlers` take messages of other topic kinds (`("status", f)` subscribes to `<prefix>/v1/+/+/status`;
several handlers may share a kind),
and `tickers` run about once a second on the main thread (time-based checks, status, draining).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from contract.wire import CONTRACT_VERSION, GATEWAY_LEVEL, TopicKind, gateway_status_topic, subscription
from gateway import status
from gateway.config import GatewayConfig
from gateway.deadletter import DeadLetters
from gateway.dedup import RecentSeqs
from gateway.ingest import Ingest, OnStored, Verify
from gateway.spool import Spool, SpoolDrain
from gateway.stores import Store, StoreError, open_store
from gateway.stores.base import API_FILE
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message, Subscriber
from gateway.trust.registry import KeyRegistry
from gateway.trust.verifier import RequireSignatures, Verifier

log = logging.getLogger(__name__)

RETRY_MAX_S = 30.0
TICK_S = 1.0
SAVE_RECENT_S = 5.0
DEADLETTER_FILE = "deadletter.sqlite"
SPOOL_FILE = "spool.sqlite"
RECENT_FILE = "recent-seqs.json"

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
    spool: Spool | None = None
    dead: DeadLetters | None = None
    reporter: status.StatusReporter | None = None
    verify: Verify | None = None  # signature policy; run() builds it from [trust] when None

    def _topics(self) -> list[str]:
        prefix = self.cfg.topic_prefix
        kinds = dict.fromkeys(kind for kind, _ in self.handlers)
        extra = [f"{prefix}/{CONTRACT_VERSION}/+/+/{kind}" for kind in kinds]
        return [subscription(prefix, TopicKind.READING), *extra]

    def _dispatch(self, msg: Message) -> bool:
        """Hand a non-reading message to its handler; True when it was one."""
        if msg.topic.endswith("/reading"):  # the common case first: one check per message
            return False
        assert self.subscriber is not None
        if f"/{GATEWAY_LEVEL}/" in msg.topic and msg.topic.endswith("/status"):  # a gateway's, not a node's
            self.subscriber.ack([msg])
            return True
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

    def _open_store(self) -> Store:
        """Open the store (with `api = "auto"` and InfluxDB down, as last time: see open_store)."""
        store = open_store(self.cfg.influxdb, remember=self.cfg.data_dir / API_FILE)
        if isinstance(store, InfluxV1):
            try:
                store.ensure_database()
            except StoreError as exc:
                log.warning("could not create the database yet (%s); will retry on write", exc)
        return store

    def _verifier(self) -> Verify:
        self.verify = Verifier(
            KeyRegistry(self.cfg.keys_dir), RequireSignatures(self.cfg.trust.require_signatures)
        )
        return self.verify

    def run(self) -> None:
        cfg = self.cfg
        verify = self.verify or self._verifier()  # a broken key registry stops us before we connect
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        dead = self.dead = DeadLetters(
            cfg.data_dir / DEADLETTER_FILE,
            max_rows=cfg.deadletter.max_rows,
            max_bytes=cfg.deadletter.max_bytes,
            max_payload_bytes=cfg.deadletter.max_payload_bytes,
        )
        spool = self.spool = Spool(
            cfg.data_dir / SPOOL_FILE,
            max_bytes=cfg.spool.max_bytes,
            warn_fraction=cfg.spool.warn_fraction,
            min_free_bytes=cfg.spool.min_free_bytes,
        )
        recent = RecentSeqs(cfg.validation.dedup_window)
        recent.load(cfg.data_dir / RECENT_FILE)
        store = self.store = self._open_store()
        drain_store = self._open_store()  # the drain writes from its own thread
        status_topic = gateway_status_topic(cfg.topic_prefix, cfg.gateway_id)
        sub = self.subscriber = Subscriber(
            cfg.mqtt.host,
            cfg.mqtt.port,
            cfg.mqtt.client_id,
            username=cfg.mqtt.username,
            password=cfg.mqtt.password(),
            tls=cfg.mqtt.tls,
            ca_file=str(cfg.mqtt.ca_file) if cfg.mqtt.ca_file else None,
            keepalive_s=cfg.mqtt.keepalive_s,
            session_expiry_s=cfg.mqtt.session_expiry_s,
            receive_maximum=max(2 * cfg.batch.max_size, 100),
            queue_size=max(4 * cfg.batch.max_size, 1000),
            will=(status_topic, status.down(cfg.gateway_id)),
        )
        ingest = self.ingest = Ingest(
            store,
            sub.ack,
            prefix=cfg.topic_prefix,
            max_size=cfg.batch.max_size,
            max_delay_s=cfg.batch.max_delay_s,
            on_stored=self.on_stored,
            dead=dead,
            spool=spool,
            recent=recent,
            clock_tolerance_s=cfg.validation.clock_tolerance_s,
            verify=verify,
        )

        def drain_result(ok: bool) -> None:
            ingest.stats.influx_reachable = ok
            if ok:
                ingest.stats.last_write = time.time()

        drain = SpoolDrain(
            spool,
            drain_store,
            dead,
            batch_size=cfg.batch.max_size,
            retry_max_s=cfg.spool.retry_max_s,
            on_result=drain_result,
        )
        reporter = self.reporter = status.StatusReporter(
            cfg.gateway_id,
            ingest.stats,
            lambda payload: sub.publish(status_topic, payload, retain=True),
            cfg.data_dir,
            spool=spool,
            dead=dead,
            interval_s=cfg.status_interval_s,
        )
        next_save = time.monotonic() + SAVE_RECENT_S

        def save_recent() -> None:
            nonlocal next_save
            if time.monotonic() >= next_save:
                next_save = time.monotonic() + SAVE_RECENT_S
                recent.save(cfg.data_dir / RECENT_FILE)

        tickers = [*self.tickers, reporter.tick, save_recent]
        if spool.depth:
            log.warning("%d readings wait in the spool from before; draining them first", spool.depth)
        drain.start()
        sub.start(self._topics())
        log.info("gateway %s: data in %s", cfg.gateway_id, cfg.data_dir)
        backoff = 0.0
        next_tick = time.monotonic()
        nap_s = cfg.batch.max_delay_s / 2
        inbox = sub.inbox
        try:
            while not self.stop_event.is_set():
                if ingest.pending < cfg.batch.max_size:
                    # Take what waits in bursts: sleep up to half the batch delay (never past the
                    # batch's due time or a tick) unless a batch's worth waits. Waking for each
                    # message as it came cost more than validating it (profiled: this thread and
                    # paho's handing the GIL to each other per message). The flush is no later
                    # for it: a batch is due `max_delay_s` after its oldest message was received.
                    wait = min(nap_s, ingest.next_due_in(), max(next_tick - time.monotonic(), 0.0))
                    if wait > 0 and len(inbox) < cfg.batch.max_size - ingest.pending:
                        self.stop_event.wait(wait)
                    msg = inbox.get_nowait()
                    while msg is not None and ingest.pending < cfg.batch.max_size:
                        if not self._dispatch(msg):
                            ingest.handle(msg)
                        msg = inbox.get_nowait()  # take what already waits
                    if msg is not None and not self._dispatch(msg):
                        ingest.handle(msg)  # one over max_size: cheaper than putting it back
                if ingest.is_due():
                    try:
                        ingest.flush()
                        backoff = 0.0
                    except StoreError as exc:
                        backoff = min(max(backoff * 2, 0.5), RETRY_MAX_S)
                        log.warning("could not make a batch durable (%s); retrying in %.1f s", exc, backoff)
                        self.stop_event.wait(backoff)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_S
                    for tick in tickers:
                        try:
                            tick()
                        except Exception:
                            log.exception("periodic task %r failed", tick)
            try:
                ingest.flush()
            except StoreError as exc:
                log.warning("final write failed (%s); the broker will redeliver", exc)
        finally:
            drain.stop()
            recent.save(cfg.data_dir / RECENT_FILE)
            if sub.connected.is_set():
                sub.publish(status_topic, status.down(cfg.gateway_id), retain=True, wait_s=2.0)
            sub.stop()
            store.close()
            drain_store.close()
            spool.close()
            dead.close()
