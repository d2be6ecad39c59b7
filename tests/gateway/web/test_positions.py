"""Observations given as the phone's position or a point on the map, on a gateway serving two sites
(a real influxd, uvicorn, the CLI): each takes the site of the nearest node with a known position
and, within 2 km, that node (`near_node`), so it is marked on that node's chart, listed on its
SensorThings Thing, and in that site's report only (gateway/observations/near.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import urllib3

from contract.wire import ReadingPayload
from gateway import devservices
from gateway.cli import main
from gateway.observations.near import NEAR_M, SITE_REACH_M, Placed, distance_m, nearest
from gateway.points import to_line
from gateway.subscriber import Message
from tests.gateway.web.test_observations import Field, gateway_config
from tests.webdata import NOW, alert_lines, board, served_site, site_lines

HAUL_ROAD = (43.1105, 106.8503)  # tests/webdata.py's board
PIT_EDGE = (43.3000, 107.2000)  # the other site's node, about 35 km east


def test_distances_and_the_two_reaches() -> None:
    # one degree of latitude is 111.2 km on the mean sphere
    assert distance_m(43.0, 106.0, 44.0, 106.0) == pytest.approx(111_195, rel=1e-4)
    nodes = [Placed("tsagaan", "haul-road", *HAUL_ROAD), Placed("khuren", "pit-edge", *PIT_EDGE)]
    near = nearest(HAUL_ROAD[0] + 0.01, HAUL_ROAD[1], nodes)  # 1.1 km north of haul-road
    assert near is not None and (near.site, near.node) == ("tsagaan", "haul-road")
    farther = nearest(PIT_EDGE[0] + 0.05, PIT_EDGE[1], nodes)  # 5.6 km: the site, not the node
    assert farther is not None and (farther.site, farther.node) == ("khuren", None)
    assert NEAR_M < farther.distance_m < SITE_REACH_M
    assert nearest(47.92, 106.92, nodes) is None  # Ulaanbaatar: no site's
    assert nearest(43.0, 106.0, []) is None


def _other_site_lines() -> list[str]:
    out = []
    for i in range(3):
        doc = {
            "schema": 1, "site": "khuren", "node": "pit-edge", "seq": i + 1,
            "ts": NOW - timedelta(minutes=5 * (2 - i)), "period_s": 300,
            "metrics": {"pm2_5": {"value": 30.0 + i, "n": 300}},
        }  # fmt: skip
        out.append(to_line(ReadingPayload.model_validate(doc)))
    return out


@pytest.fixture
def two_sites(influxd: devservices.Service, tmp_path: Path) -> Iterator[Field]:
    status = board()
    doc = {"state": "online", "version": "0.1.0", "lat": PIT_EDGE[0], "lon": PIT_EDGE[1]}
    status.handle(
        Message("minewatch/v1/khuren/pit-edge/status", json.dumps(doc).encode(), 0, 1, True, time.monotonic())
    )
    data = tmp_path / "gateway-data"
    lines = site_lines() + alert_lines() + _other_site_lines()
    with served_site(influxd.port, data_dir=data, lines=lines, status=status) as site:
        config = gateway_config(tmp_path / "gateway.toml", data, influxd.port, site)
        yield Field(site, config, urllib3.PoolManager(retries=False))


def _report(field: Field, site: str, out: Path) -> str:
    args = ["--site", site, "--start", "2026-11-22", "--end", "2026-11-23", "--out", str(out)]
    assert main(["report", "--config", str(field.config), *args]) == 0
    return out.read_text(encoding="utf-8")


def test_a_position_is_charted_on_its_nearest_node_and_reported_with_its_site_only(
    two_sites: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    field = two_sites
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    where = {"site": "", "node": ""}
    by_haul_road = field.submission(
        code, token, text="plume over the haul road", lat=HAUL_ROAD[0] + 0.01, lon=HAUL_ROAD[1],
        place="position", **where,
    )  # fmt: skip
    by_the_pit = field.submission(
        code, token, kind="blasting", text="blast at the pit", lat=PIT_EDGE[0] + 0.05, lon=PIT_EDGE[1],
        place="map", **where,
    )  # fmt: skip
    in_town = field.submission(code, token, kind="smell", text="smoke in town", lat=47.92, lon=106.92,
                               place="position", **where)  # fmt: skip
    for sub in (by_haul_road, by_the_pit, in_town):
        assert field.post(sub, headers={"Cookie": cookie})[0] == 201
    got = {o.id: o for o in field.stored()}
    assert (got[by_haul_road["id"]].site, got[by_haul_road["id"]].near_node) == ("tsagaan", "haul-road")
    assert (got[by_the_pit["id"]].site, got[by_the_pit["id"]].near_node) == ("khuren", None)
    assert (got[in_town["id"]].site, got[in_town["id"]].near_node) == (None, None)
    assert all(o.node is None and o.lat is not None for o in got.values())  # the position is kept
    for sub in (by_haul_road, by_the_pit, in_town):
        args = [sub["id"], "--config", str(field.config), "--by", "Saraa", "--why", "seen"]
        assert main(["observations", "accept", *args]) == 0

    # the public API names the nearest node (or none), beside the position itself
    status, listed_api, _ = field.site.get("/api/v1/observations")
    assert status == 200
    api = {o["id"]: (o["site"], o["node"], o["place"], o["near_node"]) for o in listed_api}
    assert api == {
        by_haul_road["id"]: ("tsagaan", None, "position", "haul-road"),
        by_the_pit["id"]: ("khuren", None, "map", None),
        in_town["id"]: (None, None, "position", None),
    }
    status, spec, _ = field.site.get("/api/v1/openapi.json")
    assert "near_node" in spec["components"]["schemas"]["Observation"]["properties"]

    # the chart of the nearest node marks it; the other node's does not
    status, page, _ = field.site.get("/node/tsagaan/haul-road")
    assert status == 200 and "plume over the haul road" in page
    marks = json.loads(page.split('id="day-data">', 1)[1].split("</script>", 1)[0])[0]["observed"]
    assert [m["t"] for m in marks] == [int(NOW.replace(hour=11, minute=40, second=0).timestamp())]
    assert "plume over the haul road" not in field.site.get("/node/tsagaan/river-down")[1]

    # SensorThings: the Thing's history, with how and where it was given
    status, thing, _ = field.site.get("/sta/v1.1/Things('tsagaan.haul-road')")
    (listed,) = thing["properties"]["observations"]
    assert (listed["id"], listed["place"]) == (by_haul_road["id"], "position")
    assert listed["lat"] == HAUL_ROAD[0] + 0.01
    assert field.site.get("/sta/v1.1/Things('tsagaan.river-down')")[1]["properties"]["observations"] == []

    # each site's report lists its own (and the one of no site), never the other site's
    tsagaan = _report(field, "tsagaan", field.config.parent / "t.html")
    khuren = _report(field, "khuren", field.config.parent / "k.html")
    assert "plume over the haul road" in tsagaan and "blast at the pit" not in tsagaan
    assert "near haul-road" in tsagaan
    assert "blast at the pit" in khuren and "plume over the haul road" not in khuren
    assert "smoke in town" in tsagaan and "smoke in town" in khuren  # no site's: not lost
