"""`minewatch-node`: wires config, sensors, sampler, outbox and publisher. Exit 0 ok, 1 runtime
failure, 2 bad usage or bad config."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from gateway.configfile import ConfigError
from hardware.replay_csv import ReplayFileError
from node import __version__
from node.config import load
from node.service import NodeService

log = logging.getLogger("minewatch.node")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minewatch-node", description=__doc__)
    parser.add_argument("--version", action="version", version=f"minewatch-node {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="sample, average and publish readings until stopped")
    run.add_argument("--config", required=True, help="path to node.toml")
    run.add_argument("-v", "--verbose", action="store_true", help="log every reading")
    return parser


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    service = NodeService(cfg)
    if args.verbose:
        service.on_reading = lambda seq, r: log.debug(
            "reading seq=%d ts=%s %s",
            seq,
            r.ts.isoformat(),
            {m.value: v.value for m, v in r.metrics.items()},
        )

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: finishing the current reading and stopping", signum)
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
    except (ConfigError, ReplayFileError) as exc:
        print(f"minewatch-node: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        log.error("%s", exc)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
