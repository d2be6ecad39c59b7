"""The hub's loop: take forwarded batches from the hub broker, store them, answer each.

A database that cannot be reached stops the loop from acknowledging anything: the batch stays
with the broker (a persistent session), the loop reconnects with a pause, and tries it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from contract.clock import utc_now
from contract.hub import forward_subscription
from gateway.forward.link import link_for
from gateway.hub.config import HubConfig
from gateway.hub.ingest import HubIngest
from gateway.hub.rules import HubRules
from gateway.hub.warnings import WarningDesk
from gateway.stores.postgres_hub import HubStore, HubStoreError
from gateway.subscriber import Message

log = logging.getLogger(__name__)


class HubService:
    def __init__(
        self, cfg: HubConfig, *, open_store: Callable[[], HubStore] | None = None, retry_s: float = 2.0
    ) -> None:
        self._cfg = cfg
        self._open_store = open_store or (lambda: HubStore(cfg.database.conninfo()))
        self._retry_s = retry_s
        self.stop_event = threading.Event()
        self.link = link_for(cfg.mqtt)
        self.ingest: HubIngest | None = None
        self.desk: WarningDesk | None = None
        self.rules = HubRules(cfg.rules, clock=utc_now, late_after_s=cfg.late_after_s)

    def run(self) -> None:
        store = self._connect()
        if store is None:
            return
        self.rules.preload(store)
        self.ingest = HubIngest(store, self._cfg.topic_prefix, rules=self.rules)
        self.desk = WarningDesk(store, utc_now)
        self.link.start([forward_subscription(self._cfg.topic_prefix)])
        log.info("hub taking batches on %s", forward_subscription(self._cfg.topic_prefix))
        next_desk = 0.0
        try:
            while not self.stop_event.is_set():
                msg = self.link.inbox.get(timeout=0.5)
                if msg is not None:
                    self._one(msg)
                if time.monotonic() >= next_desk:
                    self._desk()
                    next_desk = time.monotonic() + 1.0
        finally:
            self.link.stop()
            if self.ingest is not None:
                self.ingest.close()

    def _one(self, msg: Message) -> None:
        while not self.stop_event.is_set():
            assert self.ingest is not None
            try:
                answer = self.ingest.handle(msg)
            except HubStoreError as exc:
                log.error("hub database: %s; trying again in %.0f s", exc, self._retry_s)
                self.ingest.close()
                store = self._connect()
                if store is None:
                    return
                self.ingest = HubIngest(store, self._cfg.topic_prefix, self.ingest.stats, rules=self.rules)
                self.desk = WarningDesk(store, utc_now)
                continue
            if answer is not None:
                self.link.publish(answer[0], answer[1], qos=1)
            self.link.ack([msg])
            return

    def _desk(self) -> None:
        if self.desk is None or self.ingest is None:
            return
        try:
            self.ingest.tick()
            self.desk.tick()
        except HubStoreError as exc:  # the next batch reconnects; warnings wait for it
            log.error("warning desk: %s", exc)

    def _connect(self) -> HubStore | None:
        while not self.stop_event.is_set():
            try:
                store = self._open_store()
                store.prepare()
                return store
            except HubStoreError as exc:
                log.error("%s; trying again in %.0f s", exc, self._retry_s)
                self.stop_event.wait(self._retry_s)
        return None
