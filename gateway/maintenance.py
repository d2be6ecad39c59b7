"""Maintenance visits: who did what to a node, when, and which readings it touched (measurement
`maintenance`, docs/protocol.md).

A visit is stored beside the readings and never changes them. The readings a visit marks (the
minutes a turbidity window was out of the water, a sensor being moved) are marked when they are
read, by the window stored with the visit: a reading's own `flags` are what the node signed, so a
gateway-side mark is a separate thing (the export's `maintenance` column, the report's field
records section). A point is never overwritten: a second visit of the same kind at the same node
and millisecond is refused, and a visit recorded by mistake is corrected by another visit's note.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from contract.wire import format_ts
from gateway.points import format_line
from gateway.stores.base import Store
from gateway.stores.reader import Reader, Row, Trace
from gateway.timerange import QueryArgumentError, format_time, from_ms

MEASUREMENT = "maintenance"
Kind = Literal["cleaned", "moved", "replaced", "calibrated", "inspected"]
KINDS: tuple[str, ...] = get_args(Kind)
REACH = timedelta(days=7)
"""How far a visit's marked window may lie from the visit: a reader looking for the marks on a
period needs only the visits up to this much either side of it."""
NOTE_MAX = 500
BY_MAX = 64
FUTURE_SLACK = timedelta(minutes=5)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Visit:
    site: str
    node: str
    kind: str
    at: datetime
    by: str
    note: str
    flag_from: datetime | None  # the marked window (flag_from, flag_to]: None, nothing is marked
    flag_to: datetime | None
    recorded: datetime  # when the gateway was told, by its clock
    entered_by: str | None = None  # the monitor account that recorded it from the dashboard

    def marks(self, ts: datetime) -> bool:
        """The one range rule (docs/protocol.md): readings stamped in (flag_from, flag_to]."""
        return self.flag_from is not None and self.flag_to is not None and self.flag_from < ts <= self.flag_to

    def to_line(self) -> str:
        fields: dict[str, str | None] = {
            "by": self.by,
            "note": self.note,
            "flag_from": format_ts(self.flag_from) if self.flag_from else None,
            "flag_to": format_ts(self.flag_to) if self.flag_to else None,
            "recorded": format_ts(self.recorded),
            "entered_by": self.entered_by,
        }
        tags = {"site": self.site, "node": self.node, "kind": self.kind}
        return format_line(MEASUREMENT, tags, fields, self.at)

    def to_json(self) -> dict[str, str | None]:
        extra = {} if self.entered_by is None else {"entered_by": self.entered_by}
        return {
            "site": self.site,
            "node": self.node,
            "kind": self.kind,
            "at": format_time(self.at),
            "by": self.by,
            "note": self.note,
            "flag_from": format_time(self.flag_from) if self.flag_from else None,
            "flag_to": format_time(self.flag_to) if self.flag_to else None,
            "recorded": format_time(self.recorded),
            **extra,
        }


def check(visit: Visit, now: datetime) -> None:
    """Refuse what cannot be a record (the CLI exits 2 and nothing is written)."""
    if visit.kind not in KINDS:
        raise QueryArgumentError(f"--kind {visit.kind!r} is not one of {', '.join(KINDS)}")
    if visit.at > now + FUTURE_SLACK:
        raise QueryArgumentError(f"--at {format_time(visit.at)} is in the future")
    if not visit.by.strip() or len(visit.by) > BY_MAX or not visit.by.isprintable():
        raise QueryArgumentError(f"--by must be a name of 1 to {BY_MAX} printable characters")
    if len(visit.note) > NOTE_MAX or not visit.note.replace("\n", " ").isprintable():
        raise QueryArgumentError(f"--note must be at most {NOTE_MAX} printable characters")
    if (visit.flag_from is None) != (visit.flag_to is None):
        raise QueryArgumentError("--flag-from and --flag-to go together")
    if visit.flag_from is not None and visit.flag_to is not None:
        if visit.flag_to <= visit.flag_from:
            raise QueryArgumentError("--flag-to must be after --flag-from")
        if visit.flag_from < visit.at - REACH or visit.flag_to > visit.at + REACH:
            raise QueryArgumentError(
                f"the marked window must lie within {REACH.days} days of the visit (--at)"
            )


class AlreadyRecorded(QueryArgumentError):
    """A visit of this kind at this node and millisecond is stored: it would be replaced."""


def record(store: Store, reader: Reader, visit: Visit) -> None:
    """Write a checked visit unless the same (kind, node, millisecond) is stored: the CLI's and the
    dashboard's one way in, so both refuse the same things."""
    same = visits(reader, visit.site, visit.at - _MS, visit.at, [visit.node])
    if any(v.kind == visit.kind and v.at == visit.at for v in same):
        raise AlreadyRecorded(
            f"a visit {visit.kind} at {visit.node} at {format_time(visit.at)} is already recorded; "
            "nothing stored is replaced (give another time, or add a note in a new visit)"
        )
    store.write([visit.to_line()])


def _ts(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def from_row(row: Row) -> Visit:
    at = from_ms(int(row["time"]))
    return Visit(
        site=str(row.get("site") or ""),
        node=str(row.get("node") or ""),
        kind=str(row.get("kind") or ""),
        at=at,
        by=str(row.get("by") or ""),
        note=str(row.get("note") or ""),
        flag_from=_ts(row.get("flag_from")),
        flag_to=_ts(row.get("flag_to")),
        recorded=_ts(row.get("recorded")) or at,
        entered_by=str(row["entered_by"]) if row.get("entered_by") else None,
    )


def visits(
    reader: Reader,
    site: str | None,
    start: datetime,
    end: datetime,
    nodes: Iterable[str] = (),
    *,
    trace: Trace | None = None,
) -> list[Visit]:
    """The visits made in (start, end] at a site (every site when None), oldest first."""
    rows = reader.maintenance_rows(site, list(nodes), start, end, trace=trace)
    return sorted((from_row(r) for r in rows), key=lambda v: (v.at, v.node, v.kind))


def _touches(v: Visit, start: datetime, end: datetime) -> bool:
    """The visit's marked window holds some time in (start, end]."""
    return v.flag_from is not None and v.flag_to is not None and v.flag_from < end and v.flag_to > start


def marking(
    reader: Reader, site: str | None, start: datetime, end: datetime, nodes: Iterable[str] = ()
) -> list[Visit]:
    """The visits whose marked window may touch readings in (start, end] (every site's when None)."""
    return [v for v in visits(reader, site, start - REACH, end + REACH, nodes) if _touches(v, start, end)]


def of_period(
    reader: Reader,
    site: str | None,
    start: datetime,
    end: datetime,
    nodes: Iterable[str] = (),
    *,
    trace: Trace | None = None,
) -> list[Visit]:
    """The visits a period's lists name (the report's field records, an export's side file, the
    evidence bundle): those made in (start, end] and those whose marked window holds some of its
    readings, though made just outside it (a cleaning at 00:10 on the 1st marking from 23:50 on
    the 30th belongs to both months), oldest first. Two queries, so the first one printed (a
    report prints its queries) gives exactly the visits made in the period."""
    made = visits(reader, site, start, end, nodes, trace=trace)
    near = visits(reader, site, start - REACH, end + REACH, nodes, trace=trace)
    around = [v for v in near if not start < v.at <= end and _touches(v, start, end)]
    return sorted(made + around, key=lambda v: (v.at, v.node, v.kind))


def marks_of(marking_visits: list[Visit], node: str, ts: datetime, site: str | None = None) -> list[str]:
    """The kinds of the visits that mark this node's reading stamped `ts` (`site`: when the visits
    are of several sites, whose node names may repeat)."""
    return sorted(
        {
            v.kind
            for v in marking_visits
            if v.node == node and (site is None or v.site == site) and v.marks(ts)
        }
    )
