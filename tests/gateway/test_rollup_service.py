"""The roll-ups in the real gateway: `run` marks the buckets of what it stores, through real
Mosquitto and influxd, and keeps the marks over a stop; what recomputes them then agrees with the
raw readings (the recompute itself, its timing and late data: tests/gateway/test_rollup.py)."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway import devservices
from gateway.config import InfluxConfig
from gateway.rollup import DIRTY_FILE, SETTLE, Rollups
from gateway.stores import open_store, rollups_for
from tests.fakes.clock import FakeClock
from tests.gateway.test_rollup import assert_rollups_match
from tests.helpers import Influx, gateway_toml, publish_many, spawn, wait_for, wait_gateway_ready


def test_the_running_gateway_marks_a_backlog_and_its_marks_survive_a_stop(
    mosquitto: devservices.Service, influx: Influx, prefix: str, workdir: Path
) -> None:
    cfg = gateway_toml(
        workdir / "gateway.toml", mqtt_port=mosquitto.port, influx_url=influx.url, db=influx.db, prefix=prefix
    )
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=30, second=0, microsecond=0)
    backlog = []
    for i in range(1, 91):  # a node's 90 minutes after an outage, sent at once: two hours, maybe two days
        doc = {
            "schema": 1,
            "site": "tsagaan",
            "node": "haul-road",
            "seq": i,
            "ts": (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "period_s": 60,
            "metrics": {"pm2_5": {"value": 10.0 + i % 13, "n": 60}, "pm10": {"value": 20.0 + i % 7, "n": 60}},
            "flags": [],
        }
        backlog.append((f"{prefix}/v1/tsagaan/haul-road/reading", json.dumps(doc).encode()))
    gateway = spawn(["gateway.cli", "run", "--config", str(cfg)], workdir / "gateway.log")
    try:
        wait_gateway_ready(mosquitto.port, prefix, influx)
        publish_many(mosquitto.port, backlog)
        count = 'SELECT count("seq") FROM "reading" WHERE "site" = \'tsagaan\''
        wait_for(lambda: (influx.rows(count) or [{"count": 0}])[0]["count"] == 90, 30, "the backlog stored")
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(15) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait(15)
    state = workdir / "gateway-data" / DIRTY_FILE
    marked = {(s, n, p) for s, n, p, _ in json.loads(state.read_text())["dirty"]}
    assert {("tsagaan", "haul-road", "1h"), ("tsagaan", "haul-road", "1d")} <= marked
    influx_cfg = InfluxConfig(url=influx.url, database=influx.db, api="v1")  # type: ignore[arg-type]
    store = open_store(influx_cfg)
    clock = FakeClock(datetime.now(UTC))
    again = Rollups(rollups_for(store, influx_cfg), clock, state)  # the next start, on the same file
    clock.advance(SETTLE.total_seconds())
    again.tick()
    assert again.pending == 0
    influx.rows('DELETE FROM "reading" WHERE "site" = \'probe\'')  # the readiness probes: not ours
    influx.rows('DELETE FROM "reading_1h" WHERE "site" = \'probe\'')
    influx.rows('DELETE FROM "reading_1d" WHERE "site" = \'probe\'')
    assert_rollups_match(influx)
