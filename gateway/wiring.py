"""Builds the gateway's parts from its config, before anything runs, in two steps.

`open_parts(cfg)` makes what plug-ins may be handed (the store, the subscriber to publish through,
the key registry to reload); the plug-ins are built with those and add their hooks to a `Hooks`;
`assemble(parts, hooks)` then makes ingest, the spool drain and the status reporter and hands it all
to the loop (gateway/service.py). Two steps because ingest must know every `on_stored` hook when it
is made, while a plug-in (alerts, node status) must be handed the store and subscriber when it is.
Nothing connects here: the subscriber connects, and the drain starts, when the loop runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from contract.wire import gateway_status_topic
from gateway import status
from gateway.config import GatewayConfig
from gateway.deadletter import DeadLetters
from gateway.dedup import RecentSeqs
from gateway.hooks import Hooks
from gateway.ingest import Ingest
from gateway.service import DEADLETTER_FILE, RECENT_FILE, SPOOL_FILE, GatewayService
from gateway.spool import Spool, SpoolDrain
from gateway.stores import Store, StoreError, open_store
from gateway.stores.base import API_FILE
from gateway.subscriber import Subscriber
from gateway.trust.checker import CheckIn, Checks, checks_for
from gateway.trust.registry import KeyRegistry
from gateway.trust.verifier import RequireSignatures, Verifier

log = logging.getLogger(__name__)

SAVE_RECENT_S = 5.0


@dataclass(frozen=True, slots=True)
class Parts:
    """What plug-ins may be handed. The loop closes them when it ends (`close`), so a plug-in that
    needs one past the loop (the alerts' own stores) opens its own."""

    cfg: GatewayConfig
    registry: KeyRegistry  # SIGHUP reloads it
    verify: Verifier
    checks: Checks  # where signatures are checked: inline, or in a worker process
    dead: DeadLetters
    spool: Spool
    recent: RecentSeqs
    store: Store
    drain_store: Store  # the drain writes from its own thread
    subscriber: Subscriber

    def close(self) -> None:
        self.checks.close()
        self.store.close()
        self.drain_store.close()
        self.spool.close()
        self.dead.close()


def open_store_for(cfg: GatewayConfig) -> Store:
    """Open the store (with `api = "auto"` and InfluxDB down, as last time: see open_store)."""
    store = open_store(cfg.influxdb, remember=cfg.data_dir / API_FILE)
    try:
        store.prepare()
    except StoreError as exc:
        log.warning("could not create the database yet (%s); will retry on write", exc)
    return store


def open_parts(cfg: GatewayConfig) -> Parts:
    registry = KeyRegistry(cfg.keys_dir)  # a broken key registry stops us before we connect
    verify = Verifier(registry, RequireSignatures(cfg.trust.require_signatures))
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    dead = DeadLetters(
        cfg.data_dir / DEADLETTER_FILE,
        max_rows=cfg.deadletter.max_rows,
        max_bytes=cfg.deadletter.max_bytes,
        max_payload_bytes=cfg.deadletter.max_payload_bytes,
    )
    spool = Spool(
        cfg.data_dir / SPOOL_FILE,
        max_bytes=cfg.spool.max_bytes,
        warn_fraction=cfg.spool.warn_fraction,
        min_free_bytes=cfg.spool.min_free_bytes,
    )
    recent = RecentSeqs(cfg.validation.dedup_window)
    recent.load(cfg.data_dir / RECENT_FILE)
    store = open_store_for(cfg)
    drain_store = open_store_for(cfg)
    subscriber = Subscriber(
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
        # a batch and a half waiting, not four batches: each held PMS5003 reading is about 0.6 KB
        # of the peak (0.7 KB signed). With receive_maximum at two batches, what is not acked is
        # in the batch, this inbox or the socket's buffer; after each ack the broker sends a
        # batch at once, and what does not fit waits in the socket (docs/operations.md)
        queue_size=max(cfg.batch.max_size + cfg.batch.max_size // 2, 1000),
        will=(gateway_status_topic(cfg.topic_prefix, cfg.gateway_id), status.down(cfg.gateway_id)),
    )
    checks = checks_for(CheckIn(cfg.trust.check_signatures_in))
    return Parts(cfg, registry, verify, checks, dead, spool, recent, store, drain_store, subscriber)


def assemble(parts: Parts, hooks: Hooks) -> GatewayService:
    """The loop over `parts`, running `hooks` in their order, then the gateway's own tickers."""
    cfg, sub, spool, dead, recent = parts.cfg, parts.subscriber, parts.spool, parts.dead, parts.recent
    ingest = Ingest(
        parts.store,
        sub.ack,
        prefix=cfg.topic_prefix,
        max_size=cfg.batch.max_size,
        max_delay_s=cfg.batch.max_delay_s,
        on_stored=list(hooks.on_stored),
        dead=dead,
        spool=spool,
        recent=recent,
        clock_tolerance_s=cfg.validation.clock_tolerance_s,
        verify=parts.verify.prepare,
        checks=parts.checks,
    )
    stats = ingest.stats

    def drain_result(ok: bool) -> None:
        stats.influx_reachable = ok
        if ok:
            stats.last_write = time.time()

    drain = SpoolDrain(
        spool,
        parts.drain_store,
        dead,
        batch_size=cfg.batch.max_size,
        retry_max_s=cfg.spool.retry_max_s,
        on_result=drain_result,
    )
    status_topic = gateway_status_topic(cfg.topic_prefix, cfg.gateway_id)
    reporter = status.StatusReporter(
        cfg.gateway_id,
        stats,
        lambda payload: sub.publish(status_topic, payload, retain=True),
        cfg.data_dir,
        spool=spool,
        dead=dead,
        interval_s=cfg.status_interval_s,
    )
    next_save: float | None = None

    def save_recent() -> None:
        nonlocal next_save
        if next_save is None:  # the first tick: five seconds after the loop started, not after this
            next_save = time.monotonic() + SAVE_RECENT_S
        elif time.monotonic() >= next_save:
            next_save = time.monotonic() + SAVE_RECENT_S
            recent.save(cfg.data_dir / RECENT_FILE)

    return GatewayService(
        cfg,
        sub,
        ingest,
        spool,
        drain,
        recent,
        handlers=list(hooks.handlers),
        tickers=[*hooks.tickers, reporter.tick, save_recent],
        close_parts=parts.close,
    )


def build(cfg: GatewayConfig, hooks: Hooks | None = None) -> GatewayService:
    """The loop with nothing plugged in but `hooks`: what a test or a bare gateway runs."""
    return assemble(open_parts(cfg), hooks or Hooks())
