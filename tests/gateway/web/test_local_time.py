"""The pages and the feed people read write times in the site's zone with the zone shown, and sites
and nodes by their friendly names; the JSON API and the feed's machine fields stay UTC and ids.
Against the app served by uvicorn over a real influxd, in Mongolian (`[site]` of gateway.toml)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from gateway import devservices
from gateway.config import SiteConfig, WebConfig
from gateway.web.context import Upstream
from tests.gateway.web.test_dash import _offline_alert
from tests.webdata import SITE, Site, alert_lines, served_site, site_lines

A = "{http://www.w3.org/2005/Atom}"
PLACES = SiteConfig.model_validate(
    {
        "timezone": "Asia/Ulaanbaatar",
        "names": [
            {"site": SITE, "name": {"en": "Tsagaan bag", "mn": "Цагаан баг"}},
            {"site": SITE, "node": "haul-road", "name": {"en": "haul road", "mn": "тээврийн зам"}},
            {"site": SITE, "node": "river-up", "name": {"en": "river, upstream", "mn": "голын дээд хэсэг"}},
        ],
    }
)


@pytest.fixture(scope="module")
def site(influxd: devservices.Service) -> Iterator[Site]:
    lines = [*site_lines(), *alert_lines(), _offline_alert()]
    river = (Upstream("river-idaho", "river-down", "river-up", "turbidity"),)
    web = WebConfig(language="mn")
    with served_site(influxd.port, web=web, lines=lines, site_config=PLACES, upstreams=river) as s:
        yield s


def test_a_page_shows_local_time_with_its_zone_and_the_nodes_name(site: Site) -> None:
    status, page, _ = site.get(f"/node/{SITE}/haul-road")
    assert status == 200
    # the clock stands at 12:00:30 UTC: 20:00 in Ulaanbaatar
    assert "Хуудсыг үүсгэсэн: 2026-11-22 20:00 UTC+08." in page
    assert "тээврийн зам" in page and "Цагаан баг" in page
    assert "(2026-11-22 20:00 UTC+08)" in page  # the latest reading, stamped 12:00 UTC
    assert " UTC)" not in page and "UTC-ээр" not in page
    assert f'href="/download/readings.csv?site={SITE}&amp;node=haul-road"' in page  # ids in links
    # the charts draw their time axis in the same zone (uPlot's tzDate, gateway/web/static/site.js)
    day = re.search(r'<script type="application/json" id="day-data">(.*?)</script>', page, re.S)
    assert day is not None and {c["zone"] for c in json.loads(day.group(1))} == {"Asia/Ulaanbaatar"}


def test_the_upstream_reference_is_named_as_people_call_it(site: Site) -> None:
    status, page, _ = site.get(f"/node/{SITE}/river-down")
    assert status == 200
    note = re.search(r'<p class="note upstream-note">(.*?)</p>', page)
    assert note is not None and "голын дээд хэсэг" in note.group(1) and "river-up" not in note.group(1)
    day = re.search(r'<script type="application/json" id="day-data">(.*?)</script>', page, re.S)
    assert day is not None
    (up,) = [c["upstream"] for c in json.loads(day.group(1)) if c["upstream"]]
    assert up["label"] == "голын дээд хэсэг, дээд урсгалын жишиг"  # the legend people read
    assert up["node"] == "river-up"  # the id, for machines


def test_the_alert_history_is_in_local_time(site: Site) -> None:
    _, page, _ = site.get("/alerts")
    # the offline alert was stored at 11:30:30 UTC
    assert "2026-11-22 19:30 UTC+08" in page
    assert "голын дээд хэсэг (Цагаан баг)" in page


def test_the_feed_writes_local_time_and_names_for_people_and_utc_for_machines(site: Site) -> None:
    status, body, _ = site.get(f"/sites/{SITE}/alerts.atom")
    assert status == 200
    feed = ET.fromstring(body.encode())
    assert "Цагаан баг" in str(feed.findtext(f"{A}title"))
    entry = next(e for e in feed.findall(f"{A}entry") if "river-up" in str(e.findtext(f"{A}id")))
    assert str(entry.findtext(f"{A}updated")).endswith("Z")  # RFC 3339 UTC, as Atom readers expect
    assert "голын дээд хэсэг" in str(entry.findtext(f"{A}summary"))
    assert "голын дээд хэсэг" in str(entry.findtext(f"{A}title"))


def test_the_json_api_stays_utc_with_ids(site: Site) -> None:
    _, alerts, _ = site.get("/api/v1/alerts", site=SITE)
    text = str(alerts)
    assert "UTC+08" not in text and "Цагаан" not in text and "тээврийн" not in text
    offline = next(a for a in alerts if a["node"] == "river-up")
    assert offline["time"] == "2026-11-22T11:30:30Z" and offline["site"] == SITE
    _, latest, _ = site.get("/api/v1/latest")
    assert "UTC+08" not in str(latest) and all(str(x["time"]).endswith("Z") for x in latest)
