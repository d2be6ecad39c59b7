"""The alert history as episodes: one per alert, from its raise to its all-clear, built from the
events the read seam returns (newest first) by their alert id.

An episode shows when it started and ended, its peak (the engine's worst value so far, carried by
every event), its severity, who acknowledged it and when, and whether it is still going: a monitor
reads "what happened and who saw it" without pairing raised and cleared lines by eye.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contract.metrics import unit as metric_unit
from gateway.stores.reader import AlertEvent

SEVERITY_ORDER = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class Episode:
    id: str
    site: str
    node: str
    rule: str
    metric: str
    severity: str
    start: datetime
    end: datetime | None  # None while it lasts (or its all-clear is outside the period read)
    peak: float | None
    value: float | None  # the latest event's
    limit: float | None
    unit: str
    late: bool
    acked_by: str | None
    acked_at: datetime | None
    latest: AlertEvent  # its newest event, whose sentence the page shows

    @property
    def is_ongoing(self) -> bool:
        return self.end is None


def _keys(events: list[AlertEvent]) -> list[str]:
    """Each event's episode: its alert id; for events stored before ids, the id made the same way
    from the `raised` (or first) event of its rule and node that it follows, oldest first."""
    open_by: dict[tuple[str, str, str], str] = {}
    keys: dict[int, str] = {}
    for i, e in sorted(enumerate(events), key=lambda pair: pair[1].time):
        if e.alert_id:
            keys[i] = e.alert_id
            continue
        who = (e.site, e.node, e.rule)
        if e.state == "raised" or who not in open_by:
            started = e.started or e.time
            open_by[who] = f"{e.site}.{e.node}.{e.rule}.{started:%Y%m%dT%H%M%SZ}"
        keys[i] = open_by[who]
        if e.state == "cleared":
            del open_by[who]
    return [keys[i] for i in range(len(events))]


def _unit(e: AlertEvent) -> str:
    if e.unit:
        return e.unit
    return "min" if e.metric == "status" else metric_unit(e.metric)


def episodes(events: list[AlertEvent]) -> list[Episode]:
    """Events (any order) grouped into episodes, newest start first."""
    groups: dict[str, list[AlertEvent]] = {}
    for e, key in zip(events, _keys(events), strict=True):
        groups.setdefault(key, []).append(e)
    out = []
    for key, group in groups.items():
        group.sort(key=lambda e: e.time)
        latest = group[-1]
        cleared = next((e for e in group if e.state == "cleared"), None)
        acked = next((e for e in group if e.state == "acknowledged"), None)
        by = acked.acked_by if acked else next((e.acked_by for e in reversed(group) if e.acked_by), None)
        severities = [e.severity for e in group if e.severity in SEVERITY_ORDER]
        peaks = [e.peak for e in group if e.peak is not None]
        out.append(
            Episode(
                id=key,
                site=latest.site,
                node=latest.node,
                rule=latest.rule,
                metric=latest.metric,
                severity=max(severities, key=SEVERITY_ORDER.index) if severities else "info",
                start=min((e.started or e.time for e in group), default=group[0].time),
                end=(cleared.ended or cleared.time) if cleared else None,
                peak=peaks[-1] if peaks else None,  # the engine's running worst: the latest is the worst
                value=latest.value,
                limit=latest.limit,
                unit=_unit(latest),
                late=any(e.late for e in group),
                acked_by=by,
                acked_at=acked.time if acked else None,
                latest=latest,
            )
        )
    return sorted(out, key=lambda x: x.start, reverse=True)
