"""The alert wiring with a real influxd and a real SQLite store, driven by a simulated clock: events
reach InfluxDB and the MQTT publisher, acks from the CLI and the command topic, last-will offline,
and a restart that rebuilds the windows from InfluxDB and remembers the active alert."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.alerts.service import Alerts
from gateway.channels.mqtt import MqttOptions
from gateway.cli import main
from gateway.config import GatewayConfig, load
from gateway.points import to_line
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message
from tests.alert_helpers import reading
from tests.fakes.clock import FakeClock
from tests.helpers import Influx, wait_for

PREFIX = "mw"
RULES = """
[[alerts.rules]]
name = "pm25-instant"
type = "threshold"
metric = "pm2_5"
limit = 50.0
clear_after = "2m"
remind_every = "10m"
[[alerts.rules]]
name = "pm25-1h"
type = "threshold"
metric = "pm2_5"
limit = 30.0
average = "1h"
[[alerts.rules]]
name = "silent"
type = "offline"
after = "30m"
"""


def _config(tmp_path: Path, influx: Influx) -> tuple[Path, GatewayConfig]:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\ntopic_prefix = "{PREFIX}"\n'
        f'[influxdb]\nurl = "{influx.url}"\ndatabase = "{influx.db}"\napi = "v1"\n{RULES}'
    )
    return path, load(path)


def _msg(topic: str, doc: object) -> Message:
    return Message(topic, json.dumps(doc).encode(), 1, 1, False, time.monotonic())


def test_events_acks_offline_and_a_restart(
    tmp_path: Path, influx: Influx, capsys: pytest.CaptureFixture[str]
) -> None:
    path, cfg = _config(tmp_path, influx)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=50)
    clock = FakeClock(start)
    published: list[tuple[str, dict[str, object]]] = []

    def publish(topic: str, payload: bytes) -> bool:
        published.append((topic, json.loads(payload)))
        return True

    db = InfluxV1(cfg.influxdb)
    alerts = Alerts(cfg, clock=clock, publish=publish)
    alerts.start()
    try:
        batch = []
        for i in range(1, 41):  # 40 minutes at 20, then the last at 90: the instant rule fires
            clock.now = start + timedelta(minutes=i, seconds=1)
            r = reading("haul-road", start + timedelta(minutes=i), 90.0 if i == 40 else 20.0)
            batch.append(r)
            alerts.engine_hook([r])
        db.write([to_line(r) for r in batch])  # what the gateway stored: the restart reloads it
        wait_for(lambda: [p for _, p in published if p["state"] == "raised"], 20, "raised on MQTT")
        topic, raised = published[0]
        assert topic == f"{PREFIX}/v1/tsagaan/haul-road/alert"
        assert raised["rule"] == "pm25-instant" and raised["value"] == 90.0 and raised["limit"] == 50.0
        rows = wait_for(lambda: influx.rows('SELECT * FROM "alert"'), 20, "the alert measurement")
        assert (
            rows[0]["state"] == "raised"
            and rows[0]["rule"] == "pm25-instant"
            and rows[0]["metric"] == "pm2_5"
        )
        assert rows[0]["site"] == "tsagaan" and rows[0]["node"] == "haul-road" and rows[0]["late"] is False
        assert rows[0]["severity"] == "warning" and rows[0]["average"] == "instant"
        assert rows[0]["message"] == raised["message"] and rows[0]["limit"] == 50.0
        # what a monitor sees: the active alert, and the 1-hour mean not evaluated (40 of 60 minutes)
        assert main(["ack", "--list", "--config", str(path)]) == 0
        listing = capsys.readouterr().out
        assert f"{raised['id']}  WARNING  since " in listing
        assert "value 90.0 µg/m³  peak 90.0 µg/m³" in listing
        assert f"    {raised['message']}\n" in listing  # the message, under its alert
        assert main(["ack", "--list", "--lang", "mn", "--config", str(path)]) == 0
        in_mn = capsys.readouterr().out
        assert f"{raised['id']}  АНХААРУУЛГА  эхэлсэн " in in_mn and "хүлцэх хэмжээ" in in_mn
        assert (
            "not evaluated: PM2.5 1-hour mean (pm25-1h) at haul-road (tsagaan): window 67% complete"
            in listing
        )
        # in the site's zone (`[site] timezone`), with the zone shown
        local = tmp_path / "gateway-local.toml"
        local.write_text(path.read_text() + '\n[site]\ntimezone = "Asia/Ulaanbaatar"\n')
        assert main(["ack", "--list", "--config", str(local)]) == 0
        began = datetime.fromisoformat(str(raised["started"]).replace("Z", "+00:00"))
        local_time = f"{began.astimezone(ZoneInfo('Asia/Ulaanbaatar')):%Y-%m-%d %H:%M} UTC+08"
        assert f"{raised['id']}  WARNING  since {local_time}  value" in capsys.readouterr().out
        # acknowledged from the CLI (applied by the gateway's next tick)
        assert main(["ack", str(raised["id"]), "--by", "oyuna", "--config", str(path), "--wait", "0"]) == 0
        alerts.tick()
        wait_for(lambda: [p for _, p in published if p["state"] == "acknowledged"], 20, "ack published")
        # a node's last will raises offline at once; an ack on the command topic reaches it
        alerts.on_status(_msg(f"{PREFIX}/v1/tsagaan/river-up/status", {"state": "offline"}))
        offline = wait_for(lambda: [p for _, p in published if p["rule"] == "silent"], 20, "offline")[0]
        assert offline["node"] == "river-up" and offline["state"] == "raised"
        # on another node's ack topic (which the ACL may let another monitor write): ignored
        alerts.on_ack(_msg(f"{PREFIX}/v1/tsagaan/haul-road/alert/ack", {"id": offline["id"], "by": "x"}))
        assert alerts.engine.by_id[offline["id"]].acked_by is None
        alerts.on_ack(_msg(f"{PREFIX}/v1/tsagaan/river-up/alert/ack", {"id": offline["id"], "by": "app"}))
        wait_for(lambda: [p for _, p in published if p["acked_by"] == "app"], 20, "app ack published")
    finally:
        alerts.stop()

    # the counters a monitor or operator reads: every channel delivered, nothing failed
    status = json.loads((cfg.data_dir / "alerts-status.json").read_text())
    assert status["channels"]["mqtt"]["sent"] == len(published) and status["failed_deliveries"] == 0
    assert status["channels"]["influxdb"]["events"] == len(published)
    # restart: the 1-hour window comes back from InfluxDB, the active alert from the store
    published.clear()
    again = Alerts(cfg, clock=clock, publish=publish)
    again.start()
    try:
        series = again.engine.series("tsagaan", "haul-road", "pm2_5")
        assert series is not None and len(series) == 40
        assert again.engine.machines[("pm25-instant", "tsagaan", "haul-road")].acked_by == "oyuna"
        # what the alert topic keeps a node's retained copy on after the restart: each active
        # alert's latest event, from the store, in the channel's words
        kept = again.active_words(MqttOptions(type="mqtt", language="mn"))
        assert [(d["rule"], d["node"], d["state"]) for d in kept] == [
            ("pm25-instant", "haul-road", "acknowledged"),
            ("silent", "river-up", "acknowledged"),
        ]
        assert all(d["language"] == "mn" and " дээр " in d["subject"] for d in kept)
        assert kept[0]["id"] == raised["id"] and "oyuna" in kept[0]["text"]
        for i in range(41, 61):  # still high for 20 minutes: no new raise, no reminder (acked)
            clock.now = start + timedelta(minutes=i, seconds=1)
            again.engine_hook([reading("haul-road", start + timedelta(minutes=i), 90.0)])
        # the 1-hour mean, complete only thanks to the reloaded 40 minutes, crosses 30 now
        wait_for(lambda: ("pm25-1h", "raised") in [(p["rule"], p["state"]) for _, p in published], 20, "1h")
        states = [(p["rule"], p["state"]) for _, p in published]
        assert ("pm25-instant", "raised") not in states and ("pm25-instant", "reminder") not in states
        for i in range(61, 65):
            clock.now = start + timedelta(minutes=i, seconds=1)
            again.engine_hook([reading("haul-road", start + timedelta(minutes=i), 10.0)])
        wait_for(lambda: [p for _, p in published if p["state"] == "cleared"], 20, "cleared")
        cleared = [p for _, p in published if p["rule"] == "pm25-instant" and p["state"] == "cleared"]
        assert len(cleared) == 1 and cleared[0]["id"] == raised["id"] and cleared[0]["acked_by"] == "oyuna"
        assert "Cleared: PM2.5 at haul-road (tsagaan) is back within the limit" in str(cleared[0]["message"])
    finally:
        again.stop()


def _v2_config(tmp_path: Path, influx: Influx, bucket: str) -> GatewayConfig:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\ntopic_prefix = "{PREFIX}"\n'
        f'[influxdb]\nurl = "{influx.url}"\napi = "v2"\norg = "community"\nbucket = "{bucket}"\n{RULES}'
    )
    return load(path)


def test_on_influxdb_2_a_restart_rebuilds_the_windows_through_its_v1_compatible_query(
    tmp_path: Path, influx: Influx, monkeypatch: pytest.MonkeyPatch
) -> None:
    # InfluxDB 2.x answers InfluxQL on /query with the bucket as the database (its DBRP mapping)
    # and the token in a header. No 2.x server installs here; the real influxd 1.x answers the
    # same request, and the reading of its answer into the windows is what is checked.
    monkeypatch.setenv("MINEWATCH_INFLUX_TOKEN", "s3cret-token")
    cfg = _v2_config(tmp_path, influx, bucket=influx.db)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=50)
    influx.write([to_line(reading("haul-road", start + timedelta(minutes=i), 20.0)) for i in range(1, 41)])
    # a water node: no rule keeps a window of turbidity, but its readings restart its offline clock
    water = [reading("river-up", start + timedelta(minutes=i), 3.0, metric="turbidity") for i in range(1, 21)]
    influx.write([to_line(r) for r in water])
    clock = FakeClock(start + timedelta(minutes=40, seconds=1))
    published: list[dict[str, object]] = []
    alerts = Alerts(
        cfg, clock=clock, publish=lambda topic, payload: published.append(json.loads(payload)) or True
    )
    alerts.start()
    try:
        series = alerts.engine.series("tsagaan", "haul-road", "pm2_5")
        assert series is not None and len(series) == 40
        assert alerts.engine.series("tsagaan", "river-up", "turbidity") is None
        clock.now = start + timedelta(minutes=49)  # 29 minutes after river-up's last reading
        alerts.tick()
        silent = alerts.engine.machines.get(("silent", "tsagaan", "river-up"))
        assert silent is None or not silent.is_active
        clock.now = start + timedelta(minutes=51)  # 31: offline ("after = 30m")
        alerts.tick()
        offline = wait_for(lambda: [p for p in published if p["rule"] == "silent"], 20, "offline")
        assert [(p["node"], p["state"]) for p in offline] == [("river-up", "raised")]
    finally:
        alerts.stop()


def test_on_influxdb_2_without_a_dbrp_mapping_the_windows_start_empty_and_say_why(
    tmp_path: Path, influx: Influx, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MINEWATCH_INFLUX_TOKEN", "s3cret-token")
    cfg = _v2_config(tmp_path, influx, bucket="no-such-bucket")
    alerts = Alerts(cfg, clock=FakeClock(datetime.now(UTC)), publish=lambda topic, payload: True)
    alerts.start()
    try:
        assert alerts.engine.series("tsagaan", "haul-road", "pm2_5") is None
        assert "could not reload history from bucket 'no-such-bucket'" in caplog.text
        assert "DBRP mapping" in caplog.text
    finally:
        alerts.stop()


def test_a_query_answered_with_a_web_page_leaves_the_windows_empty_and_the_gateway_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A reverse proxy in front of InfluxDB answering 200 with its own HTML page: not InfluxDB
    # speaking, so the windows start empty, the log says why, and the gateway starts all the same.
    class Page(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>maintenance</html>")

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proxy = Influx(f"http://127.0.0.1:{server.server_address[1]}", "minewatch")
        cfg = _config(tmp_path, proxy)[1]
        alerts = Alerts(cfg, clock=FakeClock(datetime.now(UTC)), publish=lambda topic, payload: True)
        alerts.start()
        try:
            assert alerts.engine.series("tsagaan", "haul-road", "pm2_5") is None
            assert "could not reload history (InfluxDB /query answered with no JSON" in caplog.text
        finally:
            alerts.stop()
    finally:
        server.shutdown()
