"""What every request handler needs, handed in once when the app is made (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from contract.i18n import Texts
from gateway.alerts.store import AlertStore
from gateway.config import WebConfig
from gateway.observations.store import ObservationStore
from gateway.stores.reader import Latest, Reader
from gateway.web.kept import HourlyMeans, KeptLatest
from gateway.web.levels import LimitLine, limit_lines
from gateway.web.status import StatusBoard


@dataclass(frozen=True)
class Context:
    web: WebConfig
    reader: Reader
    board: StatusBoard
    clock: Callable[[], datetime]
    texts: Texts
    keys_dir: Path | None = None  # the gateway's key registry, published at /api/v1/keys
    kept: KeptLatest | None = None  # inside the gateway: the latest readings kept as stored
    hourly: HourlyMeans = field(default_factory=HourlyMeans)  # the NowCast's closed hours
    observations: ObservationStore | None = None  # residents' observations; None: not kept here
    alerts: AlertStore | None = None  # the gateway's alert store: acknowledgement links; None: none here

    def latest(self, now: datetime, site: str | None = None, node: str | None = None) -> list[Latest]:
        source = self.kept or self.reader
        return source.latest(now, site=site, node=node)

    def nodes(self, now: datetime) -> list[tuple[str, str]]:
        """(site, node) of every node: from memory inside the gateway, else the database's index."""
        if self.kept is None:
            return self.reader.nodes()
        return [(x.site, x.node) for x in self.kept.latest(now)]

    def limits(self, metric: str) -> list[LimitLine]:
        return limit_lines(self.web.standards, metric)
