"""The gateway's own health, retained on `<prefix>/v1/_gateway/<gateway_id>/status` (docs/protocol.md).

Published from a ticker every `status_interval_s` and written to `status.json` in the data
directory, so `minewatch-gateway status` can show it from the broker or, when the broker is the
problem, from the disk. The MQTT last will sets `{"state": "down", ...}` when the gateway vanishes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from contract import __version__
from contract.wire import format_ts
from gateway.deadletter import DeadLetters
from gateway.ingest import IngestStats
from gateway.spool import Spool

STATUS_FILE = "status.json"


class SpoolStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    depth: int  # readings waiting for InfluxDB
    bytes: int
    max_bytes: int
    warning: bool  # past warn_fraction of max_bytes: act before it is full


class GatewayStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Literal["up", "down"]
    gateway_id: str
    ts: str | None = None
    version: str | None = None
    started: str | None = None
    influxdb_reachable: bool | None = None
    last_write: str | None = None
    received: int | None = None
    stored: int | None = None
    spool: SpoolStatus | None = None
    rejects: dict[str, int] | None = None

    def to_wire(self) -> bytes:
        return self.model_dump_json(exclude_unset=True).encode()  # "down" carries two fields


def down(gateway_id: str) -> bytes:
    return GatewayStatus(state="down", gateway_id=gateway_id).to_wire()


def _iso(unix: float | None) -> str | None:
    return None if unix is None else format_ts(datetime.fromtimestamp(unix, UTC))


class StatusReporter:
    def __init__(
        self,
        gateway_id: str,
        stats: IngestStats,
        publish: Callable[[bytes], bool],
        data_dir: Path,
        *,
        spool: Spool | None = None,
        dead: DeadLetters | None = None,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._id = gateway_id
        self._stats = stats
        self._publish = publish
        self._path = data_dir / STATUS_FILE
        self._spool = spool
        self._dead = dead
        self._interval_s = interval_s
        self._clock = clock
        self._monotonic = monotonic
        self._started = clock()
        self._next = monotonic()

    def status(self) -> GatewayStatus:
        stats, spool = self._stats, self._spool
        rejects = self._dead.totals() if self._dead is not None else dict(stats.rejected)
        return GatewayStatus(
            state="up",
            gateway_id=self._id,
            ts=_iso(self._clock()),
            version=__version__,
            started=_iso(self._started),
            influxdb_reachable=stats.influx_reachable,
            last_write=_iso(stats.last_write),
            received=stats.received,
            stored=stats.stored,
            spool=None
            if spool is None
            else SpoolStatus(
                depth=spool.depth,
                bytes=spool.used_bytes(),
                max_bytes=spool.max_bytes,
                warning=spool.is_warning,
            ),
            rejects=dict(sorted(rejects.items())),
        )

    def tick(self) -> None:
        """Publish when due (a ticker: called about once a second)."""
        if self._monotonic() < self._next:
            return
        self._next = self._monotonic() + self._interval_s
        self.publish_now()

    def publish_now(self, status: GatewayStatus | None = None) -> None:
        payload = (status or self.status()).to_wire()
        self._publish(payload)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(payload)
        os.replace(tmp, self._path)


def read_file(data_dir: Path) -> GatewayStatus | None:
    try:
        return GatewayStatus.model_validate(json.loads((data_dir / STATUS_FILE).read_bytes()))
    except (OSError, ValueError):
        return None
