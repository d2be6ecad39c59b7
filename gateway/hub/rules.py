"""Rules the hub runs over what its sites forwarded: the ones no single site can, chiefly a
difference rule whose upstream reference is at another site, of another jurisdiction
(`reference_site`, docs/region.md). The hub's alert events are stored as a site's are
(`alert_event`, under the downstream site) and a rule registered with `hub warn-rule` warns the
neighbour through the warning desk, as a site's forwarded alert does.

The same engine as at a site (gateway/alerts/engine.py), fed the readings of each batch once the
batch is stored. At start its windows are refilled from PostgreSQL (the last `history_s`); the
machines' state is not kept across a restart, so an alert active when the hub stops is raised
again, under a new id, if the difference still holds.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from contract.clock import Clock
from contract.wire import ReadingPayload
from gateway.alerts.engine import Engine
from gateway.alerts.rules import AnyRule
from gateway.stores.postgres_hub import HubStore

log = logging.getLogger(__name__)


class HubRules:
    def __init__(self, rules: list[AnyRule], *, clock: Clock, late_after_s: float = 900.0) -> None:
        self.engine = Engine(rules, clock=clock, late_after_s=late_after_s)
        self._clock = clock

    @property
    def is_empty(self) -> bool:
        return not self.engine.rules

    def preload(self, store: HubStore) -> int:
        """Refill the windows from what the hub stored; returns how many values."""
        metrics = self.engine.windowed_metrics
        if self.is_empty or not metrics:
            return 0
        since = self._clock() - timedelta(seconds=self.engine.history_s)
        count = 0
        for site, node, ts, values in store.recent_values(since, metrics):
            for metric, value in values.items():
                self.engine.preload(site, node, metric, int(ts.timestamp() * 1000), value)
                count += 1
        self.engine.finish_preload()
        log.info("hub rules: %d values of the last %.0f s reloaded", count, self.engine.history_s)
        return count

    def on_readings(self, readings: Iterable[ReadingPayload]) -> dict[str, list[dict[str, Any]]]:
        """Alert events (as `alert_event` payloads) by the site they concern."""
        if self.is_empty:
            return {}
        by_site: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.engine.on_readings(readings):
            by_site[event.site].append(event.to_json())
        return dict(by_site)

    def tick(self) -> dict[str, list[dict[str, Any]]]:
        if self.is_empty:
            return {}
        by_site: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.engine.tick():
            by_site[event.site].append(event.to_json())
        return dict(by_site)
