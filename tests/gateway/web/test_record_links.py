"""Each field record on the timeline and the observations page links to the readings of its hour (the
dashboard's CSV download, as the node page charts only the last 24 h and 7 d): followed over real
HTTP, each link gives that node's readings from 30 minutes before to 30 minutes after, and a
visit's link its marked window too, as InfluxDB counts them."""

from __future__ import annotations

import csv
import html
import io
import re
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway import devservices
from gateway.maintenance import Visit
from gateway.observations.records import Observation
from gateway.web.timeline import readings_link
from tests.webdata import NOW, SITE, Site, served_site

AT = NOW.replace(hour=10, minute=0, second=0)  # the haul-road observation
NEAR_AT = NOW.replace(hour=9, minute=0, second=0)  # one given as a position, nearest river-down
VISIT = Visit(
    SITE, "river-down", "cleaned", NOW.replace(hour=6, minute=0, second=0), "Bold", "window wiped",
    NOW.replace(hour=5, minute=50, second=0), NOW.replace(hour=6, minute=40, second=0), NOW,
)  # fmt: skip


def _observation(i: int, at: datetime, **where: object) -> Observation:
    doc: dict[str, object] = {"site": SITE, "node": None, "lat": None, "lon": None, "place": "node"}
    doc.update(where)
    return Observation(
        id=f"00000000-0000-4000-8000-00000000000{i}", observer="code:1", kind="dust", text=f"seen {i}",
        at=at, received=NOW, photo_received_sha256=None, photo_sha256=None, **doc,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def site(influxd: devservices.Service, tmp_path: Path) -> Iterator[Site]:
    with served_site(influxd.port, data_dir=tmp_path / "data") as s:
        assert s.field is not None
        at_node = _observation(1, AT, node="haul-road")
        near = _observation(2, NEAR_AT, lat=43.0925, lon=106.8710, place="position", near_node="river-down")
        for obs in (at_node, near):
            assert s.field.add(obs, None)
            s.field.decide(obs.id, "accepted", "Saraa", "seen", NOW)
        s.db.write([VISIT.to_line()])
        yield s


def _links(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'class="readings" href="([^"]+)"', page)]


def _download(site: Site, link: str) -> list[dict[str, str]]:
    status, body = site.get_raw(link)
    assert status == 200, body
    return list(csv.DictReader(io.StringIO(body)))


def _stored(site: Site, node: str, start: datetime, end: datetime) -> list[str]:
    rows = site.db.rows(
        f"SELECT seq FROM reading WHERE node = '{node}' AND time > '{start:%Y-%m-%dT%H:%M:%SZ}' "
        f"AND time <= '{end:%Y-%m-%dT%H:%M:%SZ}'"
    )
    return [str(r["seq"]) for r in rows]


def test_each_record_links_to_the_readings_of_its_hour(site: Site) -> None:
    status, timeline, _ = site.get("/sites/tsagaan/timeline")
    assert status == 200
    links = _links(timeline)
    hour = timedelta(minutes=30)
    expected = [  # newest first, as the timeline lists them
        ("haul-road", AT - hour, AT + hour),
        ("river-down", NEAR_AT - hour, NEAR_AT + hour),
        ("river-down", VISIT.at - hour, VISIT.flag_to),  # the marked window reaches past the hour
    ]
    assert len(links) == 3
    for link, (node, start, end) in zip(links, expected, strict=True):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
        assert (q["node"], q["start"], q["end"]) == (
            [node],
            [f"{start:%Y-%m-%dT%H:%M:%SZ}"],
            [f"{end:%Y-%m-%dT%H:%M:%SZ}"],
        )
        rows = _download(site, link)
        assert {r["node"] for r in rows} == {node}
        assert [r["seq"] for r in rows] == _stored(site, node, start, end) and len(rows) >= 12
    status, page, _ = site.get("/observations")
    assert status == 200 and _links(page) == links[:2]  # newest first there too


def test_a_record_of_no_site_has_no_link_and_a_position_near_none_links_the_whole_site() -> None:
    assert readings_link(None, None, AT) is None
    link = readings_link(SITE, None, AT)
    assert link is not None and "node=" not in link and "site=tsagaan" in link
