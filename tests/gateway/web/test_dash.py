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
from gateway.alerts import messages
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


def test_a_sites_alerts_are_an_atom_feed_in_the_gateways_language(site: Site) -> None:
    status, body, headers = site.get(f"/sites/{SITE}/alerts.atom")
    assert status == 200 and headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = ET.fromstring(body.encode("utf-8"))
    assert feed.tag == A + "feed"
    assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "mn"
    for name in ("id", "title", "updated"):
        assert (feed.findtext(A + name) or "").strip(), name
    assert feed.findtext(A + "title") == MN("dash.feed_title", site=SITE)
    assert feed.findtext(A + "updated") == "2026-11-22T11:30:30.000Z"  # the newest alert (RFC 3339)
    assert feed.find(A + "author/" + A + "name") is not None  # required unless every entry has one
    entries = feed.findall(A + "entry")
    assert len(entries) == 5  # the four of the test site and the offline alert, newest first
    ids = [e.findtext(A + "id") for e in entries]
    assert len(set(ids)) == 5 and all(i and i.startswith("tag:minewatch,2026:alert/") for i in ids)
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert (entry.findtext(A + name) or "").strip(), name
        link = entry.find(A + "link")
        assert link is not None and link.get("href", "").startswith(f"/node/{SITE}/")
    newest = entries[0]
    assert newest.find(A + "link").get("href") == f"/node/{SITE}/river-up"  # type: ignore[union-attr]
    summary = newest.findtext(A + "summary") or ""
    doc = {"msg_id": "alert.offline.raised", "msg_params": json.dumps(OFFLINE), "message": ""}
    assert summary == messages.text_of(doc, MN)
    assert "холбоо тасарсан" in summary and "offline" not in summary
    assert (newest.findtext(A + "title") or "").startswith("ОНЦГОЙ ")  # critical, in Mongolian
    category = newest.find(A + "category")
    assert category is not None and category.get("term") == "critical"


def test_the_feed_answers_bad_and_unknown_sites_plainly(site: Site) -> None:
    status, body, _ = site.get("/sites/elsewhere/alerts.atom")
    assert status == 200  # a site with no alerts (yet) is an empty feed, not an error
    feed = ET.fromstring(body.encode("utf-8"))
    assert feed.findall(A + "entry") == [] and feed.findtext(A + "updated") == "2026-11-22T12:00:30.000Z"
    assert site.get("/sites/Bad%20Site/alerts.atom")[0] == 400


def test_the_dashboard_links_each_sites_feed(site: Site) -> None:
    page = site.get("/")[1]
    head, main = page.split("</head>")
    href = f"/sites/{SITE}/alerts.atom"
    assert f'<link rel="alternate" type="application/atom+xml" href="{href}"' in head
    assert f'<a href="{href}" type="application/atom+xml">{MN("dash.feed_link", site=SITE)}</a>' in main
