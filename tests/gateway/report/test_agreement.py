"""One exceedance, made through the real parts (the real broker, the real gateway process with its
alert engine and its dashboard, the real influxd), told five times: in the alert messages on the
alert topic, in the dashboard's alert history and its API, in the regulators' report, and in the
export of its readings. Each says the same peak, start and end: the first four read them from the
alert's own record, and the export's readings are what that record was made from (issue 17)."""

from __future__ import annotations

import csv
import json
import signal
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contract.wire import format_ts
from gateway.cli import main
from gateway.devservices import Service, free_port
from tests.gateway.report.test_report import tables
from tests.helpers import Influx, Listener, gateway_toml, publish_many, spawn, wait_for, wait_gateway_ready

# One reading a minute: up to a peak of 90.48 and down again. Over 50.0 from 52.0 (minute 3) to 55.0
# (minute 8); back within at 40.0 (minute 9); cleared two minutes later (minute 11).
RISE_AND_FALL = [20.0, 30.0, 45.0, 52.0, 61.0, 75.03, 90.48, 70.0, 55.0, 40.0, 30.0, 25.0, 20.0, 20.0]
RULE = """
[[alerts.rules]]
name = "pm25-instant"
type = "threshold"
metric = "pm2_5"
limit = 50.0
clear_after = "2m"
remind_every = "0"
"""


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if path.startswith("/api/") else body.decode()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_report_messages_dashboard_and_api_tell_the_same_episode(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    web_port = free_port()
    cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=f"{RULE}[web]\nport = {web_port}\n",
    )
    listener = Listener(mosquitto.port, f"{prefix}/v1/+/+/alert")
    gateway = spawn(["gateway.cli", "run", "--config", str(cfg)], workdir / "gateway.log")
    t0 = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    try:
        wait_gateway_ready(mosquitto.port, prefix, influx)
        docs = []
        for i, value in enumerate(RISE_AND_FALL):
            payload = {
                "schema": 1,
                "site": "tsagaan",
                "node": "haul-road",
                "seq": i + 1,
                "ts": format_ts(t0 + timedelta(minutes=i)),
                "period_s": 60,
                "metrics": {"pm2_5": {"value": value, "n": 60}},
                "flags": [],
            }
            docs.append((f"{prefix}/v1/tsagaan/haul-road/reading", json.dumps(payload).encode()))
        publish_many(mosquitto.port, docs)

        def ours() -> list[dict[str, Any]]:
            return [p for p in listener.payloads("/alert") if p["rule"] == "pm25-instant"]

        wait_for(lambda: len(ours()) >= 2, 60, "the raise and the all-clear on the alert topic")
        events = ours()
        start = format_ts(t0 - timedelta(hours=1))

        def listed() -> list[dict[str, Any]]:
            found = _get(web_port, f"/api/v1/alerts?site=tsagaan&start={start}")
            return [a for a in found if a["rule"] == "pm25-instant"]

        wait_for(lambda: len(listed()) >= 2, 30, "both events in the dashboard's API")
        api = listed()
        history = _get(web_port, f"/alerts?site=tsagaan&start={start}")
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(15) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
        listener.close()

    raised, cleared = events
    began, ended, all_clear = (t0 + timedelta(minutes=m) for m in (3, 9, 11))
    # the alert topic: the engine's record
    assert (raised["state"], cleared["state"]) == ("raised", "cleared")
    assert raised["started"] == cleared["started"] == format_ts(began)
    assert cleared["ended"] == format_ts(ended) and cleared["ts"] == format_ts(all_clear)
    assert cleared["peak"] == 90.48 == max(RISE_AND_FALL)
    # the messages: the all-clear carries the peak, the start and the end, as the report writes them
    assert "peak 90.5 µg/m³" in cleared["message"]
    assert f"from {began:%Y-%m-%d %H:%M} UTC to {ended:%Y-%m-%d %H:%M} UTC" in cleared["message"]
    assert "52.0 µg/m³" in raised["message"] and "(strictly above it)" in raised["message"]
    # the dashboard's API and its history page: the same record
    by_state = {a["state"]: a for a in api}
    assert by_state["cleared"]["peak"] == 90.48
    assert _at(by_state["cleared"]["started"]) == began
    assert _at(by_state["cleared"]["ended"]) == ended
    assert "peak 90.5 µg/m³" in history and f"from {began:%Y-%m-%d %H:%M} UTC" in history

    # the report, from the same database
    out = workdir / "report.html"
    period = [
        "--start",
        f"{t0 - timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}",
        "--end",
        f"{t0 + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}",
    ]
    assert main(["report", "--config", str(cfg), "--site", "tsagaan", *period, "--out", str(out)]) == 0
    t = tables(out.read_text(encoding="utf-8"))
    (row,) = t["exceedance-table"]
    assert row[5:10] == [
        f"{began:%Y-%m-%d %H:%M} UTC",  # start: the first reading over the limit
        f"{ended:%Y-%m-%d %H:%M} UTC",  # end: the first reading back within it
        f"{all_clear:%Y-%m-%d %H:%M} UTC",  # the all-clear, clear_after later
        "90.5",  # the alert's peak, as the message writes it
        "90.5",  # the highest reading stored in the episode: the same number
    ]
    summary = next(r for r in t["summary-table"] if r[:2] == ["haul-road", "PM2.5 (µg/m³)"])
    assert summary[-1] == f"90.5 at {t0 + timedelta(minutes=6):%Y-%m-%d %H:%M} UTC"
    assert "exceeds when strictly above the limit" in row[4]

    # the export of the same readings: its highest value is the episode's peak, its first reading over
    # the limit the start, and its first reading back within it the end
    exported = workdir / "episode.csv"
    assert main(["export", "--config", str(cfg), "--site", "tsagaan", *period, "--out", str(exported)]) == 0
    with exported.open(encoding="utf-8", newline="") as f:
        values = [(_at(r["time"]), float(r["pm2_5"])) for r in csv.DictReader(f) if r["pm2_5"]]
    assert max(v for _, v in values) == cleared["peak"] == 90.48
    assert next(at for at, v in values if v > 50.0) == began
    assert next(at for at, v in values if at > began and v <= 50.0) == ended
