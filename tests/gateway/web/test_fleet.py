"""A thousand nodes on one dashboard (issue 24): the overview is a table of sites and one page of
sensor cards under the page budget, searchable; the JSON API answers in pages whose links reach
every node once."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from gateway import devservices
from gateway.subscriber import Message
from gateway.web.params import API_PAGE, OVERVIEW_PAGE
from gateway.web.status import StatusBoard
from tests.webdata import NOW, Site, served_site

SITES = ("north", "pit", "river")
NODES = 1000
BUDGET = 200_000  # bytes a page may weigh with its CSS and scripts (docs/api.md)


def _node(i: int) -> tuple[str, str]:
    return SITES[i % len(SITES)], f"n{i:04d}"


def _lines() -> list[str]:
    """Every node: a reading an hour for the last 13 hours (the NowCast's 12 hours and one); node
    n0007 has been silent for 90 days."""
    lines = []
    for i in range(NODES):
        site, node = _node(i)
        hours = [timedelta(days=90)] if node == "n0007" else [timedelta(hours=h) for h in range(13)]
        for k, back in enumerate(hours):
            ts = int((NOW - back).timestamp() * 1000)
            lines.append(f"reading,site={site},node={node} seq={k + 1}i,pm2_5={10 + i % 40},pm10=30 {ts}")
    return lines


def _board() -> StatusBoard:
    b = StatusBoard("minewatch")
    for i in range(NODES):
        site, node = _node(i)
        doc = {"state": "online", "lat": 43.0 + i / 10_000, "lon": 106.0 + i / 10_000}
        b.handle(Message(f"minewatch/v1/{site}/{node}/status", json.dumps(doc).encode(), 0, 1, True, 0.0))
    return b


@pytest.fixture(scope="module")
def fleet(influxd: devservices.Service) -> Iterator[Site]:
    with served_site(influxd.port, lines=_lines(), status=_board()) as s:
        yield s


def _weight(site: Site, html: str) -> int:
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    return len(html.encode()) + sum(len(site.get(a)[1].encode()) for a in assets)


def test_the_overview_of_a_thousand_nodes_stays_under_the_page_budget(fleet: Site) -> None:
    status, html, _ = fleet.get("/")
    assert status == 200
    assert _weight(fleet, html) < BUDGET
    assert html.count('<article class="card') == OVERVIEW_PAGE
    cells = r"<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>"
    row = rf'<tr data-site="([a-z]+)"><td><a href="/\?site=\1">\1</a></td>{cells}'
    assert re.findall(row, html) == [  # nodes, offline (n0007, silent 90 days, is pit's), alerts
        ("north", "334", "0", "0"),
        ("pit", "333", "1", "0"),
        ("river", "333", "0", "0"),
    ]
    assert f"1–{OVERVIEW_PAGE} of {NODES}" in html
    (points,) = re.findall(r'<script type="application/json" id="map-data">(.*?)</script>', html)
    shown = re.findall(r'data-node="(n\d{4})"', html)
    assert sorted(p["label"] for p in json.loads(points)) == sorted(shown)  # the map: this page


def test_the_overview_pages_through_a_site_and_finds_a_node_by_its_id(fleet: Site) -> None:
    first = fleet.get("/", site="pit")[1]
    (next_link,) = re.findall(r'<a href="([^"]+)" rel="next">', first)
    second = fleet.get(next_link.replace("&amp;", "&"))[1]
    on_first = set(re.findall(r'data-node="(n\d{4})"', first))
    on_second = set(re.findall(r'data-node="(n\d{4})"', second))
    assert len(on_first) == len(on_second) == OVERVIEW_PAGE and not on_first & on_second
    assert all(int(n[1:]) % 3 == 1 for n in on_first | on_second)  # pit's nodes only
    found = fleet.get("/", q="n000")[1]
    assert sorted(set(re.findall(r'data-node="(n\d{4})"', found))) == [f"n000{i}" for i in range(10)]
    assert "No sensor matches." in fleet.get("/", q="zzz")[1]
    assert fleet.get("/", q="A'B")[0] == 400


def test_the_api_answers_in_pages_whose_links_reach_every_node_once(fleet: Site) -> None:
    for route in ("/api/v1/nodes", "/api/v1/latest"):
        seen: list[str] = []
        path: str | None = route
        pages = 0
        while path is not None:
            status, body, headers = fleet.get(path)
            assert status == 200 and headers["x-total-count"] == str(NODES)
            assert len(body) <= API_PAGE
            seen += [b["node"] for b in body]
            link = re.match(r'<([^>]+)>; rel="next"', headers.get("link", ""))
            path = link.group(1) if link else None
            pages += 1
        assert pages == NODES // API_PAGE and sorted(seen) == [f"n{i:04d}" for i in range(NODES)]
    status, body, headers = fleet.get("/api/v1/latest", site="river", limit="5", offset="330")
    assert [b["node"] for b in body] == ["n0992", "n0995", "n0998"] and "link" not in headers
    assert all(b["aqi"] is not None for b in body)  # NowCast for the nodes of the page
    assert fleet.get("/api/v1/nodes", limit="0")[0] == 400
    assert fleet.get("/api/v1/nodes", offset="-1")[0] == 400


def test_a_node_silent_for_90_days_keeps_its_page(fleet: Site) -> None:
    status, html, _ = fleet.get("/node/pit/n0007")
    assert status == 200 and "90 days ago" in html
    (quiet,) = [b for b in fleet.get("/api/v1/nodes", site="pit", limit="1000")[1] if b["node"] == "n0007"]
    assert quiet["offline"] is True and quiet["age_s"] == 90 * 86400


def test_a_page_of_a_thousand_nodes_costs_about_what_a_small_site_does(fleet: Site) -> None:
    """Not a benchmark (bench/fleet.py is): a guard that no route builds all thousand nodes' NowCast
    again, which took over half a second on this data."""
    for path in ("/", "/api/v1/latest", "/node/pit/n0001"):
        fleet.get(path)
        t0 = time.perf_counter()
        fleet.get(path)
        assert time.perf_counter() - t0 < 2.0, path


def test_the_download_form_of_a_thousand_nodes_lists_sites_and_takes_an_id(fleet: Site) -> None:
    status, html, _ = fleet.get("/download")
    assert status == 200 and _weight(fleet, html) < BUDGET
    assert re.findall(r'<option value="([a-z]+)">', html) == list(SITES)
    assert 'name="node"' in html and "n0001" not in html
    status, text, _ = fleet.get("/download/readings.csv", site="pit", node="n0001", start="2026-11-22")
    assert status == 200
    assert {line.split(",")[2] for line in text.splitlines()[1:]} == {"n0001"}


def test_the_openapi_document_describes_the_pages(fleet: Site) -> None:
    doc = fleet.get("/api/v1/openapi.json")[1]
    for route in ("/api/v1/nodes", "/api/v1/latest"):
        get = doc["paths"][route]["get"]
        assert {"limit", "offset"} <= {p["name"] for p in get["parameters"]}
        assert set(get["responses"]["200"]["headers"]) == {"X-Total-Count", "Link"}
