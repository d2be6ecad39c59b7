"""What plug-ins hand the gateway's loop: hooks on stored readings, handlers by topic kind, tickers.

A plug-in is built with the parts it needs (gateway/wiring.py) and adds its callables here before
the loop is assembled; it never sees the loop. The order of each list is the order they run in.
`("status", f)` in `handlers` subscribes to `<prefix>/v1/+/+/status`; several handlers may share a kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.ingest import OnStored
from gateway.subscriber import Message

Handler = Callable[[Message], None]
Ticker = Callable[[], None]
"""Runs about once a second on the loop's thread: time-based checks, status, retries."""


@dataclass
class Hooks:
    on_stored: list[OnStored] = field(default_factory=list)
    handlers: list[tuple[str, Handler]] = field(default_factory=list)
    tickers: list[Ticker] = field(default_factory=list)
