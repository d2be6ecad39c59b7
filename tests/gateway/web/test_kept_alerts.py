"""The dashboard's active alerts follow the gateway's alert store (`alerts.sqlite`) by event id
(issue 24), through a real gateway process, Mosquitto and influxd: the alerts it raises are listed
from memory as InfluxDB lists them, an acknowledgement and a clear show within a refresh, an idle
refresh reads no event, and without the file the dashboard asks the database."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway import devservices
from gateway.alerts.store import AlertStore, EventFollower
from gateway.config import WebConfig
from gateway.devservices import free_port
from gateway.stores.reader import Reader
from gateway.web.app import create_app
from gateway.web.kept import KeptAlerts
from gateway.web.server import BackgroundServer
from tests.helpers import (
    Influx,
    gateway_toml,
    pm25_message,
    publish_many,
    spawn,
    wait_for,
    wait_gateway_ready,
)

RULE = """
[[alerts.rules]]
name = "pm25-instant"
type = "threshold"
metric = "pm2_5"
limit = 100.0
clear_below = 60.0
clear_after = "1m"
remind_every = "0"
severity = "warning"
"""


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return str(resp.read().decode())


def _pages(base: str, path: str) -> list[tuple[list[dict[str, Any]], str, str | None]]:
    """Every page of a paged route, following `Link: <...>; rel="next"`: (items, total, link)."""
    out = []
    url: str | None = base + path
    while url is not None:
        with urllib.request.urlopen(url, timeout=30) as resp:
            link = resp.headers.get("Link")
            out.append((json.loads(resp.read()), resp.headers["X-Total-Count"], link))
        found = re.fullmatch(r'<([^>]+)>; rel="next"', link or "")
        url = base + found.group(1) if found else None
    return out


def test_the_dashboard_lists_the_gateways_active_alerts_from_its_store(
    mosquitto: devservices.Service, influx: Influx, workdir: Path, reader: Reader
) -> None:
    cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix="tsagaan",
        extra=RULE,
    )
    gateway = spawn(["gateway.cli", "run", "--config", str(cfg)], workdir / "gateway.log")
    path = workdir / "gateway-data" / "alerts.sqlite"
    web = WebConfig(port=free_port())
    kept = KeptAlerts(reader, follow=EventFollower(path), refresh_s=3600)
    server: BackgroundServer | None = None
    try:
        wait_gateway_ready(mosquitto.port, "tsagaan", influx)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
        sources = ("crusher", "haul-road", "pit")
        publish_many(mosquitto.port, [pm25_message(n, 1, start, 200.0) for n in sources])
        later = datetime.now(UTC) + timedelta(minutes=5)  # after every event, acknowledgements too

        def nodes(source: str) -> list[str]:
            if source == "kept":
                kept.refresh()
                return sorted(a.node for a in kept.active(later))
            return sorted(a.node for a in reader.active_alerts(later))

        everyone = ["crusher", "haul-road", "pit"]
        wait_for(lambda: nodes("kept") == everyone, 30, "three alerts in the store")
        wait_for(lambda: nodes("influx") == everyone, 30, "three alerts recorded in InfluxDB")
        assert kept.active(later) == reader.active_alerts(later)  # the same events, the same order
        assert kept.active(later, site="tsagaan", node="pit") == reader.active_alerts(
            later, site="tsagaan", node="pit"
        )
        assert kept.with_counts(later)[1] == {"tsagaan": 3}
        assert kept.refresh() == 0  # idle: no event read
        # the pages read the same table
        app = create_app(web, reader, clock=lambda: later, kept_alerts=kept)
        server = BackgroundServer(app, web)
        server.start()
        base = f"http://127.0.0.1:{web.port}"
        # an acknowledgement, requested as /ack and `minewatch-gateway ack` request it
        (pit,) = kept.active(later, node="pit")
        assert pit.alert_id is not None and pit.acked_by is None
        store = AlertStore(path)
        store.request_ack(pit.alert_id, "oyuna")
        store.close()

        def acked_by() -> str | None:
            kept.refresh()
            return kept.active(later, node="pit")[0].acked_by

        wait_for(lambda: acked_by() == "oyuna", 30, "the acknowledgement")
        listed = json.loads(_get(f"{base}/api/v1/alerts/active"))
        acks = {a["node"]: a["acked_by"] for a in listed}
        assert acks == {"crusher": None, "haul-road": None, "pit": "oyuna"}
        # in pages, as the node list: two, then the third by the link, the same list in the same order
        pages = _pages(base, "/api/v1/alerts/active?limit=2")
        assert [(len(items), total) for items, total, _ in pages] == [(2, "3"), (1, "3")]
        assert pages[0][2] == '</api/v1/alerts/active?limit=2&offset=2>; rel="next"' and pages[1][2] is None
        assert [a for items, _, _ in pages for a in items] == listed
        ((one, total, link),) = _pages(base, "/api/v1/alerts/active?site=tsagaan&offset=1&limit=5")
        assert one == listed[1:] and total == "3" and link is None
        assert _pages(base, "/api/v1/alerts/active?offset=3") == [([], "3", None)]
        # a clear: haul-road back under 60 for a minute
        publish_many(
            mosquitto.port,
            [pm25_message("haul-road", i, start + timedelta(minutes=i - 1), 20.0) for i in (2, 3, 4)],
        )
        wait_for(lambda: nodes("kept") == ["crusher", "pit"], 30, "haul-road cleared")
        assert "haul-road" not in {a["node"] for a in json.loads(_get(f"{base}/api/v1/alerts/active"))}
        overview = _get(f"{base}/")
        assert 'data-site="tsagaan"' in overview and "pit" in overview

        def recorded() -> bool:
            return kept.active(later) == reader.active_alerts(later)

        wait_for(recorded, 30, "InfluxDB's record of the ack and the clear")
        assert kept.with_counts(later)[1] == {"tsagaan": 2}
        assert kept.refresh() == 0
        # a dashboard whose store is elsewhere (no file here) asks the database
        elsewhere = KeptAlerts(reader, follow=EventFollower(workdir / "elsewhere" / "alerts.sqlite"))
        assert elsewhere.active(later) == reader.active_alerts(later)
        assert elsewhere.with_counts(later)[1] == {"tsagaan": 2}
        # and a page for a moment before an event asks the database what was active then
        assert kept.active(start - timedelta(minutes=1)) == []
    finally:
        if server is not None:
            server.stop()
        if gateway.poll() is None:
            gateway.send_signal(signal.SIGTERM)
            try:
                gateway.wait(20)
            except subprocess.TimeoutExpired:
                gateway.kill()
                gateway.wait(10)
