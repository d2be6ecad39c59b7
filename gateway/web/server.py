"""Running the dashboard: uvicorn in the foreground (`serve`) or in a thread beside ingest (`run`),
and, under `serve`, a read-only MQTT subscription to the nodes' retained status topics."""

from __future__ import annotations

import logging
import os
import queue
import threading

import uvicorn
from starlette.applications import Starlette

from gateway.config import GatewayConfig, WebConfig
from gateway.schema import TopicKind, subscription
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Subscriber
from gateway.web.app import create_app
from gateway.web.status import StatusBoard

log = logging.getLogger(__name__)


def app_for(cfg: GatewayConfig, board: StatusBoard) -> Starlette:
    """The app reading the gateway's database over InfluxQL (the v1 HTTP API, see docs/api.md)."""
    return create_app(cfg.web or WebConfig(), InfluxV1(cfg.influxdb), board)


def _uvicorn(app: Starlette, web: WebConfig) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host=web.host, port=web.port, lifespan="off", log_level="warning", access_log=False
    )
    return uvicorn.Server(config)


class BackgroundServer:
    """uvicorn on a thread of its own; uvicorn installs no signal handlers off the main thread, so
    the gateway's own SIGTERM handling stays in charge."""

    def __init__(self, app: Starlette, web: WebConfig) -> None:
        self._server = _uvicorn(app, web)
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._web = web

    def start(self) -> None:
        self._thread.start()
        log.info("dashboard on http://%s:%d/", self._web.host, self._web.port)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class StatusFeed:
    """Retained node statuses for `serve`: a clean, short-lived session under its own client id, so
    it never touches the gateway's persistent session."""

    def __init__(self, cfg: GatewayConfig, board: StatusBoard) -> None:
        self._board = board
        self._stop = threading.Event()
        self._sub = Subscriber(
            cfg.mqtt.host,
            cfg.mqtt.port,
            f"{cfg.mqtt.client_id}-web-{os.getpid()}"[:64],
            [subscription(cfg.topic_prefix, TopicKind.STATUS)],
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
        self._sub.start()
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._sub.inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            self._board.handle(msg)
            self._sub.ack([msg])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sub.stop()


def serve(cfg: GatewayConfig) -> None:
    """`minewatch-gateway serve`: the dashboard alone, until SIGINT or SIGTERM (uvicorn handles them)."""
    web = cfg.web or WebConfig()
    board = StatusBoard(cfg.topic_prefix)
    feed = StatusFeed(cfg, board)
    feed.start()
    try:
        log.info("dashboard on http://%s:%d/", web.host, web.port)
        _uvicorn(app_for(cfg, board), web).run()
    finally:
        feed.stop()
