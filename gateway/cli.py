"""`minewatch-gateway`: wires config, subscriber, ingest and store. Exit 0 ok, 1 runtime failure,
2 bad usage or bad config."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from gateway.config import load
from gateway.configfile import ConfigError
from gateway.schema import ReadingPayload
from gateway.service import GatewayService
from gateway.stores import StoreError
from node import __version__

log = logging.getLogger("minewatch.gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minewatch-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"minewatch-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="subscribe to readings and store them until stopped")
    run.add_argument("--config", required=True, help="path to gateway.toml")
    run.add_argument("-v", "--verbose", action="store_true", help="log every stored reading")
    return parser


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def _log_stored(readings: list[ReadingPayload]) -> None:
    for r in readings:
        log.debug("stored %s/%s seq=%d ts=%s", r.site, r.node, r.seq, r.ts.isoformat())


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    service = GatewayService(cfg)
    if args.verbose:
        service.on_stored.append(_log_stored)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: writing what is batched and stopping", signum)
        service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    try:
        if args.command == "run":
            return cmd_run(args)
    except ConfigError as exc:
        print(f"minewatch-gateway: {exc}", file=sys.stderr)
        return 2
    except (StoreError, OSError) as exc:
        log.error("%s", exc)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
