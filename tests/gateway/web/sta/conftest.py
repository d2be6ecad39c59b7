"""A gateway serving SensorThings: a real influxd holding readings written through the gateway's
own write path (ReadingPayload -> points.to_line -> InfluxV1.write), some signed by a node key, and
the web app on uvicorn on a free port, its clock stopped at NOW."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contract.signing import Signer
from contract.wire import ReadingPayload
from gateway.config import InfluxConfig, WebConfig
from gateway.devservices import Service, free_port
from gateway.maintenance import Visit
from gateway.points import to_line
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message
from gateway.web.app import create_app
from gateway.web.server import BackgroundServer
from gateway.web.status import StatusBoard
from tests.helpers import Influx

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)
START = NOW - timedelta(hours=12)
SITE = "tsagaan"
WEB = WebConfig(
    licence="ODbL 1.0",
    licence_url="https://opendatacommons.org/licenses/odbl/1-0/",
    attribution="Tsagaan Gol water group",
)


VISIT = Visit(
    SITE,
    "river-down",
    "cleaned",
    NOW - timedelta(hours=6),
    "Bold",
    "window wiped",
    NOW - timedelta(hours=6, minutes=5),
    NOW - timedelta(hours=5, minutes=55),
    NOW - timedelta(hours=5),
)
"""A maintenance visit to river-down: the Thing's history. Its window (05:55, 06:05] marks two
readings, 06:00 and 06:05 (not 05:55: the range is open at its start)."""


def pm25(i: int) -> float:
    """A value that differs from reading to reading, so a wrong page or order shows."""
    return round(5.0 + (i * 7.3) % 90.0, 1)


def payloads(signer: Signer) -> list[ReadingPayload]:
    out = []
    for i in range(int((NOW - START) / STEP)):
        ts = START + STEP * (i + 1)
        flags = ["warming_up"] if i == 0 else (["sensor_fault"] if i == 17 else [])
        pm = None if i == 17 else pm25(i)
        metrics: dict[str, Any] = {
            "pm2_5": {"value": pm, "raw": 1.0 + i, "n": 0 if pm is None else 300, "cal": "epa-us-2021"},
            "rh": {"value": 40.0 + i % 10, "n": 300},
        }
        doc = {"schema": 1, "site": SITE, "node": "haul-road", "seq": i + 1, "ts": ts, "period_s": 300}
        out.append(ReadingPayload.model_validate({**doc, "metrics": metrics, "flags": flags}))
        river = {"turbidity": {"value": 10.0 + i % 5, "raw": 0.5, "n": 300, "cal": "dfrobot-sen0189"}}
        reading = ReadingPayload.model_validate({**doc, "node": "river-down", "metrics": river, "flags": []})
        out.append(signer.sign(reading))
    return out


@dataclass
class StaSite:
    url: str  # the service root, .../sta/v1.1
    db: Influx
    signer: Signer

    def get(self, path: str, query: str = "") -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body)
            except ValueError:
                return exc.code, body.decode("utf-8", "replace")


@pytest.fixture(scope="package")
def sta_site(influxd: Service) -> Iterator[StaSite]:
    db = Influx(f"http://127.0.0.1:{influxd.port}", f"sta_{uuid.uuid4().hex[:12]}")
    db.create()
    store = InfluxV1(InfluxConfig(url=db.url, database=db.db))  # type: ignore[arg-type]
    signer = Signer.generate()
    store.write([to_line(p) for p in payloads(signer)])
    store.write([VISIT.to_line()])
    board = StatusBoard("minewatch")
    status = {"state": "online", "version": "0.3.0", "lat": 43.1105, "lon": 106.8503}
    board.handle(
        Message(
            f"minewatch/v1/{SITE}/haul-road/status", json.dumps(status).encode(), 0, 1, True, time.monotonic()
        )
    )
    web = WEB.model_copy(update={"port": free_port()})
    server = BackgroundServer(create_app(web, InfluxReader(store), board, clock=lambda: NOW), web)
    server.start()
    try:
        yield StaSite(f"http://127.0.0.1:{web.port}/sta/v1.1", db, signer)
    finally:
        server.stop()
        store.close()
        db.drop()
