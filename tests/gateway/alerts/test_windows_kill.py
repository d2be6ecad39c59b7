"""A gateway killed (SIGKILL) after a backlog of late readings starts with the alert windows a full
reload from InfluxDB would give (issue 24): its windows file, saved at its start, holds what it had
then; the readings stored since are reloaded by time, and the late ones, stamped hours back, come
from the late log beside the file. Real Mosquitto, influxd and `minewatch-gateway run`."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway import devservices
from gateway.alerts import snapshot
from gateway.alerts.engine import Engine
from gateway.alerts.service import Alerts
from gateway.config import load
from gateway.points import to_line
from gateway.stores import open_store
from tests.alert_helpers import reading
from tests.helpers import Influx, gateway_toml, publish_many, spawn, wait_for, wait_gateway_ready


def _doc(prefix: str, node: str, seq: int, ts: datetime, pm: float) -> tuple[str, bytes]:
    doc = {
        "schema": 1,
        "site": "tsagaan",
        "node": node,
        "seq": seq,
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "period_s": 60,
        "metrics": {"pm2_5": {"value": pm, "n": 60}, "pm10": {"value": pm * 1.5, "n": 60}},
        "flags": [],
    }
    return f"{prefix}/v1/tsagaan/{node}/reading", json.dumps(doc).encode()


def _pairs(engine: Engine, node: str, metric: str, since_ms: int) -> list[tuple[int, float]]:
    series = engine.series("tsagaan", node, metric)
    assert series is not None, f"no {metric} window for {node}"
    _, parts = series.to_parts()
    out = [(int(t), float(v)) for t, v in zip(parts[0], parts[1], strict=True) if t > since_ms]
    for part in parts:
        part.release()
    return out


def test_a_killed_gateway_starts_with_the_windows_a_full_reload_gives_late_readings_and_all(
    mosquitto: devservices.Service, influx: Influx, prefix: str, workdir: Path
) -> None:
    cfg_path = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra='[alerts]\npresets = ["who-2021"]\n',
    )
    data = workdir / "gateway-data"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    history = [reading("a", now - timedelta(minutes=m), 10.0 + m % 7) for m in range(1, 180)]
    influx.write([to_line(r) for r in history])
    gateway = spawn(["gateway.cli", "run", "--config", str(cfg_path)], workdir / "gateway.log")
    try:
        wait_gateway_ready(mosquitto.port, prefix, influx)
        # saved at the start, with its (empty) late log
        wait_for(lambda: (data / snapshot.FILE).exists(), 20, "the windows saved at start")
        logs = list(data.glob("alert-windows.*.late"))
        assert len(logs) == 1
        # a backlog stamped hours back, for a known node and a new one, and a live reading
        late = [
            _doc(prefix, "a", 1000 + i, now - timedelta(hours=6, minutes=-i), 80.0 + i % 5) for i in range(60)
        ]
        late += [_doc(prefix, "b", 1 + i, now - timedelta(hours=8, minutes=-i), 30.0 + i) for i in range(30)]
        live = [_doc(prefix, "a", 5000, now + timedelta(seconds=1), 12.5)]
        publish_many(mosquitto.port, late + live)
        count = 'SELECT count("seq") FROM "reading" WHERE "site" = \'tsagaan\''
        stored = len(history) + len(late) + len(live)
        wait_for(lambda: (influx.rows(count) or [{"count": 0}])[0]["count"] == stored, 30, "all stored")
        wait_for(lambda: len(logs[0].read_text().splitlines()) == len(late), 10, "the late log")
        # Acknowledged to the broker and remembered as seen (recent-seqs.json, every 5 s): else
        # the broker hands the backlog to the next run, which would fill the windows without the log.
        time.sleep(6)
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        assert (data / snapshot.FILE).exists()  # the save at start, not one at a stop
        gateway = spawn(["gateway.cli", "run", "--config", str(cfg_path)], workdir / "gateway.log")
        again = [_doc(prefix, "a", 5001, now + timedelta(seconds=2), 13.0)]
        publish_many(mosquitto.port, again)  # stored once this gateway runs: the windows reloaded
        wait_for(lambda: influx.rows(count)[0]["count"] == stored + 1, 60, "the second run storing")
        gateway.send_signal(signal.SIGTERM)  # a clean stop writes the windows it had
        assert gateway.wait(30) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait(10)
    log = (workdir / "gateway.log").read_text()
    assert "90 late readings stored after the windows were saved" in log
    cfg = load(cfg_path)
    restarted = Engine(cfg.alerts.all_rules(), clock=lambda: now)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert snapshot.load(restarted, data / snapshot.FILE, now_ms) is not None
    # what a first start would build from InfluxDB, with no file at all
    fresh = Alerts(cfg.model_copy(update={"data_dir": workdir / "fresh"}), publish=lambda t, p: True)
    (workdir / "fresh").mkdir()
    store = open_store(cfg.influxdb)
    fresh._rebuild(store)
    store.close()
    since = now_ms - int(fresh.engine.history_s * 1000) + 120_000  # both reach this far
    for node in ("a", "b"):
        for metric in ("pm2_5", "pm10"):
            assert _pairs(restarted, node, metric, since) == _pairs(fresh.engine, node, metric, since)
    backlog = {t for t, _ in _pairs(restarted, "a", "pm2_5", since)}
    assert int((now - timedelta(hours=6)).timestamp() * 1000) in backlog  # from the late log
    assert len(_pairs(restarted, "b", "pm2_5", since)) == 30
