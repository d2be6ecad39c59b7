"""Residents' observations and the monitors' decisions on them, in InfluxDB beside the readings
(measurements `observation` and `observation_decision`, docs/protocol.md), written through the
write seam and read through the read seam like the maintenance visits.

Nothing is overwritten. An observation's point is keyed by its id (a tag the phone made), so a
submission its queue sends twice lands on the same series and time: it is looked up first and
answered as already received, never written again. A decision is a new point (who, when, why); the
state shown is the latest, and every earlier one stays. Photos stay files on disk, named by the
SHA-256 of the re-encoded picture, and the point keeps both hashes of each (up to MAX_PHOTOS):
`photo_received_sha256` / `photo_sha256` name the first photo, as every version writes them, and
`photos_received_sha256` / `photos_sha256` (comma-joined, written only for two or more) name them
all, so a record of one photo is the line an earlier version writes (docs/protocol.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from contract.wire import format_ts
from gateway.points import format_line
from gateway.stores.base import Store
from gateway.stores.reader import Reader, Row, Trace
from gateway.timerange import from_ms

MEASUREMENT = "observation"
DECISIONS = "observation_decision"
KINDS = ("dust", "blasting", "trucks", "water_colour", "dead_fish", "smell", "noise", "other")
"""What a resident can report; `other` with the free text."""
PLACES = ("node", "position", "map")
"""Where an observation was made: near a node, the phone's position, or a point chosen on the map."""
Decision = Literal["accepted", "rejected"]
DECIDED = ("accepted", "rejected")
MAX_PHOTOS = 4
"""Photos one observation may carry: enough for a plume and the pit, or a dead fish and the bank."""
PHOTOS_DIR = "photos"
"""In the gateway's data directory: `<sha256>.jpg`, the re-encoded photos."""
ALL_FROM = datetime(2000, 1, 1, tzinfo=UTC)
ALL_TO = datetime(2100, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Observation:
    id: str
    observer: str  # "code:<n>" (an observer code's number) or "monitor:<name>" (a monitor account)
    kind: str
    text: str
    at: datetime  # when it was seen: the point's time
    site: str | None
    node: str | None
    lat: float | None
    lon: float | None
    received: datetime
    photo_received_sha256: str | None  # of the bytes the phone sent
    photo_sha256: str | None  # of the re-encoded photo kept and served
    state: str = "pending"  # "pending", or the latest decision
    decided_by: str | None = None
    decided_at: datetime | None = None
    why: str | None = None
    place: str = "node"  # one of PLACES
    near_node: str | None = None  # a position's nearest node of `site` within near.NEAR_M
    # every photo's hashes in order (the first is also `photo_*`): filled from the singular fields
    # for a record of one, and the singular ones from these, so either may be given
    photos_received_sha256: tuple[str, ...] = ()
    photos_sha256: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for one, many in (
            ("photo_received_sha256", "photos_received_sha256"),
            ("photo_sha256", "photos_sha256"),
        ):
            first, every = getattr(self, one), tuple(getattr(self, many))
            if not every and first is not None:
                every = (first,)
            if every and first is None:
                object.__setattr__(self, one, every[0])
            elif every and first != every[0]:
                raise ValueError(f"{one} must be the first of {many}")
            object.__setattr__(self, many, every)

    @property
    def has_several_photos(self) -> bool:
        return max(len(self.photos_received_sha256), len(self.photos_sha256)) > 1

    def to_line(self) -> str:
        tags = {"id": self.id, "kind": self.kind, "site": self.site or "", "node": self.node or ""}
        fields: dict[str, str | float | None] = {
            "observer": self.observer,
            "text": self.text,
            "place": self.place,
            "lat": self.lat,
            "lon": self.lon,
            "near_node": self.near_node,
            "received": format_ts(self.received),
            "photo_received_sha256": self.photo_received_sha256,
            "photo_sha256": self.photo_sha256,
        }
        if self.has_several_photos:  # one photo: the line earlier versions write, byte for byte
            fields["photos_received_sha256"] = ",".join(self.photos_received_sha256)
            fields["photos_sha256"] = ",".join(self.photos_sha256)
        return format_line(MEASUREMENT, tags, fields, self.at)

    def to_json(self) -> dict[str, str | float | list[str] | None]:
        """As the export's side file and the evidence bundle carry it: everything but who the
        observer is (a code's number or an account is not for the public)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "at": format_ts(self.at),
            "site": self.site,
            "node": self.node,
            "place": self.place,
            "lat": self.lat,
            "lon": self.lon,
            "near_node": self.near_node,
            "received": format_ts(self.received),
            "photo_received_sha256": self.photo_received_sha256,
            "photo_sha256": self.photo_sha256,
            "photos_received_sha256": list(self.photos_received_sha256),
            "photos_sha256": list(self.photos_sha256),
            "state": self.state,
            "decided_by": self.decided_by,
            "decided_at": format_ts(self.decided_at) if self.decided_at else None,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    observation: str
    decision: str
    by: str
    at: datetime
    why: str

    def to_line(self) -> str:
        tags = {"id": self.observation, "decision": self.decision}
        return format_line(DECISIONS, tags, {"by": self.by, "why": self.why}, self.at)

    def to_json(self) -> dict[str, str]:
        return {"decision": self.decision, "by": self.by, "at": format_ts(self.at), "why": self.why}


class AlreadyDecided(ValueError):
    """A decision on this observation is already stored at this millisecond: not replaced."""


def _ts(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _hashes(value: object) -> tuple[str, ...]:
    return tuple(h for h in value.split(",") if h) if isinstance(value, str) else ()


def _observation(row: Row) -> Observation:
    at = from_ms(int(row["time"]))
    return Observation(
        id=str(row["id"]),
        observer=str(row.get("observer") or ""),
        kind=str(row.get("kind") or ""),
        text=str(row.get("text") or ""),
        at=at,
        site=_text(row.get("site")),
        node=_text(row.get("node")),
        lat=_float(row.get("lat")),
        lon=_float(row.get("lon")),
        received=_ts(row.get("received")) or at,
        photo_received_sha256=_text(row.get("photo_received_sha256")),
        photo_sha256=_text(row.get("photo_sha256")),
        photos_received_sha256=_hashes(row.get("photos_received_sha256")),
        photos_sha256=_hashes(row.get("photos_sha256")),
        place=str(row.get("place") or ("node" if row.get("node") else "position")),
        near_node=_text(row.get("near_node")),
    )


def _decision(row: Row) -> DecisionRecord:
    return DecisionRecord(
        str(row["id"]),
        str(row.get("decision") or ""),
        str(row.get("by") or ""),
        from_ms(int(row["time"])),
        str(row.get("why") or ""),
    )


IDS_BY_NAME = 100
"""Up to this many observations, their decisions are asked for by id; more, all are read."""


def decisions_of(
    reader: Reader, ids: Iterable[str] | None = None, *, trace: Trace | None = None
) -> dict[str, list[DecisionRecord]]:
    """Every decision (or those on `ids`), oldest first per observation."""
    out: dict[str, list[DecisionRecord]] = {}
    wanted = None if ids is None else sorted(set(ids))
    named = wanted if wanted is not None and len(wanted) <= IDS_BY_NAME else None
    rows = reader.decision_rows(ALL_FROM, ALL_TO, ids=named, trace=trace)
    if wanted is not None and named is None:
        keep = set(wanted)
        rows = [r for r in rows if r.get("id") in keep]
    for d in sorted((_decision(r) for r in rows), key=lambda d: (d.at, d.decision)):
        out.setdefault(d.observation, []).append(d)
    return out


def listed(
    reader: Reader,
    state: str | None = None,
    start: datetime = ALL_FROM,
    end: datetime = ALL_TO,
    *,
    site: str | None = None,
    nodes: Iterable[str] = (),
    trace: Trace | None = None,
) -> list[Observation]:
    """Observations made in (start, end], oldest first, each with its latest decision; `state`
    keeps only those in it ("pending": none yet). With `site`, those of the site (at its nodes, or
    given as a position near them) and those of no site; with `nodes`, only those at them or given
    as a position nearest to them (`near_node`)."""
    wanted = list(nodes)
    rows = reader.observation_rows(site, start, end, trace=trace)
    found = [_observation(r) for r in rows]
    if wanted:
        found = [o for o in found if (o.node or o.near_node) in wanted]
    decided = decisions_of(reader, [o.id for o in found], trace=trace) if found else {}
    out = []
    for o in sorted(found, key=lambda o: (o.at, o.id)):
        last = decided.get(o.id, [])
        if last:
            d = last[-1]
            o = replace(o, state=d.decision, decided_by=d.by, decided_at=d.at, why=d.why)
        if state is None or o.state == state:
            out.append(o)
    return out


def find(reader: Reader, obs_id: str) -> Observation | None:
    rows = reader.observation_rows(None, ALL_FROM, ALL_TO, ids=[obs_id])
    if not rows:
        return None
    o = _observation(rows[0])
    last = decisions_of(reader, [o.id]).get(o.id, [])
    if last:
        d = last[-1]
        o = replace(o, state=d.decision, decided_by=d.by, decided_at=d.at, why=d.why)
    return o


class FieldRecords:
    """The write side: observations and decisions through `store`, photos in `photos`; `reader`
    reads back what `store` wrote (the lookups that keep a point from being written twice)."""

    def __init__(self, store: Store, reader: Reader, photos: Path) -> None:
        self.store = store
        self.reader = reader
        self.photos = photos
        self._lock = threading.Lock()  # one lookup-then-write at a time in this process

    def photo(self, obs: Observation, n: int = 1) -> Path | None:
        """The file of the observation's `n`th photo (from 1), None when it has fewer."""
        if not 1 <= n <= len(obs.photos_sha256):
            return None
        return self.photos / f"{obs.photos_sha256[n - 1]}.jpg"

    def keep_photo(self, sha256: str, data: bytes) -> None:
        self.photos.mkdir(parents=True, exist_ok=True)
        target = self.photos / f"{sha256}.jpg"
        if not target.exists():  # named by its hash: the same bytes, whoever sent them
            tmp = target.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(target)

    def add(self, obs: Observation, photos: Sequence[bytes] | bytes | None = None) -> bool:
        """Store a new observation (its photos first, each under its name in `obs.photos_sha256`,
        so a point never names a missing file); False when its id was already received (nothing
        is written then). One photo may be given as its bytes alone."""
        kept = [photos] if isinstance(photos, bytes) else list(photos or ())
        if kept and len(kept) != len(obs.photos_sha256):
            raise ValueError(f"{len(kept)} photos given for an observation naming {len(obs.photos_sha256)}")
        with self._lock:
            if self.reader.observation_rows(None, ALL_FROM, ALL_TO, ids=[obs.id]):
                return False
            for sha, data in zip(obs.photos_sha256, kept, strict=False):
                self.keep_photo(sha, data)
            self.store.write([obs.to_line()])
        return True

    def decide(self, obs_id: str, decision: Decision, by: str, why: str, now: datetime) -> DecisionRecord:
        """A new decision point; KeyError when there is no such observation, AlreadyDecided when a
        decision on it is stored at this very millisecond (it would be replaced)."""
        if decision not in DECIDED:
            raise ValueError(f"a decision is one of {', '.join(DECIDED)}")
        record = DecisionRecord(obs_id, decision, by, now, why)
        with self._lock:
            if not self.reader.observation_rows(None, ALL_FROM, ALL_TO, ids=[obs_id]):
                raise KeyError(obs_id)
            same = self.reader.decision_rows(now - _MS, now, ids=[obs_id])
            if any(from_ms(int(r["time"])) == now and r.get("decision") == decision for r in same):
                raise AlreadyDecided(f"a decision on {obs_id} is already stored at {format_ts(now)}")
            self.store.write([record.to_line()])
        return record

    def close(self) -> None:
        self.reader.close()
        self.store.close()


def ever_accepted(
    reader: Reader, site: str | None = None, *, trace: Trace | None = None
) -> list[tuple[Observation, list[DecisionRecord]]]:
    """The observations (of `site`, as `listed` reads them) a monitor has accepted at some time,
    each with every decision on it, oldest first: what a site forwards to its hub (a later
    rejection goes too, so the hub shows the latest decision as the site does)."""
    decided = decisions_of(reader, trace=trace)
    wanted = {i for i, ds in decided.items() if any(d.decision == "accepted" for d in ds)}
    if not wanted:
        return []
    rows = reader.observation_rows(site, ALL_FROM, ALL_TO, trace=trace)
    found = sorted((_observation(r) for r in rows if r.get("id") in wanted), key=lambda o: (o.at, o.id))
    out = []
    for o in found:
        ds = decided[o.id]
        d = ds[-1]
        out.append((replace(o, state=d.decision, decided_by=d.by, decided_at=d.at, why=d.why), ds))
    return out
