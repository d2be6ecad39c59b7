"""`minewatch-gateway run --config gateway.toml`: subscribe, validate, store until stopped."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING, Any

from contract.clock import utc_now
from contract.sdnotify import Notifier
from contract.wire import ReadingPayload
from gateway import latest, node_status, rollup
from gateway.alerts.service import Alerts, through
from gateway.commands.serve import web_extra
from gateway.community import forwarder as community_maps
from gateway.config import GatewayConfig, load
from gateway.hooks import Hooks
from gateway.shutdown import shut_down
from gateway.stores import reader_for, rollups_for
from gateway.web.process import WebProcess
from gateway.wiring import assemble, open_parts

if TYPE_CHECKING:
    from gateway.forward.forwarder import Forwarder
    from gateway.trust.registry import KeyRegistry

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
    parts = open_parts(cfg)
    hooks = Hooks()
    if args.verbose:
        hooks.on_stored.append(_log_stored)
    node_status.attach(hooks, parts.store, cfg.topic_prefix)
    kept = latest.attach(hooks, cfg.data_dir / latest.FILE)  # what the dashboard's table follows
    spool = parts.spool
    rollups = rollup.Rollups(
        rollups_for(parts.store, cfg.influxdb),
        utc_now,
        cfg.data_dir / rollup.DIRTY_FILE,
        waiting=lambda: spool.depth > 0,
        background=True,
    )
    rollup.attach(hooks, rollups)
    notifier = Notifier()  # READY=1 on the loop's first tick, then WATCHDOG=1 (systemd)
    hooks.tickers.append(notifier.tick)
    alerts = Alerts(
        cfg,
        publish=through(parts.subscriber),
        publish_retained=through(parts.subscriber, retain=True),
        background_fill=True,  # a first start reads its windows' history while it runs
    )
    alerts.install(hooks)
    maps = community_maps.attach(hooks, cfg.community_maps)  # off unless [[community_maps]] lists a node
    web = _web(args.config, hooks) if cfg.web is not None else None
    forwarder = _forwarder(cfg, parts.registry, hooks, alerts) if cfg.forward is not None else None
    service = assemble(parts, hooks)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: writing what is batched and stopping", signum)
        notifier.stopping()
        service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def reload_keys(signum: int, frame: FrameType | None) -> None:
        parts.registry.request_reload()

    signal.signal(signal.SIGHUP, reload_keys)
    if kept is not None:  # beside the alerts' reload: readings stored before the file, or elsewhere
        kept.seed_in_background(reader_for(parts.store, cfg.influxdb), utc_now)
    alerts.start()
    maps.start()
    if web is not None:
        web.start()
    if forwarder is not None:
        forwarder.start()
    _tune_gc()
    cause: BaseException | None = None
    try:
        service.run()
    except BaseException as exc:
        cause = exc
        raise
    finally:
        steps = [("stopping the forwarder", forwarder.stop)] if forwarder is not None else []
        steps += [("stopping the dashboard", web.stop)] if web is not None else []
        steps += [("stopping the community maps", maps.stop)]
        steps += [("closing the latest readings", kept.close)] if kept is not None else []
        shut_down([*steps, ("stopping the alerts", alerts.stop)], cause)
    return 0


def _tune_gc() -> None:
    """Collect young objects every 20,000 allocations rather than Python's default 700.

    A batch keeps up to `max_size` validated readings (a few containers each) alive until it is
    stored, so with the default thresholds they outlived collection after collection and were
    traversed again each time: bench/ingest.py measured 1.4 s of garbage collection for 100,000
    readings (14 µs each, against 2 µs in the bare pipe), and about 0.4 s with this. Peak memory grows
    by about 3 MB. What start-up built (modules, schemas, restored alert windows) is frozen out of the
    collector's sight: it lives as long as the process."""
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def _forwarder(cfg: GatewayConfig, registry: KeyRegistry, hooks: Hooks, alerts: Alerts) -> Forwarder:
    """`[forward]` present: stored readings and the site's keys go on to the regional hub."""
    from gateway.forward.forwarder import Forwarder
    from gateway.forward.outbox import Outbox
    from gateway.stores.backends import open_reader

    assert cfg.forward is not None
    outbox = Outbox(cfg.forward.outbox or cfg.data_dir / "forward.sqlite")
    reader = open_reader(cfg.influxdb)
    forwarder = Forwarder(cfg.forward, outbox, reader, registry, prefix=cfg.topic_prefix)
    forwarder.install(hooks, alerts)
    return forwarder


def _web(config: str, hooks: Hooks) -> WebProcess:
    """`[web]` present: the dashboard as a child process (gateway/web/process.py: why), restarted
    from the loop's ticker if it dies; started by the caller once the alerts are."""
    web_extra()  # refuse now, exit 2, rather than have the child fail to start
    web = WebProcess(config)
    hooks.tickers.append(web.tick)
    return web
