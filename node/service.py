"""The node's main loop: sample -> average -> commit to the outbox -> forward to the broker.

Everything that depends on time takes the clock and the wait function as parameters, so tests can
drive the loop with a simulated clock. Sensors are opened once here and closed on the way out.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from calibration.node import NodeCalibration
from gateway.schema import (
    SCHEMA_VERSION,
    MetricValue,
    ReadingPayload,
    TopicKind,
    format_ts,
    topic,
)
from gateway.trust.signing import Signer
from hardware.base import Clock, SensorDriver, open_driver
from node import __version__
from node.config import NodeConfig
from node.forwarder import Forwarder
from node.outbox import Outbox
from node.publisher import Publisher, Will
from node.sampler import Reading, Sampler, SensorSpec

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_payload(cfg: NodeConfig, seq: int, reading: Reading) -> ReadingPayload:
    return ReadingPayload.model_validate(
        {
            "schema": SCHEMA_VERSION,
            "site": cfg.site,
            "node": cfg.node,
            "seq": seq,
            "ts": format_ts(reading.ts),
            "period_s": reading.period_s,
            "metrics": {
                metric.value: MetricValue(value=m.value, raw=m.raw, n=m.n, cal=m.cal)
                for metric, m in reading.metrics.items()
            },
            "flags": sorted(f.value for f in reading.flags),
        }
    )


def open_sensors(cfg: NodeConfig, clock: Clock) -> list[SensorSpec]:
    specs: list[SensorSpec] = []
    try:
        for opts in cfg.sensors:
            driver: SensorDriver = open_driver(opts, clock)
            specs.append(SensorSpec(opts.name or opts.type, driver, opts.sample_interval_s))
    except BaseException:
        for spec in specs:
            spec.driver.close()
        raise
    return specs


@dataclass
class NodeService:
    cfg: NodeConfig
    clock: Clock = utc_now
    on_reading: Callable[[int, Reading], None] | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    # Signs each payload as it is built (gateway.trust.signing.Signer.sign); from [identity] when None.
    sign: Callable[[ReadingPayload], ReadingPayload] | None = None

    def run(self) -> None:
        cfg = self.cfg
        started = self.clock()
        status_topic = topic(cfg.topic_prefix, cfg.site, cfg.node, TopicKind.STATUS)
        reading_topic = topic(cfg.topic_prefix, cfg.site, cfg.node, TopicKind.READING)
        calibrate = NodeCalibration.start(cfg.sensors, self.clock)  # refuses bad files before ports open
        if self.sign is None and cfg.identity.key_file is not None:
            self.sign = Signer.from_file(cfg.identity.key_file).sign
        outbox = Outbox(cfg.buffer.path)
        sensors = open_sensors(cfg, self.clock)
        sampler = Sampler(sensors, cfg.interval_s, self.clock, calibrate=calibrate)
        publisher = Publisher(
            cfg.mqtt.host,
            cfg.mqtt.port,
            cfg.client_id,
            username=cfg.mqtt.username,
            password=cfg.mqtt.password(),
            tls=cfg.mqtt.tls,
            ca_file=str(cfg.mqtt.ca_file) if cfg.mqtt.ca_file else None,
            client_cert=cfg.mqtt.client_cert,
            keepalive_s=cfg.mqtt.keepalive_s,
            max_inflight=cfg.mqtt.max_inflight,
            will=Will(status_topic, json.dumps({"state": "offline"}).encode()),
        )
        forwarder = Forwarder(outbox, publisher, reading_topic, cfg.mqtt.max_inflight)
        position = {"lat": cfg.lat, "lon": cfg.lon} if cfg.lat is not None and cfg.lon is not None else {}
        online = json.dumps(
            {"state": "online", "version": __version__, "started": format_ts(started), **position}
        ).encode()
        was_connected = False
        log.info(
            "node %s/%s: %d sensor(s), %d s interval, outbox %s (%d waiting)",
            cfg.site,
            cfg.node,
            len(sensors),
            cfg.interval_s,
            cfg.buffer.path,
            outbox.depth(),
        )
        publisher.start()
        try:
            while not self.stop_event.is_set():
                now = self.clock()
                self._commit(outbox, sampler.tick(now))
                if publisher.is_connected and not was_connected:
                    publisher.publish(status_topic, online, retain=True)
                was_connected = publisher.is_connected
                forwarder.pump()
                wait_s = (sampler.next_wakeup() - self.clock()).total_seconds()
                # wake at least every 0.2 s to move acknowledgements and backlog along
                self.stop_event.wait(min(max(wait_s, 0.0), 0.2))
            self._commit(outbox, sampler.flush(self.clock()))
            forwarder.pump()
            if publisher.is_connected:
                publisher.publish(status_topic, json.dumps({"state": "offline"}).encode(), retain=True)
                self._drain(forwarder, timeout_s=2.0)
        finally:
            publisher.stop()
            for spec in sensors:
                spec.driver.close()
            outbox.close()

    def _commit(self, outbox: Outbox, readings: list[Reading]) -> None:
        for reading in readings:

            def build(seq: int, reading: Reading = reading) -> bytes:
                payload = to_payload(self.cfg, seq, reading)
                return (self.sign(payload) if self.sign else payload).to_wire()

            seq = outbox.append(format_ts(reading.ts), build)
            if self.on_reading:
                self.on_reading(seq, reading)

    def _drain(self, forwarder: Forwarder, timeout_s: float) -> None:
        """On clean shutdown, give in-flight readings a moment to be acknowledged."""
        deadline = threading.Event()
        for _ in range(int(timeout_s / 0.05)):
            forwarder.pump()
            if forwarder.inflight == 0:
                return
            deadline.wait(0.05)
