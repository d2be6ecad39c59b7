"""Running the dashboard: uvicorn on a thread of `serve` (alone, or as the child process `run`
starts, gateway/web/process.py), its connections held to `[web]`'s limits (gateway/web/guard.py),
and a read-only MQTT subscription to the nodes' retained status topics."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette

from contract.wire import TopicKind, subscription
from gateway.alerts.rules.difference import DifferenceRule
from gateway.alerts.store import AlertStore, EventFollower
from gateway.config import GatewayConfig, WebConfig
from gateway.fdlimit import open_files_limit
from gateway.latest import FILE as LATEST_FILE
from gateway.latest import LatestFollower
from gateway.observations.accounts import ACCOUNTS_FILE, Accounts
from gateway.observations.migrate import migrate_once
from gateway.observations.records import PHOTOS_DIR, FieldRecords
from gateway.observations.store import STORE_FILE as OBSERVATIONS_FILE
from gateway.observations.store import ObservationStore
from gateway.stores.backends import LazyStore, dashboard_reader
from gateway.stores.base import API_FILE
from gateway.subscriber import Subscriber
from gateway.web.app import create_app
from gateway.web.context import Upstream
from gateway.web.guard import Gate, protocol_for
from gateway.web.kept import KeptAlerts, KeptLatest
from gateway.web.status import StatusBoard

log = logging.getLogger(__name__)
ALERTS_FILE = "alerts.sqlite"  # as gateway/alerts/service.py keeps it
RESERVED_FILES = 64  # what the dashboard keeps for itself beyond its connections: the database, templates
MAX_BACKLOG = 2048  # uvicorn's default
KEPT_REFRESH_S = 1.0  # how stale a node's latest reading may be on the pages


def app_for(cfg: GatewayConfig, board: StatusBoard) -> Starlette:
    """The app reading the gateway's database over InfluxQL (the v1 HTTP API, see docs/api.md).

    The latest reading of every node is kept in memory and follows, every `KEPT_REFRESH_S`, the
    file the gateway keeps as it stores readings (gateway/latest.py, gateway/web/kept.py): the
    dashboard runs in its own process (issue 22), so it does not see each reading as it is stored,
    and "the last point of each of 1,000 series" costs InfluxDB 120-190 ms however short the
    window. Without that file (no gateway here) the table is refreshed from the database. The active
    alerts follow the gateway's alert store (`alerts.sqlite`) the same way, by event id."""
    reader = dashboard_reader(cfg.influxdb)
    follow = LatestFollower(cfg.data_dir / LATEST_FILE)
    kept = KeptLatest(reader, follow=follow, refresh_s=KEPT_REFRESH_S)
    kept.refresh_in_background(lambda: datetime.now(UTC))  # no page waits for the refresh
    # the active alerts likewise, following the events of the gateway's alert store by id
    alerts = KeptAlerts(reader, follow=EventFollower(cfg.data_dir / ALERTS_FILE), refresh_s=KEPT_REFRESH_S)
    alerts.refresh_in_background()
    observations: ObservationStore | None = None
    accounts: Accounts | None = None
    field: FieldRecords | None = None
    try:
        observations = ObservationStore(cfg.data_dir / OBSERVATIONS_FILE)
        accounts = Accounts(cfg.data_dir / ACCOUNTS_FILE)
        # written through the write seam, connected at the first write (the pages start without it)
        store = LazyStore(cfg.influxdb, remember=cfg.data_dir / API_FILE)
        field = FieldRecords(store, dashboard_reader(cfg.influxdb), cfg.data_dir / PHOTOS_DIR)
        # observations kept in SQLite before they moved to InfluxDB: copied once, off the start path
        args = (observations, field, cfg.data_dir)
        threading.Thread(target=migrate_once, args=args, name="migrate", daemon=True).start()
    except (OSError, sqlite3.Error) as exc:  # a `serve` whose user may not write the data directory
        log.warning("residents' observations and monitor logins are off: %s (%s)", cfg.data_dir, exc)
        observations = accounts = field = None
    alert_store: AlertStore | None = None
    try:  # the gateway's alert state, for acknowledgement links (gateway/web/ack.py)
        alert_store = AlertStore(cfg.data_dir / ALERTS_FILE)
    except (OSError, sqlite3.Error) as exc:
        log.warning("acknowledgement links are off: cannot open %s (%s)", cfg.data_dir / ALERTS_FILE, exc)
    return create_app(
        cfg.web or WebConfig(),
        reader,
        board,
        keys_dir=cfg.keys_dir,
        kept=kept,
        observations=observations,
        upstreams=upstreams_of(cfg),
        site=cfg.site,
        records=field,
        accounts=accounts,
        alert_store=alert_store,
        kept_alerts=alerts,
    )


def upstreams_of(cfg: GatewayConfig) -> tuple[Upstream, ...]:
    """The pairs of the difference rules, so a downstream node's chart overlays its reference."""
    return tuple(
        Upstream(r.name, r.node, r.reference, r.metric.value, tuple(r.sites) if r.sites else None, r.title)
        for r in cfg.alerts.all_rules()
        if isinstance(r, DifferenceRule)
    )


def limits_for(web: WebConfig) -> tuple[Gate, int]:
    """`[web]`'s limits and the listen backlog, kept below the open-file limit with room for the
    dashboard's own files. asyncio accepts up to `backlog` connections in one go before the gate
    sees the first, so open connections plus one backlog's worth must fit: a cap above that would
    let a flood take every file (the kernel holds the rest of a flood in the queue, not in our
    files)."""
    budget = max(open_files_limit() - RESERVED_FILES, 2)
    backlog = min(max(budget // 4, 1), MAX_BACKLOG)
    cap = web.max_connections
    if cap > budget - backlog:
        log.warning(
            "[web] max_connections = %d is more than the open-file limit (%d) leaves; using %d",
            cap,
            open_files_limit(),
            budget - backlog,
        )
        cap = budget - backlog
    return Gate(cap, web.header_timeout_s, web.idle_timeout_s, web.body_timeout_s), backlog


def _uvicorn(app: Starlette, web: WebConfig) -> uvicorn.Server:
    gate, backlog = limits_for(web)
    config = uvicorn.Config(
        app,
        host=web.host,
        port=web.port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        http=protocol_for(gate),
        backlog=backlog,
        timeout_keep_alive=web.idle_timeout_s,
    )
    return uvicorn.Server(config)


class BackgroundServer:
    """uvicorn on a thread of its own; uvicorn installs no signal handlers off the main thread, so
    the gateway's own SIGTERM handling stays in charge."""

    def __init__(self, app: Starlette, web: WebConfig) -> None:
        self._server = _uvicorn(app, web)
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)
        self._web = web

    def _run(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits so when it cannot bind; start() says it
            self._server.run()

    def start(self, timeout_s: float = 30.0) -> None:
        """Start and wait until it listens; OSError when it cannot (address in use, no permission)."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise OSError(f"the dashboard cannot listen on {self._web.host}:{self._web.port}")
            time.sleep(0.02)
        log.info("dashboard on http://%s:%d/", self._web.host, self._web.port)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class StatusFeed:
    """Retained node statuses for `serve`: a clean, short-lived session under its own client id, so
    it never touches the gateway's persistent session."""

    def __init__(self, cfg: GatewayConfig, board: StatusBoard) -> None:
        self._board = board
        self._prefix = cfg.topic_prefix
        self._stop = threading.Event()
        self._sub = Subscriber(
            cfg.mqtt.host,
            cfg.mqtt.port,
            f"{cfg.mqtt.client_id}-web-{os.getpid()}"[:64],
            username=cfg.mqtt.username,
            password=cfg.mqtt.password(),
            tls=cfg.mqtt.tls,
            ca_file=str(cfg.mqtt.ca_file) if cfg.mqtt.ca_file else None,
            keepalive_s=cfg.mqtt.keepalive_s,
            session_expiry_s=0,
            receive_maximum=100,
            queue_size=1000,
        )
        self._thread = threading.Thread(target=self._drain, name="web-status", daemon=True)

    def start(self) -> None:
        self._sub.start([subscription(self._prefix, TopicKind.STATUS)])
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            msg = self._sub.inbox.get(timeout=0.5)
            if msg is None:
                continue
            self._board.handle(msg)
            self._sub.ack([msg])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sub.stop()


def serve(cfg: GatewayConfig, stop: threading.Event, on_listening: Callable[[], None] | None = None) -> None:
    """`minewatch-gateway serve`: the dashboard alone until `stop` is set (by SIGINT or SIGTERM, or
    the end of the gateway that started it); `on_listening` once it listens.

    uvicorn runs on a thread here too: in the foreground it re-raises the signal after its own
    graceful shutdown, so the process would end "killed by SIGTERM" instead of exiting 0."""
    web = cfg.web or WebConfig()
    board = StatusBoard(cfg.topic_prefix)
    app = app_for(cfg, board)  # a bad [web] (no such language) fails here, before anything connects
    feed = StatusFeed(cfg, board)
    feed.start()
    server = BackgroundServer(app, web)
    try:
        server.start()
        if on_listening is not None:
            on_listening()
        stop.wait()
    finally:
        server.stop()
        feed.stop()
