"""Answering one SensorThings request: the resource path, then the query options, over a catalogue
of the gateway's Things and Datastreams and, for Observations, one page of readings from the reader.

Things, Datastreams and their kin are few (a node's metrics), so they are sorted, paged and
expanded here. Observations are many: each page is a reader query (`ObservationQuery`) bounded by
`$top` (at most options.MAX_TOP), ordered by time, filtered in the reader's terms.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from contract.wire import EARLIEST_TS
from gateway.stores.reader import ObservationQuery, Reader, StreamInfo
from gateway.timerange import from_ms
from gateway.web.sta.entities import Catalogue, Doc, Documents, Thing
from gateway.web.sta.filter import TIME_PROPERTIES, QueryError, parse_filter, parse_orderby
from gateway.web.sta.options import Expand, Options

SETS = (
    "Things",
    "Locations",
    "HistoricalLocations",
    "Datastreams",
    "Sensors",
    "ObservedProperties",
    "Observations",
    "FeaturesOfInterest",
)
NAVIGATION: dict[str, dict[str, tuple[str, bool]]] = {
    # entity set -> navigation property -> (target set, is a single entity)
    "Things": {
        "Locations": ("Locations", False),
        "HistoricalLocations": ("HistoricalLocations", False),
        "Datastreams": ("Datastreams", False),
    },
    "Locations": {"Things": ("Things", False), "HistoricalLocations": ("HistoricalLocations", False)},
    "HistoricalLocations": {"Thing": ("Things", True), "Locations": ("Locations", False)},
    "Datastreams": {
        "Thing": ("Things", True),
        "Sensor": ("Sensors", True),
        "ObservedProperty": ("ObservedProperties", True),
        "Observations": ("Observations", False),
    },
    "Sensors": {"Datastreams": ("Datastreams", False)},
    "ObservedProperties": {"Datastreams": ("Datastreams", False)},
    "Observations": {"Datastream": ("Datastreams", True), "FeatureOfInterest": ("FeaturesOfInterest", True)},
    "FeaturesOfInterest": {"Observations": ("Observations", False)},
}
PROPERTIES: dict[str, frozenset[str]] = {
    "Things": frozenset({"name", "description", "properties"}),
    "Locations": frozenset({"name", "description", "encodingType", "location"}),
    "HistoricalLocations": frozenset({"time"}),
    "Datastreams": frozenset(
        {
            "name",
            "description",
            "observationType",
            "unitOfMeasurement",
            "observedArea",
            "phenomenonTime",
            "resultTime",
            "properties",
        }
    ),
    "Sensors": frozenset({"name", "description", "encodingType", "metadata", "properties"}),
    "ObservedProperties": frozenset({"name", "definition", "description", "properties"}),
    "Observations": frozenset({"phenomenonTime", "resultTime", "result", "resultQuality", "parameters"}),
    "FeaturesOfInterest": frozenset({"name", "description", "encodingType", "feature"}),
}
_ORDERABLE = frozenset({"id", "name", "description"})
_PATH = re.compile(r"^(?P<set>[A-Za-z]+)(?:\((?P<id>'(?:[^']|'')*'|\d+)\))?(?:/(?P<nav>[A-Za-z]+))?$")
_TICK = timedelta(milliseconds=1)
MAX_OBSERVATIONS = 10_000
"""Observations one request may ask the reader for, expansions included: `$top` bounds a page, and
this bounds a page of Things each expanding Datastreams/Observations."""


class NotFound(LookupError):
    """No such entity set, entity or navigation property (HTTP 404)."""


@dataclass(frozen=True)
class Streams:
    """The observations of some Datastreams, paged one reader query at a time."""

    streams: tuple[StreamInfo, ...]
    at: datetime | None = None  # one observation only, by its id


Key = Any  # a Thing, a StreamInfo, a metric name, or (StreamInfo, Row) for an Observation


class Request:
    """One request: the catalogue as it is now, the documents, the reader for observations."""

    def __init__(self, reader: Reader, cat: Catalogue, docs: Documents, now: datetime) -> None:
        self.reader = reader
        self.cat = cat
        self.docs = docs
        self.now = now
        self.budget = MAX_OBSERVATIONS

    # the resource path

    def answer(self, path: str, options: Options, url: Callable[[Options], str]) -> Doc:
        """The document for `path` (below the service root) with `options`; `url` makes the next
        page's address from its options."""
        match = _PATH.match(path)
        if match is None:
            raise NotFound(f"{path!r} is not an entity set, an entity or a navigation below one")
        name, ident, nav = match["set"], match["id"], match["nav"]
        if name not in SETS:
            raise NotFound(f"no entity set {name!r}; the sets are {', '.join(SETS)}")
        if ident is None:
            if nav is not None:
                raise NotFound(f"{name}/{nav}: name one entity first, {name}('id')/{nav}")
            return self.collection(name, self.members(name), options, url)
        key = self.find(name, ident[1:-1].replace("''", "'") if ident.startswith("'") else ident)
        if nav is None:
            return self.entity(name, key, options)
        if nav not in NAVIGATION[name]:
            navs = ", ".join(NAVIGATION[name])
            raise NotFound(f"{name} has no navigation property {nav!r}; it has {navs}")
        target, single = NAVIGATION[name][nav]
        related = self.related(name, key, nav)
        if single:
            return self.entity(target, related, options)
        return self.collection(target, related, options, url)

    def members(self, name: str) -> list[Key] | Streams:
        things = list(self.cat.things.values())
        streams = list(self.cat.streams.values())
        if name == "Things":
            return list(things)
        if name == "Locations":
            return [t for t in things if t.has_location]
        if name in ("Datastreams", "Sensors", "FeaturesOfInterest"):
            return streams
        if name == "ObservedProperties":
            return list(dict.fromkeys(s.metric for s in streams))
        if name == "Observations":
            return Streams(tuple(streams))
        return []  # HistoricalLocations: a node's past positions are not kept

    def find(self, name: str, ident: str) -> Key:
        found: Key = None
        if name in ("Things", "Locations"):
            found = self.cat.things.get(ident)
            if name == "Locations" and found is not None and not found.has_location:
                found = None
        elif name in ("Datastreams", "Sensors", "FeaturesOfInterest"):
            found = self.cat.streams.get(ident)
        elif name == "ObservedProperties":
            found = ident if any(s.metric == ident for s in self.cat.streams.values()) else None
        elif name == "Observations":
            found = self._observation(ident)
        if found is None:
            raise NotFound(f"no {name}('{ident}')")
        return found

    def _observation(self, ident: str) -> Key:
        stream, _, ms = ident.rpartition(".")
        s = self.cat.streams.get(stream)
        if s is None or not ms.isascii() or not ms.isdigit() or len(ms) > 14:
            return None
        at = from_ms(int(ms))  # 14 digits at most: within datetime's range
        if not EARLIEST_TS <= at <= self.now:  # no reading there; InfluxDB refuses times past 2262
            return None
        rows = self.reader.observations(ObservationQuery(s.site, s.node, s.metric, at - _TICK, at, limit=1))
        return (s, rows[0]) if rows else None

    def related(self, name: str, key: Key, nav: str) -> Key:
        if name == "Things":
            thing: Thing = key
            if nav == "Locations":
                return [thing] if thing.has_location else []
            if nav == "Datastreams":
                return list(thing.streams)
            return []
        if name == "Locations":
            return [key] if nav == "Things" else []
        if name == "Datastreams":
            s: StreamInfo = key
            if nav == "Thing":
                return self.cat.thing_of(s)
            if nav == "ObservedProperty":
                return s.metric
            return Streams((s,)) if nav == "Observations" else s
        if name in ("Sensors",):
            return [key]
        if name == "ObservedProperties":
            return [s for s in self.cat.streams.values() if s.metric == key]
        if name == "FeaturesOfInterest":
            return Streams((key,))
        if name == "Observations":
            return key[0]
        raise NotFound(f"{name} has no navigation property {nav!r}")

    # documents

    def document(self, name: str, key: Key) -> Doc:
        d = self.docs
        if name == "Things":
            return d.thing(key)
        if name == "Locations":
            return d.location(key)
        if name == "Datastreams":
            return d.datastream(self.cat, key)
        if name == "Sensors":
            return d.sensor(key)
        if name == "ObservedProperties":
            return d.observed_property(key)
        if name == "FeaturesOfInterest":
            return d.feature(self.cat, key)
        if name == "Observations":
            s, row = key
            return d.observation(s, row, self.cat.thing_of(s).visits)
        raise NotFound(f"no {name}")

    def entity(self, name: str, key: Key, options: Options) -> Doc:
        if options.filter is not None or options.orderby is not None or options.asked_top or options.skip:
            raise QueryError("$filter, $orderby, $top and $skip apply to collections, not to one entity")
        return self._shaped(name, key, options)

    def _shaped(self, name: str, key: Key, options: Options) -> Doc:
        doc = self.document(name, key)
        for expand in options.expand:
            if expand.nav not in NAVIGATION[name]:
                raise QueryError(f"$expand: {name} has no navigation property {expand.nav!r}")
            target, single = NAVIGATION[name][expand.nav]
            related = self.related(name, key, expand.nav)
            if single:
                doc[expand.nav] = self.entity(target, related, expand.options)
            else:
                link = doc.get(f"{expand.nav}@iot.navigationLink", "")
                inner = self.collection(target, related, expand.options, functools.partial(_link, link))
                doc[expand.nav] = inner["value"]
                for extra in ("@iot.count", "@iot.nextLink"):
                    if extra in inner:
                        doc[expand.nav + extra] = inner[extra]
        return _select(name, doc, options)

    def collection(
        self, name: str, members: list[Key] | Streams, options: Options, url: Callable[[Options], str]
    ) -> Doc:
        if isinstance(members, Streams):
            # one more than the page: whether a next page exists, without counting them all
            keys = self._observations(members, replace(options, top=options.top + 1))
            more, keys = len(keys) > options.top, keys[: options.top]
        else:
            if options.filter is not None:
                raise QueryError(f"$filter is supported on Observations only, not on {name}")
            everything = self._ordered(name, members, options)
            keys = everything[options.skip : options.skip + options.top]
            more = options.skip + options.top < len(everything)
        out: Doc = {}
        if options.count:
            out["@iot.count"] = self._count(members, options)
        if more and options.top > 0:  # `$top=0` asks for a count alone: no page to follow
            out["@iot.nextLink"] = url(replace(options, skip=options.skip + options.top, asked_top=True))
        out["value"] = [self._shaped(name, k, replace(options, filter=None, orderby=None)) for k in keys]
        return out

    def _ordered(self, name: str, members: list[Key], options: Options) -> list[Key]:
        if options.orderby is None:
            return list(members)
        docs = [(self.document(name, k), k) for k in members]
        ordered = list(docs)
        for prop, descending in reversed(parse_orderby(options.orderby, _ORDERABLE)):
            column = "@iot.id" if prop == "id" else prop
            ordered.sort(key=functools.partial(_text_of, column), reverse=descending)
        return [k for _, k in ordered]

    # observations

    def _query(self, s: StreamInfo, options: Options, newest_first: bool) -> ObservationQuery:
        condition = parse_filter(options.filter) if options.filter is not None else None
        return ObservationQuery(
            s.site, s.node, s.metric, EARLIEST_TS - _TICK, self.now, condition, newest_first
        )

    def _newest_first(self, members: Streams, options: Options) -> bool:
        if options.orderby is None:
            return False
        order = parse_orderby(options.orderby, TIME_PROPERTIES | {"id"})
        if len(members.streams) != 1:
            raise QueryError("$orderby on Observations needs one Datastream: Datastreams('id')/Observations")
        return order[0][1]

    def _observations(self, members: Streams, options: Options) -> list[Key]:
        newest_first = self._newest_first(members, options)
        offset, limit = options.skip, options.top
        out: list[Key] = []
        streams = members.streams
        for s in streams:
            if limit <= 0:
                break
            query = self._query(s, options, newest_first)
            self.budget -= limit
            if self.budget < 0:
                raise QueryError(
                    f"this request asks for more than {MAX_OBSERVATIONS} Observations in all; "
                    "ask for fewer in $top or in $expand(...;$top=n)"
                )
            if offset and len(streams) > 1:
                count = self.reader.count_observations(query)
                if count <= offset:
                    offset -= count
                    continue
            rows = self.reader.observations(replace(query, limit=limit, offset=offset))
            offset, limit = 0, limit - len(rows)
            out += [(s, r) for r in rows]
        return out

    def _count(self, members: list[Key] | Streams, options: Options) -> int:
        if not isinstance(members, Streams):
            return len(members)
        return sum(self.reader.count_observations(self._query(s, options, False)) for s in members.streams)


def _text_of(column: str, pair: tuple[Doc, Key]) -> str:
    return str(pair[0].get(column) or "")


def _link(base: str, options: Options) -> str:
    return base + "?" + urlencode(query_of(options))


def query_of(options: Options) -> list[tuple[str, str]]:
    """The query string that asks for these options again (the next page's)."""
    out = [("$top", str(options.top)), ("$skip", str(options.skip))]
    if options.count:
        out.append(("$count", "true"))
    if options.select is not None:
        out.append(("$select", ",".join(options.select)))
    if options.filter is not None:
        out.append(("$filter", options.filter))
    if options.orderby is not None:
        out.append(("$orderby", options.orderby))
    if options.expand:
        out.append(("$expand", ",".join(_expand_text(e) for e in options.expand)))
    return out


def _expand_text(e: Expand) -> str:
    inner = [f"{k}={v}" for k, v in query_of(e.options) if (k, v) not in (("$top", "100"), ("$skip", "0"))]
    return e.nav + (f"({';'.join(inner)})" if inner else "")


def _select(name: str, doc: Doc, options: Options) -> Doc:
    if options.select is None:
        return doc
    allowed = PROPERTIES[name] | set(NAVIGATION[name]) | {"id", "selfLink"}
    out: Doc = {}
    for prop in options.select:
        if prop not in allowed:
            raise QueryError(f"$select: {name} has no property {prop!r}")
        if prop == "id":
            out["@iot.id"] = doc["@iot.id"]
        elif prop == "selfLink":
            out["@iot.selfLink"] = doc["@iot.selfLink"]
        elif prop in NAVIGATION[name]:
            out[f"{prop}@iot.navigationLink"] = doc[f"{prop}@iot.navigationLink"]
        elif prop in doc:
            out[prop] = doc[prop]
    for expand in options.expand:  # an expanded navigation stays, selected or not
        for key in (expand.nav, expand.nav + "@iot.count", expand.nav + "@iot.nextLink"):
            if key in doc:
                out[key] = doc[key]
    return out
