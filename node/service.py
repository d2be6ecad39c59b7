"""The node's main loop: sample -> average -> commit to the outbox -> forward to the broker, with the
node's status on connect and every `status_interval_s`, and systemd's watchdog pinged from the loop.

Sampling comes first in every turn of the loop and forwarding does a bounded amount of work, so a
backlog never delays a sensor read. Everything that depends on time takes the clock, the monotonic
clock and the clock-sync probe as parameters, so tests can drive the loop with simulated ones.
Sensors are opened once here and closed on the way out.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from contract import __version__
from contract.clock import Clock, utc_now
from contract.flags import Flag
from contract.sdnotify import Notifier
from contract.signing import Signer
from contract.status import OFFLINE, STOPPED, NodeStatus, OutboxStatus, SensorStatus, ts_text
from contract.wire import SCHEMA_VERSION, MetricValue, ReadingPayload, TopicKind, format_ts, topic
from hardware.base import SensorDriver, SensorOptions, open_driver
from node.backoff import Backoff
from node.calibration import NodeCalibration
from node.clocksync import ClockProbe, ClockWatch, system_probe
from node.config import NodeConfig
from node.forwarder import Forwarder
from node.outbox import Outbox, OutboxFull
from node.publisher import Publisher, Will
from node.sampler import Reading, Sampler, SensorSpec

log = logging.getLogger(__name__)


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


def sensor_spec(opts: SensorOptions, driver: SensorDriver) -> SensorSpec:
    """What the sampler needs of one `[[sensors]]` table and its opened driver."""
    keep = None if opts.metrics is None else frozenset(opts.metrics)
    return SensorSpec(opts.name or opts.type, driver, opts.sample_interval_s, keep)


def open_sensors(cfg: NodeConfig, clock: Clock) -> list[SensorSpec]:
    specs: list[SensorSpec] = []
    try:
        for opts in cfg.sensors:
            specs.append(sensor_spec(opts, open_driver(opts, clock)))
    except BaseException:
        for spec in specs:
            spec.driver.close()
        raise
    return specs


def always_synced() -> bool:
    """The probe for `clock_sync = "rtc"`: a battery-backed clock keeps the time across power cuts."""
    return True


@dataclass
class NodeService:
    cfg: NodeConfig
    clock: Clock = utc_now
    on_reading: Callable[[int, Reading], None] | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    # Signs each payload as it is built, into the bytes to send (contract.signing.Signer.sign_wire:
    # the canonical form with `sig` appended, which a gateway checks as it came); from [identity]
    # when None.
    sign: Callable[[ReadingPayload], bytes] | None = None
    clock_probe: ClockProbe | None = None  # None: chosen by cfg.clock_sync
    notifier: Notifier = field(default_factory=Notifier)
    monotonic: Callable[[], float] = time.monotonic
    _last_ts: str | None = field(default=None, init=False, repr=False)  # latest ts ever committed
    _ts_backwards: bool = field(default=False, init=False, repr=False)  # in a backwards episode
    _disk_full: bool = field(default=False, init=False, repr=False)  # in a full-disk episode

    def run(self) -> None:
        cfg = self.cfg
        started, started_mono = self.clock(), self.monotonic()
        status_topic = topic(cfg.topic_prefix, cfg.site, cfg.node, TopicKind.STATUS)
        reading_topic = topic(cfg.topic_prefix, cfg.site, cfg.node, TopicKind.READING)
        calibrate = NodeCalibration.start(cfg.sensors, self.clock)  # refuses bad files before ports open
        if self.sign is None and cfg.identity.key_file is not None:
            self.sign = Signer.from_file(cfg.identity.key_file).sign_wire
        outbox = Outbox(
            cfg.buffer.path,
            max_readings=cfg.buffer.max_readings,
            min_free_bytes=cfg.buffer.min_free_mb * 1_000_000,
        )
        self._last_ts = outbox.last_ts()
        probe = self.clock_probe or (always_synced if cfg.clock_sync == "rtc" else system_probe)
        clockwatch = ClockWatch(probe, monotonic=self.monotonic)
        try:
            sensors = open_sensors(cfg, self.clock)
        except BaseException:
            outbox.close()
            raise
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
            will=Will(status_topic, OFFLINE.to_wire()),
            session_expiry_s=cfg.mqtt.session_expiry_s,
            backoff=Backoff(1.0, cfg.mqtt.reconnect_max_s),
        )
        forwarder = Forwarder(outbox, publisher, reading_topic, cfg.mqtt.max_inflight)

        def status() -> bytes:
            return NodeStatus(
                state="online",
                version=__version__,
                started=format_ts(started),
                uptime_s=int(self.monotonic() - started_mono),
                outbox=OutboxStatus(
                    depth=outbox.depth(),
                    oldest_ts=outbox.oldest_ts(),
                    dropped=outbox.dropped(),
                    recovered_from=outbox.recovered_from,
                ),
                sensors={
                    name: SensorStatus(
                        ok=h.ok, last_error=h.last_error and h.last_error[:200], last_ok=ts_text(h.last_ok)
                    )
                    for name, h in sampler.health.items()
                },
                clock_synced=clockwatch.is_synced(),
                lat=cfg.lat,
                lon=cfg.lon,
            ).to_wire()

        if outbox.recovered_from:
            log.warning(
                "a damaged outbox is kept as %s beside %s: recover what you need from it, then remove it",
                outbox.recovered_from,
                cfg.buffer.path,
            )
        log.info(
            "node %s/%s: %d sensor(s), %d s interval, outbox %s (%d waiting, %d dropped so far)",
            cfg.site,
            cfg.node,
            len(sensors),
            cfg.interval_s,
            cfg.buffer.path,
            outbox.depth(),
            outbox.dropped(),
        )
        publisher.start()
        self.notifier.ready()
        seen_connections = 0
        next_status = 0.0
        try:
            while not self.stop_event.is_set():
                publisher.wake.clear()
                self._commit(outbox, sampler.tick(self.clock()), clockwatch)
                sent = forwarder.pump()
                if forwarder.connections != seen_connections or (
                    publisher.is_connected and self.monotonic() >= next_status
                ):
                    seen_connections = forwarder.connections
                    try:
                        payload = status()
                    except ValueError as exc:  # a status must never stop the readings
                        log.error("cannot build the status message: %s", exc)
                        next_status = self.monotonic() + cfg.status_interval_s
                    else:
                        if publisher.publish(status_topic, payload, retain=True) is not None:
                            next_status = self.monotonic() + cfg.status_interval_s
                self.notifier.tick()
                if sent and forwarder.has_backlog and forwarder.inflight < cfg.mqtt.max_inflight:
                    continue  # a pump's worth went out and the window has room: keep the backlog moving
                wait_s = (sampler.next_wakeup() - self.clock()).total_seconds()
                # Acknowledgements wake us early; 0.2 s bounds how long a stop request waits.
                publisher.wake.wait(min(max(wait_s, 0.0), 0.2))
            self.notifier.stopping()
            self._commit(outbox, sampler.flush(self.clock()), clockwatch)
            forwarder.pump()
            if publisher.is_connected:
                # A planned stop, told as one: the last will (`offline`) stays for a node that vanishes.
                publisher.publish(status_topic, STOPPED.to_wire(), retain=True)
                self._drain(forwarder, timeout_s=2.0)
        finally:
            publisher.stop()
            for spec in sensors:
                spec.driver.close()
            forwarder.flush_acked()
            outbox.close()

    def _commit(self, outbox: Outbox, readings: list[Reading], clockwatch: ClockWatch) -> None:
        for reading in readings:
            ts = format_ts(reading.ts)
            flags = set(reading.flags)
            if not clockwatch.is_synced():
                flags.add(Flag.CLOCK_UNSYNCED)
            # Not after the latest ts ever sent: the clock went back (an RTC-less Pi set by NTP), and
            # until it catches up every reading would land among, or on top of, older ones. The
            # fixed-width RFC 3339 form sorts as time does.
            backwards = self._last_ts is not None and ts <= self._last_ts
            if backwards:
                flags.add(Flag.CLOCK_UNSYNCED)
                if not self._ts_backwards:
                    log.warning(
                        "clock went backwards: reading ts %s is not after %s; flagging readings until it is",
                        ts,
                        self._last_ts,
                    )
            self._ts_backwards = backwards
            if flags != reading.flags:
                reading = dataclasses.replace(reading, flags=frozenset(flags))

            def build(seq: int, reading: Reading = reading) -> bytes:
                payload = to_payload(self.cfg, seq, reading)
                return self.sign(payload) if self.sign else payload.to_wire()

            try:
                seq = outbox.append(ts, build)
            except OutboxFull as exc:  # counted in outbox.dropped; the next reading may fit
                if not self._disk_full:
                    log.error("%s; carrying on, the loss is counted in the status", exc)
                self._disk_full = True
                continue
            self._disk_full = False
            self._last_ts = max(self._last_ts or ts, ts)
            if self.on_reading:
                self.on_reading(seq, reading)

    def _drain(self, forwarder: Forwarder, timeout_s: float) -> None:
        """On clean shutdown, give in-flight readings a moment to be acknowledged."""
        deadline = threading.Event()
        for _ in range(int(timeout_s / 0.05)):
            forwarder.pump(send=False)
            if forwarder.inflight == 0:
                return
            deadline.wait(0.05)
