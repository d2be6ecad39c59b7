"""The SensorThings entities of one gateway, built from what the read seam and the status board know.

A Thing is a node (`<site>.<node>`), with one Location when the node has published its position.
A Datastream is one node's record of one metric (`<site>.<node>.<metric>`), and its Sensor and
FeatureOfInterest share its id: the sensor behind that metric with the calibration of the last
reading, and the air or water sampled there. ObservedProperties are the metric table's rows. An
Observation is one stored reading of one metric (`<datastream id>.<epoch ms>`); its parameters
carry everything the signature covers, so a third party can check it with the node's public key,
and its resultQuality the node's flags and the kinds of the maintenance visits marking it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from calibration import presets
from calibration.files import Calibration
from contract import verify_offline
from contract.i18n import Texts
from contract.metrics import Metric, spec
from contract.wire import format_ts
from gateway import maintenance
from gateway.config import WebConfig
from gateway.maintenance import Visit
from gateway.observations.records import Observation
from gateway.stores.reader import Row, StreamInfo
from gateway.web.status import NodeStatus

Doc = dict[str, Any]

UCUM: dict[str, str] = {
    "µg/m³": "ug/m3",
    "particles/0.1 L": "{particles}/dL",  # 0.1 L is a decilitre; the braces are UCUM's annotation
    "NTU": "{NTU}",  # UCUM has no turbidity unit: an annotated count, as UCUM advises
    "%": "%",
    "°C": "Cel",
    "hPa": "hPa",
}
"""The metric table's units (contract/metrics.py) as UCUM codes; a test checks every unit has one."""

UCUM_DEFINITION = "http://unitsofmeasure.org/ucum.html"
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
WATER = frozenset({Metric.TURBIDITY.value, Metric.WATER_TEMP.value})


@functools.cache
def _presets() -> dict[str, Calibration]:
    return {cal.id: cal for cal in (presets.load_preset(n) for n in presets.names())}


def thing_id(site: str, node: str) -> str:
    return f"{site}.{node}"


def stream_id(s: StreamInfo) -> str:
    return f"{s.site}.{s.node}.{s.metric}"


@dataclass(frozen=True, slots=True)
class Thing:
    site: str
    node: str
    status: NodeStatus | None
    streams: tuple[StreamInfo, ...]
    visits: tuple[Visit, ...] = ()  # maintenance visits, oldest first: the Thing's history
    observed: tuple[Observation, ...] = ()  # residents' observations a monitor accepted, oldest first

    @property
    def id(self) -> str:
        return thing_id(self.site, self.node)

    @property
    def has_location(self) -> bool:
        return self.status is not None and self.status.lat is not None and self.status.lon is not None


@dataclass(frozen=True)
class Catalogue:
    """Every Thing and Datastream at one moment, looked up by id."""

    things: dict[str, Thing]
    streams: dict[str, StreamInfo]

    @classmethod
    def build(
        cls,
        streams: list[StreamInfo],
        statuses: dict[tuple[str, str], NodeStatus],
        visits: list[Visit] | None = None,
        observed: list[Observation] | None = None,
    ) -> Catalogue:
        by_node: dict[tuple[str, str], list[StreamInfo]] = {}
        for s in streams:
            by_node.setdefault((s.site, s.node), []).append(s)
        done: dict[tuple[str, str], list[Visit]] = {}
        for v in visits or []:
            done.setdefault((v.site, v.node), []).append(v)
        seen: dict[tuple[str, str], list[Observation]] = {}
        for o in observed or []:
            at = o.node or o.near_node  # a position: listed on its nearest node (records.near_node)
            if o.site is not None and at is not None:
                seen.setdefault((o.site, at), []).append(o)
        things = {
            thing_id(*key): Thing(
                key[0],
                key[1],
                statuses.get(key),
                tuple(group),
                tuple(done.get(key, ())),
                tuple(seen.get(key, ())),
            )
            for key, group in sorted(by_node.items())
        }
        return cls(things, {stream_id(s): s for s in streams})

    def thing_of(self, s: StreamInfo) -> Thing:
        return self.things[thing_id(s.site, s.node)]


class Documents:
    """Entity documents as the standard writes them, with their links under `base`."""

    def __init__(self, base: str, web: WebConfig, texts: Texts) -> None:
        self.base = base.rstrip("/")
        self.web = web
        self.t = texts

    def link(self, entity_set: str, ident: str, nav: str | None = None) -> str:
        path = f"{self.base}/{entity_set}('{ident}')"
        return f"{path}/{nav}" if nav else path

    def _head(self, entity_set: str, ident: str, navs: tuple[str, ...]) -> Doc:
        doc: Doc = {"@iot.id": ident, "@iot.selfLink": self.link(entity_set, ident)}
        for nav in navs:
            doc[f"{nav}@iot.navigationLink"] = self.link(entity_set, ident, nav)
        return doc

    def _label(self, metric: str) -> str:
        return self.t(f"metric.{metric}")

    def thing(self, thing: Thing) -> Doc:
        status = thing.status
        return {
            **self._head("Things", thing.id, ("Locations", "HistoricalLocations", "Datastreams")),
            "name": thing.node,
            "description": self.t("sta.thing_description", node=thing.node, site=thing.site),
            "properties": {
                "site": thing.site,
                "node": thing.node,
                "license": {"name": self.web.licence, "url": self.web.licence_url},
                "attribution": self.web.attribution,
                "status": status.state if status else None,
                "firmware": status.version if status else None,
                # the node's maintenance history (docs/api.md): what a regulator needs to judge a step
                "maintenance": [
                    {k: val for k, val in v.to_json().items() if k not in ("site", "node")}
                    for v in thing.visits
                ],
                # what residents saw there, as a monitor accepted it (docs/api.md): the Thing's
                # history too, not Observations, which are a Datastream's measured results
                "observations": [
                    {
                        "id": o.id,
                        "kind": o.kind,
                        "text": o.text,
                        "place": o.place,  # node, or a position near it: position | map
                        "lat": o.lat,
                        "lon": o.lon,
                        "phenomenonTime": format_ts(o.at),
                        "photo": f"/observations/{o.id}/photo.jpg" if o.photo_sha256 else None,
                        "photo_sha256": o.photo_sha256,
                        # every photo, in the order sent (the first is also `photo`)
                        "photos": [
                            f"/observations/{o.id}/photos/{n}.jpg" for n in range(1, len(o.photos_sha256) + 1)
                        ],
                        "photos_sha256": list(o.photos_sha256),
                        "accepted_by": o.decided_by,
                        "accepted_at": format_ts(o.decided_at) if o.decided_at else None,
                        "why": o.why,
                    }
                    for o in thing.observed
                ],
            },
        }

    def point(self, thing: Thing) -> Doc | None:
        if not thing.has_location:
            return None
        assert thing.status is not None
        return {"type": "Point", "coordinates": [thing.status.lon, thing.status.lat]}

    def location(self, thing: Thing) -> Doc:
        return {
            **self._head("Locations", thing.id, ("Things", "HistoricalLocations")),
            "name": self.t("sta.location_name", node=thing.node),
            "description": self.t("sta.location_description", node=thing.node, site=thing.site),
            "encodingType": "application/geo+json",
            "location": self.point(thing),
        }

    def observed_property(self, metric: str) -> Doc:
        row = spec(metric)
        assert row is not None
        return {
            **self._head("ObservedProperties", metric, ("Datastreams",)),
            "name": self._label(metric),
            "definition": f"urn:minewatch:metric:{metric}",
            "description": self.t(
                "sta.property_description",
                metric=self._label(metric),
                unit=self.t.unit(metric),
                low=row.format(row.low),
                high=row.format(row.high),
            ),
            "properties": {"metric": metric, "unit": row.unit, "decimals": row.decimals},
        }

    def datastream(self, cat: Catalogue, s: StreamInfo) -> Doc:
        row = spec(s.metric)
        assert row is not None
        thing = cat.thing_of(s)
        ident = stream_id(s)
        doc: Doc = {
            **self._head("Datastreams", ident, ("Thing", "Sensor", "ObservedProperty", "Observations")),
            "name": self.t("sta.datastream_name", metric=self._label(s.metric), node=s.node),
            "description": self.t(
                "sta.datastream_description", metric=self._label(s.metric), node=s.node, site=s.site
            ),
            "observationType": MEASUREMENT,
            "unitOfMeasurement": {
                "name": row.unit,
                "symbol": UCUM[row.unit],
                "definition": UCUM_DEFINITION,
            },
            "phenomenonTime": f"{format_ts(s.first)}/{format_ts(s.last)}",
            "resultTime": f"{format_ts(s.first)}/{format_ts(s.last)}",
            "properties": {"site": s.site, "node": s.node, "metric": s.metric, "decimals": row.decimals},
        }
        area = self.point(thing)
        if area is not None:
            doc["observedArea"] = area
        return doc

    def sensor(self, s: StreamInfo) -> Doc:
        cal = _presets().get(s.cal) if s.cal else None
        model = cal.sensor.label if cal and cal.sensor.label else None
        if s.cal is None:
            calibration = self.t("sta.uncalibrated")
        else:
            calibration = s.cal + (f": {cal.description}" if cal and cal.description else "")
        properties: Doc = {"metric": s.metric, "calibration": s.cal, "model": model}
        if cal is not None:
            properties["calibration_method"] = cal.provenance.method
            properties["calibration_source"] = cal.provenance.source
            properties["calibration_valid_from"] = format_ts(cal.valid_from)
            properties["sensor_types"] = list(cal.sensor.types)
        return {
            **self._head("Sensors", stream_id(s), ("Datastreams",)),
            "name": self.t(
                "sta.sensor_name",
                model=model or self.t("sta.unknown_model"),
                metric=self._label(s.metric),
                node=s.node,
            ),
            "description": self.t("sta.sensor_description", calibration=calibration),
            "encodingType": "text/plain",
            "metadata": calibration,
            "properties": properties,
        }

    def feature(self, cat: Catalogue, s: StreamInfo) -> Doc:
        key = "sta.feature_water" if s.metric in WATER else "sta.feature_air"
        thing = cat.thing_of(s)
        return {
            **self._head("FeaturesOfInterest", stream_id(s), ("Observations",)),
            "name": self.t(key, node=s.node),
            "description": self.t("sta.feature_description", node=s.node, site=s.site),
            "encodingType": "application/geo+json",
            "feature": self.point(thing),
        }

    def observation(self, s: StreamInfo, row: Row, visits: tuple[Visit, ...] = ()) -> Doc:
        """`visits`: the node's maintenance visits (its Thing's); those whose marked window holds the
        reading name their kinds in `resultQuality.maintenance`, as the export's column does."""
        ident = f"{stream_id(s)}.{int(row['time'])}"
        stamped = datetime.fromtimestamp(int(row["time"]) / 1000, tz=UTC)
        at = format_ts(stamped)
        value = row.get(s.metric)
        return {
            **self._head("Observations", ident, ("Datastream", "FeatureOfInterest")),
            "phenomenonTime": at,
            "resultTime": at,
            "result": float(value)
            if isinstance(value, int | float) and not isinstance(value, bool)
            else None,
            "resultQuality": {
                "flags": [f for f in str(row.get("flags") or "").split(",") if f],
                "maintenance": maintenance.marks_of(list(visits), s.node, stamped, s.site),
            },
            "parameters": parameters(s.metric, row),
        }


def _number(value: Any, kind: Callable[[Any], Any]) -> Any:
    return kind(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parameters(metric: str, row: Row) -> Doc:
    """`raw`, `n`, `cal`, `seq` of the reading, and for a signed one `kid`, `sig`, `period_s` and
    `signed_text`: the exact text the signature covers (docs/protocol.md, "Signed readings"),
    rebuilt from the stored row, so anyone with the node's public key can verify the value."""
    out: Doc = {
        "raw": _number(row.get(f"{metric}_raw"), float),
        "n": _number(row.get(f"{metric}_n"), int),
        "cal": row.get(f"{metric}_cal"),
        "seq": _number(row.get("seq"), int),
        "signed": row.get("signed") is True,
    }
    if row.get("sig"):
        out["kid"] = row.get("kid")
        out["sig"] = row.get("sig")
        out["period_s"] = _number(row.get("period_s"), int)
        try:
            signed = verify_offline.canonical_bytes(verify_offline.canonical_doc(row))
            out["signed_text"] = signed.decode("utf-8")
        except (KeyError, TypeError, ValueError):
            out["signed_text"] = None  # a row that no longer holds a whole reading: verify says so
    return out
