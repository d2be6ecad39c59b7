"""Issue 18's small dashboard items against the app served by uvicorn over a real influxd, in
Mongolian: an unknown node is a 404 page, the favicon, cached static files, the Atom feed of alerts."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta

import pytest

from contract.i18n import Texts
from gateway import devservices
from gateway.config import WebConfig
from gateway.web.app import STATIC_CACHE
from tests.webdata import NOW, SITE, Site, alert_lines, served_site, site_lines

A = "{http://www.w3.org/2005/Atom}"
MN = Texts("mn")
OFFLINE = {
    "node": "river-up",
    "site": SITE,
    "metric": "status",
    "average": "0s",
    "state": "raised",
    "late": False,
    "started": "2026-11-22T10:00:00Z",
    "ended": None,
    "value": 120.0,
    "limit": 10.0,
    "peak": None,
    "acked_by": None,
}


def _offline_alert() -> str:
    """An alert stored with its message id, as the engine writes them now: rendered per language."""
    params = json.dumps(OFFLINE).replace("\\", "\\\\").replace('"', '\\"')
    ms = int((NOW - timedelta(minutes=30)).timestamp() * 1000)
    return (
        f"alert,metric=status,node=river-up,rule=offline,site={SITE} "
        f'state="raised",value=120,limit=10,average="0s",severity="critical",late=false,'
        f'message="river-up is offline",msg_id="alert.offline.raised",msg_params="{params}" {ms}'
    )


@pytest.fixture(scope="module")
def site(influxd: devservices.Service) -> Iterator[Site]:
    lines = [*site_lines(), *alert_lines(), _offline_alert()]
    with served_site(influxd.port, web=WebConfig(language="mn"), lines=lines) as s:
        yield s


def test_an_unknown_node_is_a_404_page_in_the_gateways_language(site: Site) -> None:
    status, body, headers = site.get(f"/node/{SITE}/nobody")
    assert status == 404 and headers["content-type"].startswith("text/html")
    assert MN("dash.unknown_node", site=SITE, node="nobody") in body
    assert '<html lang="mn">' in body
    assert site.get(f"/node/{SITE}/haul-road")[0] == 200  # a node with readings is still a page
    assert site.get("/node/elsewhere/haul-road")[0] == 404  # the right node id at another site


def test_the_favicon_is_served_and_linked_from_every_page(site: Site) -> None:
    status, body, headers = site.get("/favicon.ico")
    assert status == 200 and headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(body).tag == "{http://www.w3.org/2000/svg}svg"
    assert headers["cache-control"] == STATIC_CACHE
    for path in ("/", "/alerts", "/download", f"/node/{SITE}/haul-road", f"/node/{SITE}/nobody"):
        page = site.get(path)[1]
        head = page.split("</head>")[0]
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in head, path
    assert site.get("/static/favicon.svg")[0] == 200


def test_static_files_are_cached_and_pages_and_misses_are_not(site: Site) -> None:
    for name in ("site.css", "site.js", "uPlot.iife.min.js", "favicon.svg"):
        status, _, headers = site.get(f"/static/{name}")
        assert status == 200 and headers["cache-control"] == "public, max-age=86400", name
    status, _, headers = site.get("/static/no-such-file.css")
    assert status == 404 and "cache-control" not in {k.lower() for k in headers}
    assert "cache-control" not in {k.lower() for k in site.get("/")[2]}  # pages show live data
