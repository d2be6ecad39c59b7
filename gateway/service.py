"""The gateway's main loop: subscriber inbox -> ingest (validate, batch, store, ack)."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field

from gateway.config import GatewayConfig
from gateway.ingest import Ingest, OnStored
from gateway.schema import TopicKind, subscription
from gateway.stores import StoreError, open_store
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Subscriber

log = logging.getLogger(__name__)

RETRY_MAX_S = 30.0


@dataclass
class GatewayService:
    cfg: GatewayConfig
    on_stored: list[OnStored] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    ingest: Ingest | None = None

    def run(self) -> None:
        cfg = self.cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(cfg.influxdb)
        if isinstance(store, InfluxV1):
            store.ensure_database()
        sub = Subscriber(
            cfg.mqtt.host,
            cfg.mqtt.port,
            cfg.mqtt.client_id,
            [subscription(cfg.topic_prefix, TopicKind.READING)],
            username=cfg.mqtt.username,
            password=cfg.mqtt.password(),
            tls=cfg.mqtt.tls,
            ca_file=str(cfg.mqtt.ca_file) if cfg.mqtt.ca_file else None,
            keepalive_s=cfg.mqtt.keepalive_s,
            session_expiry_s=cfg.mqtt.session_expiry_s,
            receive_maximum=max(2 * cfg.batch.max_size, 100),
            queue_size=max(4 * cfg.batch.max_size, 1000),
        )
        ingest = Ingest(
            store,
            sub.ack,
            prefix=cfg.topic_prefix,
            max_size=cfg.batch.max_size,
            max_delay_s=cfg.batch.max_delay_s,
            on_stored=self.on_stored,
        )
        self.ingest = ingest
        sub.start()
        log.info("gateway %s: data in %s", cfg.gateway_id, cfg.data_dir)
        backoff = 0.0
        try:
            while not self.stop_event.is_set():
                if ingest.pending < cfg.batch.max_size:
                    try:
                        msg = sub.inbox.get(timeout=max(ingest.next_due_in(), 0.01))
                    except queue.Empty:
                        msg = None
                    if msg is not None:
                        ingest.handle(msg)
                        while ingest.pending < cfg.batch.max_size:  # take what already waits
                            try:
                                ingest.handle(sub.inbox.get_nowait())
                            except queue.Empty:
                                break
                if ingest.is_due():
                    try:
                        ingest.flush()
                        backoff = 0.0
                    except StoreError as exc:
                        backoff = min(max(backoff * 2, 0.5), RETRY_MAX_S)
                        log.warning("InfluxDB write failed (%s); retrying in %.1f s", exc, backoff)
                        self.stop_event.wait(backoff)
            try:
                ingest.flush()
            except StoreError as exc:
                log.warning("final write failed (%s); the broker will redeliver", exc)
        finally:
            sub.stop()
            store.close()
