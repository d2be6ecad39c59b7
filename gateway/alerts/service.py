"""Wires the alert engine into the gateway: hooks in, store and channels out.

`Alerts(cfg, publish=through(subscriber)).install(hooks)` adds an `on_stored` hook (stored readings
-> engine), handlers for node status (last will -> offline) and for the ack command topic, and a
ticker (offline checks, acks from the CLI, a status file). `start()` restores the machines from the
store, refills the windows from InfluxDB and re-queues undelivered notifications; call it before the
gateway's loop, `stop()` after.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract.clock import Clock, utc_now
from contract.wire import CONTRACT_VERSION, is_identifier
from gateway.alerts import snapshot
from gateway.alerts.engine import Engine
from gateway.alerts.events import AlertEvent
from gateway.alerts.history import Fill, node_history
from gateway.alerts.links import AckLinks
from gateway.alerts.messages import EN
from gateway.alerts.reasons import words
from gateway.alerts.record import InfluxRecord, RecordOptions
from gateway.alerts.store import AlertStore
from gateway.channels import ChannelContext, ChannelOptions, open_channel
from gateway.channels.base import Channel, Publish, recipients_of
from gateway.channels.dispatcher import Dispatcher, Worker, in_words
from gateway.channels.mqtt import MqttOptions
from gateway.config import GatewayConfig
from gateway.hooks import Hooks
from gateway.stores import Store, StoreError, open_store, reader_for
from gateway.stores.base import API_FILE
from gateway.subscriber import Message, Subscriber

log = logging.getLogger(__name__)
ACK_KIND = "alert/ack"
STATUS_FILE = "alerts-status.json"
CONNECT_WAIT_S = 2.0
TOKENS_KEPT_S = 30 * 86400
FILL_WAIT_S = 60.0
"""How long a stop waits for a first start's windows to fill (systemd's default stop timeout is 90 s)."""


def through(sub: Subscriber, *, retain: bool = False) -> Publish:
    """The gateway's own connection as the alerts' MQTT publisher (`retain`: the broker keeps the
    message for later subscribers). A broker away for a moment (a reconnection) is waited for
    briefly; a longer absence is a failed send the dispatcher retries."""

    def publish(topic: str, payload: bytes) -> bool:
        if not sub.connected.wait(CONNECT_WAIT_S):
            return False
        return sub.publish(topic, payload, qos=1, retain=retain)

    return publish


class Alerts:
    def __init__(
        self,
        cfg: GatewayConfig,
        *,
        clock: Clock = utc_now,
        publish: Publish,
        publish_retained: Publish | None = None,
        record_store: Store | None = None,
        background_fill: bool = False,
    ) -> None:
        self.cfg = cfg
        self._background_fill = background_fill
        self._fill: Fill | None = None  # a first start's history, while it is read
        self._clock = clock
        self._publish = publish
        self._publish_retained = publish_retained
        self._record_store = record_store
        self.engine = Engine(cfg.alerts.all_rules(), clock=clock, late_after_s=cfg.alerts.late_after_s)
        self.store: AlertStore | None = None
        self.dispatcher: Dispatcher | None = None
        self._ticks = 0
        self.on_event: list[Callable[[AlertEvent], None]] = []
        self.routes: list[tuple[ChannelOptions, Channel]] = []
        """Deliveries every event gets, as durable as the record: each event's outbox row for them
        is committed with the event and the machine state that raised it, and deleted once the
        route took it, so an event is never lost to a kill in between (the hub forwarder's
        outbox, gateway/forward/forwarder.py). Added before `start()`."""
        # The late logs of the saved windows (gateway/alerts/snapshot.py): the one beside the file
        # on disk, and while a save is being synced, the one of the save to come.
        self._late: list[snapshot.LateLog] = []
        self._saving: tuple[threading.Thread, snapshot.LateLog, list[BaseException]] | None = None
        self._next_save_ms = 0

    # -- wiring ---------------------------------------------------------------------------------

    def install(self, hooks: Hooks) -> None:
        hooks.on_stored.append(self.engine_hook)
        hooks.handlers.append(("status", self.on_status))
        hooks.handlers.append((ACK_KIND, self.on_ack))
        hooks.tickers.append(self.tick)

    def _publish_via_gateway(self, topic: str, payload: bytes) -> bool:
        return self._publish(topic, payload)

    def _channel(self, opts: ChannelOptions) -> Channel:
        ctx = ChannelContext(
            self._publish_via_gateway, self.cfg.topic_prefix, self._publish_retained, self.active_words
        )
        return open_channel(opts, ctx)

    def active_words(self, opts: ChannelOptions) -> list[dict[str, Any]]:
        """The latest event of each active alert, oldest first, as a channel with `opts` words it
        (`in_words`): what the alert topic's retained copy falls back on after a restart."""
        if self.store is None:
            return []
        texts = self.cfg.site.texts(opts.language)
        active = sorted((m for m in self.engine.machines.values() if m.is_active), key=lambda m: m.last_t_ms)
        latest = [events[-1] for m in active if (events := self.store.events(m.alert_id))]
        return [in_words(doc, texts) for doc in latest]

    def _links(self, store: AlertStore) -> AckLinks | None:
        """Acknowledgement links, when the dashboard has a public address to put in them."""
        web = self.cfg.web
        if web is None or web.public_url is None:
            return None
        return AckLinks(store, str(web.public_url), self.cfg.alerts.ack_link_valid_s, self._clock)

    def _say_links_are_off(self, labels: list[str]) -> None:
        """Once, at start: channels whose people would get a link of their own (email, Apprise,
        webhooks) get none without `[web] public_url`, and their messages fall back to the CLI
        command and the MQTT topic, which nobody can use from a phone. The MQTT topic alone is
        never personal, so it is not worth a warning."""
        if not labels:
            return
        where = "[web] public_url is not set" if self.cfg.web is not None else "there is no [web] table"
        log.warning(
            "alerts: %s, so the messages of %s carry no acknowledgement link, only the "
            "`minewatch-gateway ack` command and the MQTT topic, which a monitor on a phone cannot "
            "use: set [web] public_url to the address people open the dashboard at, as typed "
            '(like "https://air.example.mn"; docs/configuration.md)',
            where,
            ", ".join(labels),
        )

    def start(self) -> None:
        self.store = AlertStore(self.cfg.data_dir / "alerts.sqlite")
        self.engine.restore(self.store.machines())
        record_store = self._record_store or open_store(
            self.cfg.influxdb, remember=self.cfg.data_dir / API_FILE
        )
        self._rebuild(record_store)
        if self.engine.rules and self._fill is None:
            self._save_windows()  # at once: a gateway killed from now on starts from this
        stop = threading.Event()
        configured: list[ChannelOptions] = list(self.cfg.alerts.channels)
        if not any(getattr(c, "type", "") == "mqtt" for c in configured):
            configured.insert(0, MqttOptions(type="mqtt"))
        workers = [
            Worker(RecordOptions(name="influxdb"), InfluxRecord(record_store), self.store, self._clock, stop)
        ]
        labels: set[str] = {"influxdb"}
        for opts, channel in self.routes:
            workers.append(Worker(opts, channel, self.store, self._clock, stop))
            labels.add(opts.label)
        links = self._links(self.store)
        for opts in configured:
            label = opts.label
            n = 2
            while label in labels:
                label, n = f"{opts.label}-{n}", n + 1
            labels.add(label)
            worker = Worker(
                opts,
                self._channel(opts),
                self.store,
                self._clock,
                stop,
                site_texts=self.cfg.site.texts(),
                links=links,
            )
            worker.label = label
            workers.append(worker)
        if links is None:
            self._say_links_are_off([w.label for w in workers if recipients_of(w.channel)])
        self.dispatcher = Dispatcher(workers)
        for row, label, doc in self.store.pending():
            self.dispatcher.submit(row, label, doc)
        self.dispatcher.start()
        active = [m for m in self.engine.machines.values() if m.is_active]
        log.info(
            "alerts: %d rules, %d channels, %d active alerts",
            len(self.engine.rules),
            len(workers),
            len(active),
        )

    def _rebuild(self, store: Store) -> None:
        """Refill the windows with the readings of the last `history_s`, read where the store writes
        (on InfluxDB 2.x through its v1-compatible `/query`: the bucket's DBRP mapping, as for
        `export`). Onto saved windows, only what came since is read, at once; without them (a
        first start), with `background_fill`, the whole history is read on a thread while the
        gateway runs (gateway/alerts/history.py), else here."""
        if not self.engine.rules:
            return
        reader = reader_for(store, self.cfg.influxdb)
        seconds = int(self.engine.history_s)
        now_ms = int(self._clock().timestamp() * 1000)
        saved_ms = snapshot.load(self.engine, self._windows_file, now_ms)
        if saved_ms is not None:
            # The windows as the last save left them (a stop, or the last periodic save before a
            # kill), with the late readings stored since: only what is stamped since is reloaded.
            seconds = min(seconds, (now_ms - saved_ms) // 1000 + snapshot.SNAPSHOT_MARGIN_S + 1)
            late = snapshot.late_path(self._windows_file, saved_ms)
            self._late = [snapshot.LateLog(late, saved_ms)]  # goes on until the next save
        elif self._background_fill:
            log.info("alerts: no saved windows; reading %d s of history from InfluxDB meanwhile", seconds)
            self._fill = Fill(self.engine, reader, seconds, self._clock)
            self._fill.start()
            return
        count = 0
        try:
            for h in node_history(reader, self.engine.windowed_metrics, seconds):
                count += len(h.times)
                self.engine.preload_node(h.site, h.node, h.last_ms, h.windows)
            # A node quiet for longer than the windows reach still has its last reading: the offline
            # rule counts from it, as the dashboard's card does ("47 h ago" in both), not from the
            # moment this gateway started.
            for latest in reader.latest(self._clock()):
                self.engine.preload_node(latest.site, latest.node, int(latest.time.timestamp() * 1000), {})
        except StoreError as exc:
            self._cannot_reload(exc, count)
        finally:
            reader.close()
        self.engine.finish_preload()
        log.info(
            "alerts: reloaded %d readings (%d s) from InfluxDB%s",
            count,
            seconds,
            "" if saved_ms is None else f", onto the windows saved at the last stop ({self._windows_file})",
        )

    def _cannot_reload(self, exc: StoreError, count: int) -> None:
        missing = "database not found" in str(exc) or exc.status == 404
        if exc.hint is not None:  # not set up to be read (a 2.x bucket without its DBRP mapping)
            log.warning(
                "alerts: could not reload history from bucket %r (%s); windows start empty",
                self.cfg.influxdb.bucket,
                exc,
            )
        elif not missing:  # (a new install with no database yet: nothing to reload)
            log.warning("alerts: could not reload history (%s); windows start with %d readings", exc, count)

    def _take_fill(self, *, save: bool = True) -> None:
        """The history read so far into the engine; once all of it is, the readings that waited
        are judged and the windows saved (a gateway killed from then on starts from them; not
        with `save` False: a stop, which saves them itself)."""
        fill = self._fill
        if fill is None or not fill.take():
            return
        self._fill = None
        if fill.error is not None:
            self._cannot_reload(fill.error, fill.readings)
        events = self.engine.end_fill()
        log.info(
            "alerts: windows filled: %d readings from InfluxDB in %.1f s, %d alert events from the"
            " readings that came meanwhile",
            fill.readings,
            time.monotonic() - fill.started,
            len(events),
        )
        self._commit(events)
        if save:
            self._save_windows()

    @property
    def _windows_file(self) -> Path:
        return Path(self.cfg.data_dir) / snapshot.FILE

    def _save_windows(self, *, wait: bool = False) -> None:
        """Write the windows now and sync them on a thread (or here, with `wait`); the save's late
        log is made first and kept from now on, so a reading stored meanwhile is in one or the
        other. The last save's log is removed once this one is on disk."""
        now_ms = int(self._clock().timestamp() * 1000)
        self._next_save_ms = now_ms + snapshot.SAVE_EVERY_S * 1000
        path = self._windows_file
        try:
            late = snapshot.LateLog(snapshot.late_path(path, now_ms), now_ms)
        except OSError as exc:
            log.warning("alerts: cannot save the windows to %s (%s)", path, exc)
            return
        self._late.append(late)
        errors: list[BaseException] = []

        def sync(tmp: Path) -> None:
            try:
                snapshot.commit(tmp, path)
            except OSError as exc:
                errors.append(exc)
                tmp.unlink(missing_ok=True)

        try:
            tmp = snapshot.write(self.engine, path, now_ms)
        except OSError as exc:
            errors.append(exc)
            thread = threading.Thread(target=lambda: None)
        else:
            thread = threading.Thread(target=sync, args=(tmp,), name="alert-windows", daemon=True)
        self._saving = (thread, late, errors)
        thread.start()
        if wait:
            thread.join()
            self._saved()

    def _saved(self) -> None:
        """A save that has finished: its log replaces the last, or, if it failed, it is dropped."""
        if self._saving is None or self._saving[0].is_alive():
            return
        _, late, errors = self._saving
        self._saving = None
        if errors:
            log.warning("alerts: cannot save the windows to %s (%s)", self._windows_file, errors[0])
            late.remove()
            self._late = [x for x in self._late if x is not late]
            return
        for old in self._late:
            if old is not late:
                old.remove()
        self._late = [late]

    def _keep_late(self, readings: list[Any]) -> None:
        """Readings stamped before what the next start reloads from InfluxDB go to the late logs."""
        before_ms = max(x.before_ms for x in self._late)
        windowed = self.engine.windowed_metrics
        late: list[tuple[int, str]] = []
        for r in readings:
            t_ms = int(r.ts.timestamp() * 1000)
            if t_ms <= before_ms:
                values = {m: mv.value for m in windowed if (mv := r.metrics.get(m)) is not None}
                late.append((t_ms, snapshot.late_line(r.site, r.node, t_ms, values)))
        if not late:
            return
        try:
            for x in self._late:
                if lines := [line for t_ms, line in late if t_ms <= x.before_ms]:
                    x.add(lines)
        except OSError as exc:
            # Without its late readings the saved windows would be wrong: the next start reloads
            # the whole history instead, until a save succeeds.
            log.warning("alerts: cannot keep late readings (%s); the saved windows are dropped", exc)
            for x in self._late:
                x.remove()
            self._late = []
            self._windows_file.unlink(missing_ok=True)

    def stop(self) -> None:
        fill = self._fill
        if fill is not None and self.dispatcher is not None:
            # The readings that waited are stored, but not judged: a stop within the fill waits
            # for it (what they raise goes to the outbox, sent at the next start if not now).
            if fill.wait(FILL_WAIT_S):
                self._take_fill(save=False)
            else:
                fill.cancel()
                log.warning(
                    "alerts: stopped before the windows were filled; %d readings of the last %.0f s"
                    " were stored but not judged by the rules on windows",
                    self.engine.pending_count,
                    time.monotonic() - fill.started,
                )
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self._saving is not None:
            self._saving[0].join()
            self._saved()
        if self.store is not None and self.engine.rules and self._fill is None:  # the windows are whole
            self._save_windows(wait=True)
        for x in self._late:
            x.close()
        self._write_status()
        if self.store is not None:
            self.store.close()

    # -- inputs ---------------------------------------------------------------------------------

    def engine_hook(self, readings: list[Any]) -> None:
        if self._late:
            self._keep_late(readings)
        self._commit(self.engine.on_readings(readings))

    def on_status(self, msg: Message) -> None:
        site_node = self._site_node(msg.topic, "status")
        if site_node is None:
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(doc, dict) and isinstance(doc.get("state"), str):
            self._commit(self.engine.on_status(*site_node, doc["state"]))

    def on_ack(self, msg: Message) -> None:
        """`{"id": "<alert id>", "by": "name"}` on `<prefix>/v1/<site>/<node>/alert/ack`. Who may
        publish there is the broker's ACL (docs/alerts.md)."""
        site_node = self._site_node(msg.topic, ACK_KIND)
        if site_node is None:
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            log.warning("alert ack on %s is not JSON", msg.topic[:200])
            return
        if (
            not isinstance(doc, dict)
            or not isinstance(doc.get("id"), str)
            or not isinstance(doc.get("by"), str)
        ):
            log.warning('alert ack on %s needs {"id": ..., "by": ...}', msg.topic[:200])
            return
        machine = self.engine.by_id.get(doc["id"])
        if machine is not None and (machine.site, machine.node) != site_node:
            # The broker's ACL decides who may write to which node's ack topic: an ack is taken
            # only on the topic of the alert's own node (found in a test audit: any was accepted).
            log.warning(
                "alert ack for %s on %s: not that node's alert; ignored", doc["id"][:100], msg.topic[:200]
            )
            return
        event = self.engine.ack(doc["id"], doc["by"][:64])
        if event is None:
            log.warning("alert ack for %s: no such active alert, or already acknowledged", doc["id"][:100])
        self._commit([event] if event else [])

    def tick(self) -> None:
        if self._fill is not None:
            self._take_fill()
        self._saved()
        if self._saving is None and 0 < self._next_save_ms <= self._clock().timestamp() * 1000:
            self._save_windows()
        events = self.engine.tick()
        if self.store is not None:
            for ack_id, alert_id, by in self.store.open_acks():
                event = self.engine.ack(alert_id, by)
                if event is not None:
                    events.append(event)
                    self.store.ack_result(ack_id, "acknowledged")
                else:
                    self.store.ack_result(ack_id, "not active or already acknowledged")
        self._commit(events)
        self._ticks += 1
        if self._ticks % 10 == 0:
            self._write_status()

    def _site_node(self, topic: str, kind: str) -> tuple[str, str] | None:
        head = f"{self.cfg.topic_prefix}/{CONTRACT_VERSION}/"
        if not topic.startswith(head) or not topic.endswith("/" + kind):
            return None
        parts = topic[len(head) : -len(kind) - 1].split("/")
        if len(parts) != 2 or not all(is_identifier(p) for p in parts):
            return None
        return parts[0], parts[1]

    # -- outputs --------------------------------------------------------------------------------

    def _commit(self, events: list[AlertEvent]) -> None:
        if self.store is None or self.dispatcher is None:
            raise RuntimeError("Alerts.start() was not called")
        dirty = self.engine.take_dirty()
        if not events and not dirty:
            return
        # Each event names the topic its node's alerts are acknowledged on (docs/protocol.md).
        docs = [{**e.to_json(), "ack_topic": self._ack_topic(e)} for e in events]
        # `route` includes the InfluxDB record and the MQTT topic, which take every event
        rows = self.store.commit(dirty, [(d, self.dispatcher.route(d)) for d in docs])
        for row, label, doc in rows:
            self.dispatcher.submit(row, label, doc)
        for e in events:
            log.info("alert %s %s: %s", e.state, e.id, e.message)
            for hook in self.on_event:
                hook(e)

    def _ack_topic(self, e: AlertEvent) -> str:
        return f"{self.cfg.topic_prefix}/{CONTRACT_VERSION}/{e.site}/{e.node}/{ACK_KIND}"

    def status(self) -> dict[str, Any]:
        machines = self.engine.machines.values()
        return {
            "updated": utc_now().isoformat(),
            "active": [m.to_dict() for m in machines if m.is_active],
            "not_evaluated": [
                # the reason in English words, and as its key and parameters ([alert.reason])
                {
                    "rule": m.rule,
                    "site": m.site,
                    "node": m.node,
                    "reason": words(m.reason, EN, m.site),
                    "reason_key": m.reason,
                }
                for m in machines
                if not m.evaluable
            ],
            "channels": self.dispatcher.stats() if self.dispatcher else {},
            "failed_deliveries": self.store.failed_count() if self.store else 0,
            "windows_filling": self.engine.is_filling,  # a first start reading its history
        }

    def _write_status(self) -> None:
        """`<data_dir>/alerts-status.json`: what `ack --list` and an operator read. Links expired
        for a month are forgotten here too (until then a late tap is told "expired")."""
        if self.store is None:
            return
        self.store.forget_tokens(self._clock().timestamp() - TOKENS_KEPT_S)
        path = Path(self.cfg.data_dir) / STATUS_FILE
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.status(), indent=1, default=str))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)
