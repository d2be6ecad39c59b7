"""Forwarding to Sensor.Community, checked byte by byte by a real HTTP server on 127.0.0.1 standing
in for api.sensor.community (never the real service): the requests its firmware would send, retries
with backoff on 5xx and refusals not retried, nothing for nodes without recorded consent, and an
ingest that never waits for the map."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from contract import __version__
from contract.flags import Flag
from contract.metrics import Metric
from contract.wire import MetricValue, ReadingPayload, format_ts
from gateway import devservices
from gateway.community.config import CommunityMap
from gateway.community.forwarder import Forwarder
from gateway.config import load
from tests.fakes.clock import T0, FakeClock
from tests.helpers import Influx, gateway_toml, publish, spawn, wait_for, wait_gateway_ready


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Recorder:
    """An HTTP server that records every request and answers with the next scripted status."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.requests: list[Recorded] = []
        self.statuses = list(statuses or [])
        self.release = threading.Event()
        self.release.set()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.requests.append(Recorded("POST", self.path, dict(self.headers.items()), body))
                recorder.release.wait(30)
                status = recorder.statuses.pop(0) if recorder.statuses else 201
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/push-sensor-data/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.close()


def _target(url: str, node: str = "haul-road") -> CommunityMap:
    return CommunityMap(
        site="tsagaan",
        node=node,
        service="sensor.community",
        sensor_id="raspi-00000000a1b2c3d4",
        consent="D. Tuya (node host), signed form of 2026-10-20",
        url=url,
    )


def _reading(
    seq: int, ts: datetime, flags: list[Flag] | None = None, pm25: float | None = 12.3
) -> ReadingPayload:
    return ReadingPayload(
        schema=1, site="tsagaan", node="haul-road", seq=seq, ts=ts, period_s=60, flags=flags or [],
        metrics={
            Metric.PM1_0: MetricValue(8.0, 60, 8.0),
            Metric.PM2_5: MetricValue(pm25, 60 if pm25 is not None else 0, 0.0),
            Metric.PM10: MetricValue(20.456, 60, 20.456),
            Metric.AIR_TEMP: MetricValue(-7.25, 60, -7.25),
            Metric.RH: MetricValue(61.0, 60, 61.0),
            Metric.PRESSURE: MetricValue(868.3, 60, 868.3),
            Metric.TURBIDITY: MetricValue(3.0, 60, 3.0),  # no Sensor.Community value type: not sent
        },
    )  # fmt: skip


def test_the_requests_are_the_firmwares_byte_for_byte(recorder: Recorder) -> None:
    clock = FakeClock(T0)
    fwd = Forwarder([_target(recorder.url)], clock, retry_base_s=0.01)
    fwd.start()
    try:
        fwd.on_stored([_reading(1, T0 - timedelta(seconds=5))])
        wait_for(lambda: fwd.stats.sent == 2, 10, "two pushes")
    finally:
        fwd.stop()
    pm, bme = recorder.requests
    version = f"minewatch-{__version__}"
    assert pm.body == (
        b'{"software_version": "' + version.encode() + b'", "sensordatavalues":['
        b'{"value_type":"P0","value":"8.00"},{"value_type":"P1","value":"20.46"},'
        b'{"value_type":"P2","value":"12.30"}]}'
    )
    assert bme.body == (
        b'{"software_version": "' + version.encode() + b'", "sensordatavalues":['
        b'{"value_type":"temperature","value":"-7.25"},{"value_type":"pressure","value":"86830.00"},'
        b'{"value_type":"humidity","value":"61.00"}]}'
    )
    for request, pin in ((pm, "1"), (bme, "11")):
        assert (request.method, request.path) == ("POST", "/v1/push-sensor-data/")
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Sensor"] == "raspi-00000000a1b2c3d4"
        assert request.headers["X-PIN"] == pin
        assert request.headers["User-Agent"] == version
        assert json.loads(request.body)["software_version"] == version  # and it is JSON


def test_invalid_values_old_readings_and_nodes_without_consent_are_not_sent(recorder: Recorder) -> None:
    clock = FakeClock(T0)
    fwd = Forwarder([_target(recorder.url)], clock, retry_base_s=0.01)
    fwd.start()
    other = _reading(2, T0).model_copy(update={"node": "river-down"})  # not in [[community_maps]]
    old = _reading(3, T0 - timedelta(minutes=11))  # Sensor.Community would stamp it "now"
    fault = _reading(4, T0, [Flag.SENSOR_FAULT], pm25=None)  # invalid: the whole reading
    humid = _reading(5, T0, [Flag.HIGH_HUMIDITY])  # suspect, still sent
    try:
        fwd.on_stored([other, old, fault, humid])
        wait_for(lambda: fwd.stats.sent == 2, 10, "the humid reading's two pushes")
    finally:
        fwd.stop()
    assert len(recorder.requests) == 2
    assert b'"P2","value":"12.30"' in recorder.requests[0].body


def test_a_5xx_is_retried_with_backoff_and_a_4xx_is_not() -> None:
    rec = Recorder([503, 502, 201, 400])
    fwd = Forwarder([_target(rec.url)], FakeClock(T0), retry_base_s=0.01)
    fwd.start()
    try:
        reading = _reading(1, T0)
        only_pm = reading.model_copy(update={"metrics": {Metric.PM2_5: reading.metrics[Metric.PM2_5]}})
        fwd.on_stored([only_pm])
        wait_for(lambda: fwd.stats.sent == 1, 10, "delivered on the third try")
        fwd.on_stored([only_pm.model_copy(update={"seq": 2})])
        wait_for(lambda: fwd.stats.failed == 1, 10, "a 400 given up")
    finally:
        fwd.stop()
        rec.close()
    assert len(rec.requests) == 4  # three tries, then the refused one once
    assert rec.requests[0].body == rec.requests[2].body  # the same request retried


def test_a_hung_map_never_holds_up_ingest_and_the_queue_stays_bounded(recorder: Recorder) -> None:
    recorder.release.clear()  # the service accepts the connection and never answers
    fwd = Forwarder([_target(recorder.url)], FakeClock(T0), queue_size=3, retry_base_s=0.01)
    fwd.start()
    try:
        for seq in range(1, 51):  # 100 pushes against a queue of 3 and one stuck request
            fwd.on_stored([_reading(seq, T0)])  # returns at once: put_nowait
        assert fwd.stats.dropped >= 100 - 3 - 1
        assert fwd.stats.sent == 0
    finally:
        recorder.release.set()
        fwd.stop()


def test_a_listed_node_needs_consent_and_a_sensor_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    config = tmp_path / "gateway.toml"
    config.write_text(
        '[[community_maps]]\nsite = "tsagaan"\nnode = "haul-road"\nservice = "sensor.community"\n'
    )
    assert (
        main(
            ["export", "--config", str(config), "--site", "s", "--start", "2026-11-01", "--end", "2026-11-02"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert str(config) in err and "community_maps[0]" in err and "consent" in err
    config.write_text(
        '[[community_maps]]\nsite = "tsagaan"\nnode = "haul-road"\nservice = "sensor.community"\n'
        'consent = "D. Tuya, 2026-10-20"\n'
    )
    assert (
        main(
            ["export", "--config", str(config), "--site", "s", "--start", "2026-11-01", "--end", "2026-11-02"]
        )
        == 2
    )
    assert "sensor_id" in capsys.readouterr().err
    (tmp_path / "empty.toml").write_text("")
    assert load(tmp_path / "empty.toml").community_maps == []  # off by default


def test_run_forwards_a_published_reading(
    mosquitto: devservices.Service, influx: Influx, tmp_path: Path, recorder: Recorder, prefix: str
) -> None:
    port = mosquitto.port
    extra = (
        f'[[community_maps]]\nsite = "tsagaan"\nnode = "haul-road"\nservice = "sensor.community"\n'
        f'sensor_id = "raspi-00000000a1b2c3d4"\nconsent = "D. Tuya, 2026-10-20"\nurl = "{recorder.url}"\n'
    )
    config = gateway_toml(
        tmp_path / "gateway.toml",
        mqtt_port=port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=extra,
    )
    gateway = spawn(["gateway.cli", "run", "--config", str(config)], tmp_path / "gateway.log")
    try:
        wait_gateway_ready(port, prefix, influx)
        reading = _reading(1, datetime.now(UTC))
        metrics = {m.value: mv.as_entry() for m, mv in reading.metrics.items()}
        doc = {
            "schema": 1, "site": "tsagaan", "node": "haul-road", "seq": 1, "ts": format_ts(reading.ts),
            "period_s": 60, "metrics": metrics, "flags": [],
        }  # fmt: skip
        publish(port, f"{prefix}/v1/tsagaan/haul-road/reading", json.dumps(doc).encode())
        wait_for(lambda: len(recorder.requests) == 2, 20, "the gateway's two pushes")
    finally:
        gateway.terminate()
        try:
            gateway.wait(15)
        except subprocess.TimeoutExpired:
            gateway.kill()
    assert {r.headers["X-PIN"] for r in recorder.requests} == {"1", "11"}
