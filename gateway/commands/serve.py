"""`minewatch-gateway serve --config gateway.toml`: the public dashboard and JSON API alone."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

from pydantic import ValidationError

from contract.configfile import ConfigError, describe
from gateway.config import WebConfig, load
from gateway.web.process import LISTENING, NICE


def web_extra() -> None:
    """Refuse clearly when the optional web dependencies are not installed."""
    try:
        import jinja2  # noqa: F401
        import PIL  # noqa: F401
        import python_multipart  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ConfigError(f"the dashboard needs {exc.name}: pip install 'minewatch[web]'") from None


def listen_config(web: WebConfig, args: argparse.Namespace) -> WebConfig:
    """`web` with the command line's `--host` and `--port`, checked as the file's keys are."""
    update = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if not update:
        return web
    try:
        return WebConfig.model_validate({**web.model_dump(), **update})
    except ValidationError as exc:
        raise ConfigError(describe("command line", exc)) from None


def stop_on_signals() -> threading.Event:
    """Set on SIGTERM or SIGINT: a server loop that waits on it stops cleanly either way."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve", help="serve the read-only public dashboard and JSON API ([web] in gateway.toml)"
    )
    parser.add_argument("--config", required=True, help="path to gateway.toml")
    parser.add_argument("--host", help="listen on this address instead of [web] host")
    parser.add_argument("--port", type=int, help="listen on this port instead of [web] port")
    # `run` starts `serve` as its child (gateway/web/process.py) with one end of a socket pair
    parser.add_argument("--supervised-fd", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    web_extra()
    from gateway.web.server import serve  # only now: the `web` extra is optional (web_extra() checks)

    web = listen_config(cfg.web or WebConfig(), args)
    stop = stop_on_signals()
    if args.supervised_fd is None:
        serve(cfg.model_copy(update={"web": web}), stop)
        return 0
    with contextlib.suppress(OSError):
        os.nice(NICE)  # the pages get the CPU that ingest and alerts leave
    link = socket.socket(fileno=args.supervised_fd)
    threading.Thread(target=_until_closed, args=(link, stop), name="supervisor", daemon=True).start()
    serve(cfg.model_copy(update={"web": web}), stop, on_listening=lambda: link.sendall(LISTENING))
    return 0


def _until_closed(link: socket.socket, stop: threading.Event) -> None:
    """The gateway that started us holds the other end: when it closes (a stop, or the gateway's
    death, even by SIGKILL) we stop too, rather than hold the port for the next gateway."""
    with contextlib.suppress(OSError):
        while link.recv(64):
            pass
    stop.set()
