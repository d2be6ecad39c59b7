"""Forwarding stored readings to community maps without ever holding up ingest.

The `on_stored` hook only builds the requests and puts them on a bounded queue (`put_nowait`:
when the queue is full the request is dropped and counted, never waited for); one worker thread
sends them with urllib3, retrying connection failures, timeouts, 429 and 5xx with exponential
backoff, and giving up on other answers (a 4xx means the request itself is wrong: retrying would
only repeat it). Which nodes go where, and who agreed, is `[[community_maps]]`; a node not listed
is never sent anywhere.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import urllib3

from contract.clock import Clock, utc_now
from contract.wire import ReadingPayload
from gateway.community import sensor_community
from gateway.community.config import CommunityMap
from gateway.community.sensor_community import Push
from gateway.hooks import Hooks

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
ATTEMPTS = 5
RETRY_MAX_S = 300.0
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})

# the services with a push API, by `service` (OpenAQ has none: it is an export, gateway/exports/openaq.py)
BUILDERS: dict[str, Callable[[ReadingPayload, CommunityMap, datetime], list[Push]]] = {
    "sensor.community": sensor_community.pushes,
}


@dataclass
class ForwardStats:
    sent: int = 0
    failed: int = 0  # given up after retries, or refused by the service
    dropped: int = 0  # the queue was full


class Forwarder:
    def __init__(
        self,
        targets: list[CommunityMap],
        clock: Clock = utc_now,
        queue_size: int = QUEUE_SIZE,
        retry_base_s: float = 2.0,
        attempts: int = ATTEMPTS,
    ) -> None:
        self._targets = {(t.site, t.node): t for t in targets if t.service in BUILDERS}
        self._clock = clock
        self._queue: queue.Queue[Push] = queue.Queue(maxsize=queue_size)
        self._retry_base_s = retry_base_s
        self._attempts = attempts
        self._stop = threading.Event()
        self._http = urllib3.PoolManager(retries=False)
        self._thread: threading.Thread | None = None
        self._full = False  # logged once per episode of a full queue
        self.stats = ForwardStats()

    def install(self, hooks: Hooks) -> None:
        if self._targets:
            hooks.on_stored.append(self.on_stored)

    def on_stored(self, readings: list[ReadingPayload]) -> None:
        """On the loop's thread: build and enqueue, never block."""
        now = self._clock()
        for reading in readings:
            target = self._targets.get((reading.site, reading.node))
            if target is None:
                continue
            for push in BUILDERS[target.service](reading, target, now):
                try:
                    self._queue.put_nowait(push)
                    self._full = False
                except queue.Full:
                    self.stats.dropped += 1
                    if not self._full:
                        self._full = True
                        log.warning(
                            "community maps: queue full (%d); dropping %s", self._queue.maxsize, push.what
                        )

    def start(self) -> None:
        if self._targets and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="community-maps", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._http.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                push = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self._deliver(push)

    def _deliver(self, push: Push) -> None:
        for attempt in range(self._attempts):
            outcome = self._send(push)
            if outcome is None:
                self.stats.sent += 1
                return
            retryable, why = outcome
            if not retryable:
                log.warning("community maps: %s refused (%s); not retried", push.what, why)
                break
            delay = min(self._retry_base_s * 2**attempt, RETRY_MAX_S)
            log.info("community maps: %s failed (%s); retry in %.1f s", push.what, why, delay)
            if attempt + 1 < self._attempts and self._stop.wait(delay):
                return  # stopping: what is queued is not sent (readings stay in InfluxDB)
        self.stats.failed += 1

    def _send(self, push: Push) -> tuple[bool, str] | None:
        """None when delivered; else (retryable, why)."""
        try:
            resp = self._http.request(
                "POST",
                push.url,
                body=push.body,
                headers=push.headers,
                timeout=urllib3.Timeout(total=push.timeout_s),
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:  # connection refused, timeouts, TLS: all retryable
            return True, type(exc).__name__
        if 200 <= resp.status < 300:
            return None
        return resp.status in RETRYABLE_STATUS, f"HTTP {resp.status}"


def attach(hooks: Hooks, targets: list[CommunityMap], clock: Clock = utc_now) -> Forwarder:
    """The plug-in for `run`: hooks on stored readings; the caller starts and stops it."""
    forwarder = Forwarder(targets, clock)
    forwarder.install(hooks)
    return forwarder
