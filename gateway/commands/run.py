"""`minewatch-gateway run --config gateway.toml`: subscribe, validate, store until stopped."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType
from typing import Any

from gateway.alerts.service import Alerts
from gateway.config import load
from gateway.schema import ReadingPayload
from gateway.service import GatewayService

log = logging.getLogger("minewatch.gateway")


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "run", help="subscribe to readings and store them until stopped"
    )
    parser.add_argument("--config", required=True, help="path to gateway.toml")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every stored reading")
    parser.set_defaults(func=run)


def _log_stored(readings: list[ReadingPayload]) -> None:
    for r in readings:
        log.debug("stored %s/%s seq=%d ts=%s", r.site, r.node, r.seq, r.ts.isoformat())


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    service = GatewayService(cfg)
    if args.verbose:
        service.on_stored.append(_log_stored)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: writing what is batched and stopping", signum)
        service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    alerts = Alerts(cfg)
    alerts.install(service)
    alerts.start()
    try:
        service.run()
    finally:
        alerts.stop()
    return 0
