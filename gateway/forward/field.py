"""The site's field records for the hub: its maintenance visits and the observations a monitor
accepted (with every decision on them), read back through the read seam (docs/region.md).

Visits and decisions are written by other processes than the forwarder's (`maintenance add`,
`observations accept`, the dashboard), and a visit may be entered long after the time it names,
so there is no time cursor that finds every new one: the forwarder reads them all now and then
(`[forward] field_scan_s`; they are few, a handful a node a month) and queues what it has not
queued before, or what changed since (a new decision), by comparing digests kept in the outbox.
The first scan is the backfill of the field records.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from contract.hub import ForwardedDecision, ForwardedObservation, ForwardedVisit, canonical_json
from gateway import maintenance
from gateway.observations import records
from gateway.observations.records import ALL_FROM, ALL_TO, DecisionRecord, Observation
from gateway.stores.reader import Reader

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Queued:
    kind: str  # visit | observation
    key: str  # the record's name at the site
    digest: str
    body: bytes


def visit_of(v: maintenance.Visit) -> ForwardedVisit:
    return ForwardedVisit(
        node=v.node, kind=v.kind, at=v.at, by=v.by, note=v.note, flag_from=v.flag_from,
        flag_to=v.flag_to, recorded=v.recorded, entered_by=v.entered_by,
    )  # fmt: skip


def observation_of(o: Observation, decided: list[DecisionRecord]) -> ForwardedObservation:
    """The observation without who observed (`observer` stays at the site) and with its decisions;
    validated, so a value the hub would refuse is found here (ValidationError)."""
    decisions = [ForwardedDecision.model_validate(
        {"decision": d.decision, "by": d.by, "at": d.at, "why": d.why}) for d in decided]  # fmt: skip
    return ForwardedObservation.model_validate({
        "id": o.id, "kind": o.kind, "text": o.text, "at": o.at, "node": o.node, "place": o.place,
        "lat": o.lat, "lon": o.lon, "received": o.received,
        "photo_received_sha256": o.photo_received_sha256, "photo_sha256": o.photo_sha256,
        **({"photos_received_sha256": list(o.photos_received_sha256),
            "photos_sha256": list(o.photos_sha256)} if o.has_several_photos else {}),
        **({"near_node": o.near_node} if o.near_node else {}),
        "decisions": decisions,
    })  # fmt: skip


def _queued(kind: str, key: str, doc: ForwardedVisit | ForwardedObservation) -> Queued:
    data = doc.model_dump(mode="json")
    for name in ("photos_received_sha256", "photos_sha256", "near_node"):
        # one photo or none, no node near: the document (and digest) earlier versions send, which an
        # earlier hub takes
        if data.get(name, ()) is None:
            del data[name]
    return Queued(kind, key, hashlib.sha256(canonical_json(data)).hexdigest(), canonical_json(data))


def scan(reader: Reader, site: str, seen: dict[str, str]) -> list[Queued]:
    """Every field record of `site` whose digest is not the one `seen` holds under its name."""
    found: list[Queued] = []
    for v in maintenance.visits(reader, site, ALL_FROM, ALL_TO):
        key = f"visit:{v.node}/{v.kind}/{v.at.isoformat()}"
        try:
            found.append(_queued("visit", key, visit_of(v)))
        except ValidationError as exc:  # a point no version of the site writes (edited by hand?)
            log.warning("field record %s is not one the hub takes (%s); not forwarded", key, exc)
    for o, ds in records.ever_accepted(reader, site):
        key = f"observation:{o.id}"
        try:
            found.append(_queued("observation", key, observation_of(o, ds)))
        except ValidationError as exc:
            log.warning("field record %s is not one the hub takes (%s); not forwarded", key, exc)
    return [q for q in found if seen.get(q.key) != q.digest]
