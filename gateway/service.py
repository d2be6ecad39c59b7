"""The gateway's main loop: subscriber inbox -> ingest (validate, batch, store, ack).

It runs what gateway/wiring.py built and plug-ins hooked in (gateway/hooks.py): the loop builds
nothing and opens nothing, so everything it drives can be made, and handed to plug-ins, before it
starts; it only closes, on the way out, what it was told to.
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
from gateway.dedup import RecentSeqs
from gateway.hooks import Handler, Ticker
from gateway.ingest import Ingest
from gateway.shutdown import shut_down
from gateway.spool import Spool, SpoolDrain
from gateway.stores import StoreError
from gateway.subscriber import Message, Subscriber

log = logging.getLogger(__name__)

RETRY_MAX_S = 30.0
TICK_S = 1.0
DEADLETTER_FILE = "deadletter.sqlite"
SPOOL_FILE = "spool.sqlite"
RECENT_FILE = "recent-seqs.json"


@dataclass
class GatewayService:
    cfg: GatewayConfig
    subscriber: Subscriber
    ingest: Ingest
    spool: Spool
    drain: SpoolDrain
    recent: RecentSeqs  # saved once more on the way out
    handlers: list[tuple[str, Handler]]
    tickers: list[Ticker]
    close_parts: Callable[[], None]  # after the subscriber stopped: the stores, the spool, the dead letters
    stop_event: threading.Event = field(default_factory=threading.Event)

    def _topics(self) -> list[str]:
        prefix = self.cfg.topic_prefix
        kinds = dict.fromkeys(kind for kind, _ in self.handlers)
        extra = [f"{prefix}/{CONTRACT_VERSION}/+/+/{kind}" for kind in kinds]
        return [subscription(prefix, TopicKind.READING), *extra]

    def _dispatch(self, msg: Message) -> bool:
        """Hand a non-reading message to its handler; True when it was one."""
        if msg.topic.endswith("/reading"):  # the common case first: one check per message
            return False
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

    def run(self) -> None:
        cfg, ingest, sub, tickers = self.cfg, self.ingest, self.subscriber, self.tickers
        status_topic = gateway_status_topic(cfg.topic_prefix, cfg.gateway_id)
        if self.spool.depth:
            log.warning("%d readings wait in the spool from before; draining them first", self.spool.depth)
        backoff = 0.0
        next_tick = time.monotonic()
        nap_s = cfg.batch.max_delay_s / 2
        inbox = sub.inbox
        cause: BaseException | None = None
        try:
            # inside the try: a start that fails (no file descriptor left for paho's socket pair)
            # still stops the drain and closes the stores, and is what the caller sees
            self.drain.start()
            sub.start(self._topics())
            log.info("gateway %s: data in %s", cfg.gateway_id, cfg.data_dir)
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
        except BaseException as exc:
            cause = exc
            raise
        finally:

            def say_down() -> None:
                if sub.connected.is_set():
                    sub.publish(status_topic, status.down(cfg.gateway_id), retain=True, wait_s=2.0)

            shut_down(
                [
                    ("stopping the spool drain", self.drain.stop),
                    (f"saving {RECENT_FILE}", lambda: self.recent.save(cfg.data_dir / RECENT_FILE)),
                    ("publishing the gateway's offline status", say_down),
                    ("disconnecting from the broker", sub.stop),
                    ("closing the stores", self.close_parts),
                ],
                cause,
            )
