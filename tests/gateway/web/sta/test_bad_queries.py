"""Bad SensorThings queries are the standard's 400 (or 404) with a message, never a 500: hand-picked
cases, then hypothesis over random paths and query strings sent to the real server."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway.web.sta.conftest import StaSite

OBS = "/Datastreams('tsagaan.haul-road.pm2_5')/Observations"


@pytest.mark.parametrize(
    ("path", "query", "status", "words"),
    [
        (OBS, "?$filter=result gt", 400, "not OData"),
        (OBS, "?$filter=name eq 'x'", 400, "cannot be filtered on"),
        (OBS, "?$filter=result gt 'x'", 400, "with a number"),
        (OBS, "?$filter=phenomenonTime gt 5", 400, "with a time"),
        (OBS, "?$filter=result gt 1e999", 400, "finite"),
        (OBS, "?$filter=startswith(result, 'a')", 400, "comparisons"),
        (OBS, "?$filter=substringof('a', result)", 400, "Unknown function"),
        (OBS, "?$top=-1", 400, "$top"),
        (OBS, "?$skip=x", 400, "$skip"),
        (OBS, "?$count=maybe", 400, "$count"),
        (OBS, "?$orderby=result desc", 400, "cannot be ordered on"),
        (OBS, "?$select=nothing", 400, "no property"),
        (OBS, "?$expand=Thing", 400, "no navigation property"),
        (OBS, "?$resultFormat=dataArray", 400, "not supported"),
        ("/Observations", "?$orderby=phenomenonTime", 400, "one Datastream"),
        ("/Things", "?$filter=result gt 1", 400, "Observations only"),
        ("/Things", "?$expand=Datastreams(($top=1)", 400, "unbalanced"),
        (
            "/Datastreams",
            "?$expand=Observations($top=1000;$expand=Datastream/Observations($top=1000))",
            400,
            "more than 10000",
        ),
        ("/Things('nope')", "", 404, "no Things"),
        ("/Observations('tsagaan.haul-road.pm2_5.999999999999999')", "", 404, "no Observations"),
        ("/Things('tsagaan.haul-road')/Nothing", "", 404, "no navigation property"),
        ("/Gadgets", "", 404, "no entity set"),
        ("/Observations('tsagaan.haul-road.pm2_5.99999999999999')", "", 404, "no Observations"),
    ],
)
def test_a_bad_query_is_a_4xx_with_the_reason(
    sta_site: StaSite, path: str, query: str, status: int, words: str
) -> None:
    code, doc = sta_site.get(urllib.parse.quote(path, safe="/()'"), urllib.parse.quote(query, safe="?$=&,"))
    assert (code, doc["code"], doc["type"]) == (status, status, "error")
    assert words in doc["message"]


def test_it_is_read_only(sta_site: StaSite) -> None:
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        req = urllib.request.Request(f"{sta_site.url}/Things", data=b"{}", method=method)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(req, timeout=10)
        assert caught.value.code == 405
        assert json.loads(caught.value.read())["code"] == 405
    head = urllib.request.Request(f"{sta_site.url}/Things", method="HEAD")
    with urllib.request.urlopen(head, timeout=10) as resp:
        assert resp.status == 200


def test_expand_select_and_orderby_shape_the_answer(sta_site: StaSite) -> None:
    query = "?$select=id,name&$orderby=name desc&$expand=Datastreams($select=id;$top=1;$count=true)"
    code, doc = sta_site.get("/Things", urllib.parse.quote(query, safe="?$=&,;()"))
    assert code == 200
    assert [t["@iot.id"] for t in doc["value"]] == ["tsagaan.river-down", "tsagaan.haul-road"]
    haul = doc["value"][1]
    assert set(haul) == {
        "@iot.id",
        "name",
        "Datastreams",
        "Datastreams@iot.count",
        "Datastreams@iot.nextLink",
    }
    assert (
        haul["Datastreams"] == [{"@iot.id": "tsagaan.haul-road.pm2_5"}] and haul["Datastreams@iot.count"] == 2
    )
    code, doc = sta_site.get(
        "/Things('tsagaan.haul-road')",
        urllib.parse.quote("?$expand=Datastreams/Observations($top=2)", safe="?$=()/"),
    )
    assert code == 200 and [len(d["Observations"]) for d in doc["Datastreams"]] == [2, 2]


TOKENS = st.sampled_from(
    [
        "result", "phenomenonTime", "resultTime", "id", "name", "Datastream/id",
        "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "in", "has", "add",
        "(", ")", ",", "5", "-3.5", "1e400", "0", "null", "true", "'x'", "''", "'",
        "2026-11-22T10:00:00Z", "2026-11-22", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z",
        "2026-11-22T10:00:00+14:00", "2026-02-30T00:00:00Z", "P1D", "duration'P1D'", "geography'POINT(1 2)'",
        "substringof(", "st_within(", "any(", "$it", "@a", "%", "\u00e9",
    ]
)  # fmt: skip
FILTERS = st.one_of(st.lists(TOKENS, max_size=12).map(" ".join), st.text(max_size=40))
PATHS = st.one_of(st.text(max_size=30).map(lambda t: "/" + t), st.sampled_from(
    [
        "", "/", "/Things", "/Things('tsagaan.haul-road')", "/Things('tsagaan.haul-road')/Datastreams",
        "/Things('x')/Locations", "/Locations", "/Datastreams", "/Datastreams('tsagaan.haul-road.pm2_5')",
        OBS, "/Observations", "/Sensors", "/ObservedProperties('pm2_5')/Datastreams", "/FeaturesOfInterest",
        "/Observations('tsagaan.haul-road.pm2_5.1795356000000')/Datastream", "/Things(1)", "/Things('')",
        "/Things('a''b')", "/Things/$ref", "/Things('tsagaan.haul-road')/name/$value", "/HistoricalLocations",
    ]
))  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["0", "1", "-1", "1000", "99999999999999", "true", "false", "x", "", "1.5"]),
    st.text(max_size=20),
)
OPTIONS = st.one_of(
    st.tuples(st.just("$filter"), FILTERS),
    st.tuples(st.sampled_from(["$top", "$skip", "$count"]), VALUES),
    st.tuples(st.just("$orderby"), st.lists(TOKENS, max_size=4).map(" ".join)),
    st.tuples(st.sampled_from(["$select", "$expand"]), st.one_of(
        st.lists(st.sampled_from(
            ["Datastreams", "Observations", "Locations", "Thing", "id", "name", "result", "(", ")", ";",
             "$top=1", "$filter=result gt 1", "/", ",", "Datastreams/Observations", "Sensor"]
        ), max_size=8).map("".join), st.text(max_size=20))),
    st.tuples(st.text(max_size=8), st.text(max_size=8)),
)  # fmt: skip


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=PATHS, options=st.lists(OPTIONS, max_size=4))
def test_no_query_string_is_a_500(sta_site: StaSite, path: str, options: list[tuple[str, str]]) -> None:
    query = "?" + urllib.parse.urlencode(options) if options else ""
    code, doc = sta_site.get(urllib.parse.quote(path, safe="/()'$"), query)
    assert code in (200, 400, 404), (code, doc)
    if code != 200:
        assert doc["code"] == code and doc["message"]
