"""What every request handler needs, handed in once when the app is made (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from contract.i18n import Texts
from gateway.alerts.messages import rule_name
from gateway.alerts.store import AlertStore
from gateway.config import WebConfig
from gateway.observations.accounts import Accounts
from gateway.observations.records import FieldRecords
from gateway.observations.store import ObservationStore
from gateway.stores.reader import AlertEvent, Latest, Reader
from gateway.web.entries import Cards, Entries
from gateway.web.kept import HourlyMeans, KeptAlerts, KeptLatest, per_site
from gateway.web.levels import LimitLine, limit_lines
from gateway.web.status import StatusBoard
from gateway.web.views import pm2_5_limits


@dataclass(frozen=True, slots=True)
class Upstream:
    """A difference rule's pair: `node`'s `metric` is judged against `reference`, upstream (at the
    rule's `sites`, None: any). The node's chart overlays the reference's series."""

    rule: str
    node: str
    reference: str
    metric: str
    sites: tuple[str, ...] | None = None
    # the rule's own name in each language (`title`), if given; not part of the pair's hash
    title: dict[str, str] | None = field(default=None, hash=False)

    def name(self, site: str, t: Texts) -> str:
        """The rule as a person reads it, as its messages name it (gateway.alerts.messages)."""
        params = {"metric": self.metric, "reference": self.reference, "site": site, "title": self.title}
        return rule_name({"msg_id": "alert.difference.raised", "msg_params": params, "rule": self.rule}, t)

    def pairs(self, site: str, node: str, metric: str) -> bool:
        return (node, metric) == (self.node, self.metric) and (self.sites is None or site in self.sites)


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
    entries: Entries = field(default_factory=Entries)  # the JSON API's node entries, kept serialised
    cards: Cards = field(default_factory=Cards)  # the overview's sensor cards, kept rendered
    observations: ObservationStore | None = None  # observers' codes; None: observations not taken here
    records: FieldRecords | None = None  # the write side of observations, decisions and visits
    accounts: Accounts | None = None  # monitor accounts; None: no login on this dashboard
    alerts: AlertStore | None = None  # the gateway's alert store: acknowledgement links; None: none here
    upstreams: tuple[Upstream, ...] = ()  # the difference rules' pairs, for the charts
    kept_alerts: KeptAlerts | None = None  # the active alerts, following the gateway's alert store

    def upstream(self, site: str, node: str, metric: str) -> Upstream | None:
        """The first difference rule that judges this chart against an upstream node."""
        return next((u for u in self.upstreams if u.pairs(site, node, metric)), None)

    def latest(self, now: datetime, site: str | None = None, node: str | None = None) -> list[Latest]:
        source = self.kept or self.reader
        return source.latest(now, site=site, node=node)

    def active_alerts(
        self, now: datetime, site: str | None = None, node: str | None = None
    ) -> list[AlertEvent]:
        if self.kept_alerts is None:
            return self.reader.active_alerts(now, site=site, node=node)
        return self.kept_alerts.active(now, site=site, node=node)

    def alert_counts(self, now: datetime) -> tuple[list[AlertEvent], dict[str, int]]:
        """Every active alert, newest first, and how many each site has."""
        if self.kept_alerts is None:
            active = self.reader.active_alerts(now)
            return active, per_site(active)
        return self.kept_alerts.with_counts(now)

    def nodes(self, now: datetime) -> list[tuple[str, str]]:
        """(site, node) of every node: from memory inside the gateway, else the database's index."""
        if self.kept is None:
            return self.reader.nodes()
        return [(x.site, x.node) for x in self.kept.latest(now)]

    def limits(self, metric: str) -> list[LimitLine]:
        return limit_lines(self.web.standards, metric)

    def pm2_5_limits(self) -> tuple[float, ...]:
        """The chosen standards' short-term PM2.5 limits, by which a card tells a spike (`is_spike`)."""
        return pm2_5_limits(self.web.standards)
