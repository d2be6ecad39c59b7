"""A site's week of stored readings and alerts for the dashboard tests, and the dashboard served on a
free port with the clock stopped at NOW (so every number on a page can be predicted)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contract.wire import ReadingPayload
from gateway.alerts.store import AlertStore
from gateway.config import InfluxConfig, SiteConfig, WebConfig
from gateway.devservices import free_port
from gateway.observations.accounts import ACCOUNTS_FILE, Accounts
from gateway.observations.records import PHOTOS_DIR, FieldRecords
from gateway.observations.store import STORE_FILE, ObservationStore
from gateway.points import to_line
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message
from gateway.web.app import create_app
from gateway.web.context import Upstream
from gateway.web.server import BackgroundServer
from gateway.web.status import StatusBoard
from tests.helpers import Influx

NOW = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
STEP = timedelta(minutes=5)
SITE = "tsagaan"


def pm25_at(ts: datetime) -> float:
    """Haul road dust: 20 µg/m³, a dust event of 80 µg/m³ over the last three hours."""
    return 80.0 if ts > NOW - timedelta(hours=3) else 20.0


def reading(
    node: str, seq: int, ts: datetime, metrics: dict[str, Any], flags: list[str] | None = None
) -> str:
    doc = {
        "schema": 1,
        "site": SITE,
        "node": node,
        "seq": seq,
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "period_s": 300,
        "metrics": metrics,
        "flags": flags or [],
    }
    return to_line(ReadingPayload.model_validate(doc))


# the last haul-road reading also carries what else a PMS5003 kit sends
PMS_EXTRA = {"pm2_5_atm": {"value": 52.0, "n": 300}, "pc0_3": {"value": 9120.0, "n": 300}}


def site_lines() -> list[str]:
    lines: list[str] = []
    # haul-road: dust every 5 min for 8 days; warming_up on the first reading after a restart 5 h ago
    start = NOW - timedelta(days=8)
    ts, seq = start, 1
    while ts <= NOW:
        pm = pm25_at(ts)
        flags = ["warming_up"] if NOW - timedelta(hours=5, minutes=5) < ts <= NOW - timedelta(hours=5) else []
        lines.append(
            reading(
                "haul-road",
                seq,
                ts,
                {
                    "pm2_5": {"value": pm, "raw": pm * 1.1, "n": 300, "cal": "pms-a@2026-10-01"},
                    "pm10": {"value": pm * 1.6, "n": 300},
                    **(PMS_EXTRA if ts + STEP > NOW else {}),
                },
                flags,
            )
        )
        ts, seq = ts + STEP, seq + 1
    # river-down: turbidity every 5 min for 2 days, 12.5 NTU (cloudy)
    ts, seq = NOW - timedelta(days=2), 1
    while ts <= NOW:
        lines.append(reading("river-down", seq, ts, {"turbidity": {"value": 12.5, "raw": 1.2, "n": 300}}))
        ts, seq = ts + STEP, seq + 1
    # river-up: stopped two hours ago
    ts, seq = NOW - timedelta(days=1), 1
    while ts <= NOW - timedelta(hours=2):
        lines.append(reading("river-up", seq, ts, {"turbidity": {"value": 3.0, "n": 300}}))
        ts, seq = ts + STEP, seq + 1
    return lines


def _alert(
    ts: datetime,
    node: str,
    rule: str,
    metric: str,
    state: str,
    value: float,
    limit: float,
    message: str,
    severity: str = "warning",
    alert_id: str | None = None,
) -> str:
    esc = message.replace("\\", "\\\\").replace('"', '\\"')
    with_id = f'id="{alert_id}",' if alert_id else ""
    return (
        f"alert,metric={metric},node={node},rule={rule},site={SITE} "
        f'state="{state}",value={value},limit={limit},average="1h",severity="{severity}",late=false,'
        f'{with_id}message="{esc}" {int(ts.timestamp() * 1000)}'
    )


ACTIVE_MESSAGE = (
    "PM2.5 1-hour mean 80.0 µg/m³ at haul-road (tsagaan) exceeds the limit of 50 µg/m³ since 09:00"
)


ACTIVE_ID = f"{SITE}.haul-road.pm25-1h.{NOW - timedelta(hours=2):%Y%m%dT%H%M%SZ}"
"""The active dust alert's id, as the engine makes it (site, node, rule, start)."""


def alert_lines(ids: bool = False) -> list[str]:
    """Issue 6's `alert` schema: one active dust alert (raised, then a reminder) and one cleared
    turbidity alert. With `ids`, the dust alert's events carry its id (`ACTIVE_ID`), as the engine
    writes every event; the turbidity alert's stay without, as events stored before there were ids."""
    dust = ACTIVE_ID if ids else None
    return [
        _alert(
            NOW - timedelta(hours=2),
            "haul-road",
            "pm25-1h",
            "pm2_5",
            "raised",
            80.0,
            50.0,
            ACTIVE_MESSAGE,
            alert_id=dust,
        ),
        _alert(
            NOW - timedelta(hours=1),
            "haul-road",
            "pm25-1h",
            "pm2_5",
            "reminder",
            80.0,
            50.0,
            ACTIVE_MESSAGE,
            alert_id=dust,
        ),
        _alert(
            NOW - timedelta(days=1, hours=3),
            "river-down",
            "river-over-background",
            "turbidity",
            "raised",
            18.0,
            5.0,
            "Turbidity 18.0 NTU over background at river-down",
            "critical",
        ),
        _alert(
            NOW - timedelta(days=1),
            "river-down",
            "river-over-background",
            "turbidity",
            "cleared",
            4.0,
            5.0,
            "Turbidity back within 5 NTU of background at river-down",
            "critical",
        ),
    ]


def board() -> StatusBoard:
    """Statuses as nodes publish them: two with positions, river-up gone (its last will)."""
    b = StatusBoard("minewatch")
    for node, doc in (
        ("haul-road", {"state": "online", "version": "0.1.0", "lat": 43.1105, "lon": 106.8503}),
        ("river-down", {"state": "online", "version": "0.1.0", "lat": 43.0921, "lon": 106.8712}),
        ("river-up", {"state": "offline"}),
    ):
        topic = f"minewatch/v1/{SITE}/{node}/status"
        b.handle(Message(topic, json.dumps(doc).encode(), 0, 1, True, time.monotonic()))
    return b


@dataclass
class Site:
    url: str  # the dashboard's base URL
    db: Influx
    field: FieldRecords | None = None  # with `data_dir`: observations and decisions, in `db`
    codes: ObservationStore | None = None  # observer codes
    accounts: Accounts | None = None  # monitor accounts

    def get(self, path: str, **params: str) -> tuple[int, Any, dict[str, str]]:
        """(status, parsed JSON or text, headers) for a GET; errors are returned, not raised."""
        query = "?" + urllib.parse.urlencode(params) if params else ""
        try:
            with urllib.request.urlopen(self.url + path + query, timeout=30) as resp:
                status, body, headers = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, body, headers = exc.code, exc.read(), dict(exc.headers)
        text = body.decode("utf-8")
        if headers.get("content-type", "").startswith("application/json"):
            return status, json.loads(text), headers
        return status, text, headers

    def get_raw(self, raw_path: str) -> tuple[int, str]:
        """GET a path exactly as given (for hand-made, badly encoded query strings)."""
        try:
            with urllib.request.urlopen(self.url + raw_path, timeout=30) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")


@contextmanager
def served_site(
    influx_port: int,
    web: WebConfig | None = None,
    lines: list[str] | None = None,
    status: StatusBoard | None = None,
    data_dir: Path | None = None,
    upstreams: tuple[Upstream, ...] = (),
    site_config: SiteConfig | None = None,
    alert_store: AlertStore | None = None,
) -> Iterator[Site]:
    """The dashboard over `lines` (default: the test site's readings and alerts) and `status`;
    with `data_dir`, taking observations (codes and accounts in SQLite there, records in `db`);
    `site_config`: the time zone and names the pages write (gateway.toml `[site]`); `alert_store`:
    the gateway's alert store, for the acknowledgement links' page."""
    db = Influx(f"http://127.0.0.1:{influx_port}", f"w_{uuid.uuid4().hex[:12]}")
    db.create()
    lines = site_lines() + alert_lines() if lines is None else lines
    for i in range(0, len(lines), 5000):
        body = "\n".join(lines[i : i + 5000]).encode()
        req = urllib.request.Request(
            f"{db.url}/write?{urllib.parse.urlencode({'db': db.db, 'precision': 'ms'})}", data=body
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.status == 204
    web = (web or WebConfig()).model_copy(update={"port": free_port()})
    store = InfluxV1(InfluxConfig(url=db.url, database=db.db))  # type: ignore[arg-type]
    codes = accounts = field = None
    if data_dir is not None:
        codes = ObservationStore(data_dir / STORE_FILE)
        accounts = Accounts(data_dir / ACCOUNTS_FILE)
        writer = InfluxV1(InfluxConfig(url=db.url, database=db.db))  # type: ignore[arg-type]
        field = FieldRecords(writer, InfluxReader(writer, owned=False), data_dir / PHOTOS_DIR)
    app = create_app(
        web,
        InfluxReader(store),
        status or board(),
        clock=lambda: NOW,
        observations=codes,
        records=field,
        accounts=accounts,
        upstreams=upstreams,
        site=site_config,
        alert_store=alert_store,
    )
    server = BackgroundServer(app, web)
    server.start()
    site = Site(f"http://127.0.0.1:{web.port}", db, field, codes, accounts)
    wait_answering(site.get)
    try:
        yield site
    finally:
        server.stop()
        store.close()
        for part in (field, codes, accounts):
            if part is not None:
                part.close()
        db.drop()


def wait_answering(get: Callable[[str], object], timeout_s: float = 30.0) -> None:
    """Until a dashboard started on a thread answers (its OpenAPI document), at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            get("/api/v1/openapi.json")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
