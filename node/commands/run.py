"""`minewatch-node run --config node.toml`: sample, average and publish until stopped."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType
from typing import Any

from node.config import load
from node.sampler import Reading
from node.service import NodeService

log = logging.getLogger("minewatch.node")


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "run", help="sample, average and publish readings until stopped"
    )
    parser.add_argument("--config", required=True, help="path to node.toml")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every reading")
    parser.set_defaults(func=run)


def _log_reading(seq: int, reading: Reading) -> None:
    values = {m.value: v.value for m, v in reading.metrics.items()}
    log.debug("reading seq=%d ts=%s %s", seq, reading.ts.isoformat(), values)


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    service = NodeService(cfg)
    if args.verbose:
        service.on_reading = _log_reading

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: finishing the current reading and stopping", signum)
        service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()
    return 0
