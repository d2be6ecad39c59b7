"""What the nodes say about themselves on their retained status topic: online/offline and position.

Fed by the gateway's `handlers` hook under `run`, or by a read-only subscriber of its own under
`serve`. Only what the dashboard shows is kept; anything malformed is ignored (the status topic is
informative, readings are the evidence).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

from contract.wire import TopicKind, parse_topic
from gateway.subscriber import Message

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    state: str  # "online" | "offline" | whatever a later contract adds
    lat: float | None = None
    lon: float | None = None
    version: str | None = None


def _coordinate(doc: dict[str, Any], key: str, bound: float) -> float | None:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and -bound <= value <= bound else None


class StatusBoard:
    def __init__(self, prefix: str = "minewatch") -> None:
        self._prefix = prefix
        self._lock = threading.Lock()
        self._status: dict[tuple[str, str], NodeStatus] = {}

    def handle(self, msg: Message) -> None:
        try:
            site, node, kind = parse_topic(self._prefix, msg.topic)
            doc = json.loads(msg.payload) if msg.payload else None
        except ValueError:
            return
        if kind is not TopicKind.STATUS:
            return
        with self._lock:
            if doc is None:  # an empty retained message: the node was removed
                self._status.pop((site, node), None)
                return
            if not isinstance(doc, dict) or not isinstance(doc.get("state"), str):
                return
            old = self._status.get((site, node))
            lat, lon = _coordinate(doc, "lat", 90), _coordinate(doc, "lon", 180)
            if lat is None or lon is None:  # the last will carries no position: keep the known one
                lat, lon = (old.lat, old.lon) if old else (None, None)
            version = doc.get("version")
            self._status[(site, node)] = NodeStatus(
                doc["state"][:32], lat, lon, version[:32] if isinstance(version, str) else None
            )

    def get(self, site: str, node: str) -> NodeStatus | None:
        with self._lock:
            return self._status.get((site, node))

    def all(self) -> dict[tuple[str, str], NodeStatus]:
        with self._lock:
            return dict(self._status)
