"""The JSON API's node pages keep each node's entry serialised, and the overview each node's card
(gateway/web/entries.py, issue 24): whatever the clock, a node's status, a new reading or the hour
does, a dashboard over the kept latest table answers byte for byte what a dashboard reading
InfluxDB afresh on every request does, against a real influxd holding the test site's week."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from gateway import devservices
from gateway.config import InfluxConfig, WebConfig
from gateway.devservices import free_port
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message
from gateway.web.app import create_app
from gateway.web.kept import KeptLatest
from gateway.web.server import BackgroundServer
from gateway.web.status import StatusBoard
from tests.helpers import Influx
from tests.webdata import NOW, SITE, board, reading, site_lines, wait_answering

ROUTES = (
    "/api/v1/latest",
    "/api/v1/nodes",
    "/api/v1/latest?limit=2",
    "/api/v1/nodes?site=tsagaan&offset=1",
    "/",  # the overview's cards
    "/?q=river",
)


def _raw(base: str, path: str) -> bytes:
    with urllib.request.urlopen(base + path, timeout=30) as resp:
        assert resp.status == 200
        data: bytes = resp.read()
    return data


@contextmanager
def _served(
    reader: InfluxReader, status: StatusBoard, clock: list[datetime], kept: KeptLatest | None
) -> Iterator[str]:
    web = WebConfig(port=free_port())
    server = BackgroundServer(create_app(web, reader, status, clock=lambda: clock[0], kept=kept), web)
    server.start()
    base = f"http://127.0.0.1:{web.port}"
    wait_answering(lambda path: _raw(base, path))
    try:
        yield base
    finally:
        server.stop()


def test_kept_entries_answer_what_a_fresh_answer_gives_as_things_change(influxd: devservices.Service) -> None:
    db = Influx(f"http://127.0.0.1:{influxd.port}", f"e_{uuid.uuid4().hex[:12]}")
    db.create()
    db.write(site_lines())
    store = InfluxV1(InfluxConfig(url=db.url, database=db.db))  # type: ignore[arg-type]
    reader = InfluxReader(store)
    status = board()
    clock = [NOW]
    mono = [0.0]
    kept = KeptLatest(reader, monotonic=lambda: mono[0])  # refreshed only when the test says
    try:
        with _served(reader, status, clock, kept) as cached, _served(reader, status, clock, None) as fresh:

            def same() -> list[Any]:
                """Each route's answer, checked the same from both dashboards (and twice from the
                kept one); JSON parsed, the overview as text."""
                pages: list[Any] = []
                for path in ROUTES:
                    first, again, truth = _raw(cached, path), _raw(cached, path), _raw(fresh, path)
                    assert first == again == truth, path
                    pages.append(json.loads(truth) if path.startswith("/api/") else truth.decode())
                return pages

            latest, nodes, *_ = same()
            assert [n["offline"] for n in nodes] == [False, False, True]  # river-up: its last will
            assert latest[0]["aqi"] is not None and latest[1]["turbidity_level"] == "cloudy"
            # the clock moves: ages grow, and haul-road and river-down go offline after 15 minutes
            clock[0] = NOW + timedelta(minutes=16)
            latest, nodes, _, _, overview, _ = same()
            assert [n["offline"] for n in nodes] == [True, True, True]
            assert nodes[0]["age_s"] == 16 * 60.0
            assert overview.count('<span class="badge off">') == 3
            assert "Latest reading: 16 min ago" in overview
            # a new reading from haul-road, kept by the table's next refresh from the database
            metrics = {"pm2_5": {"value": 150.5, "n": 300}, "pm10": {"value": 200.25, "n": 300}}
            db.write([reading("haul-road", 99_999, NOW + timedelta(minutes=15), metrics, ["warming_up"])])
            mono[0] += 3600
            kept.refresh(clock[0])
            latest, nodes, *_ = same()
            assert latest[0]["values"]["pm2_5"]["value"] == 150.5 and latest[0]["flags"] == ["warming_up"]
            assert [n["offline"] for n in nodes] == [False, True, True]
            # river-down says it stops, and tells where it now is
            doc = {"state": "offline", "lat": 43.5, "lon": 106.25}
            status.handle(
                Message(f"minewatch/v1/{SITE}/river-down/status", json.dumps(doc).encode(), 0, 1, True, 0.0)
            )
            latest, nodes, *_ = same()
            assert (nodes[1]["status"], nodes[1]["lat"]) == ("offline", 43.5)
            # the hour turns: the NowCast's hours are read again, haul-road's new reading among them
            before = latest[0]["nowcast_pm2_5"]
            clock[0] = NOW + timedelta(hours=1)
            latest, *_ = same()
            assert latest[0]["nowcast_pm2_5"] != before
    finally:
        store.close()
        db.drop()
