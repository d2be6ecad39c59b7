"""The InfluxDB v2 path. No InfluxDB 2 server installs here, so a local HTTP server records what
influxdb-client sends to /api/v2/write and answers like InfluxDB 2 would (docs/operations.md says so)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from contract.wire import MetricValue, ReadingPayload
from gateway.config import InfluxConfig
from gateway.points import to_line
from gateway.stores import StoreError, open_store
from gateway.stores.influx_v1 import InfluxV1
from gateway.stores.influx_v2 import InfluxV2


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # the writes
        self.queries: list[str] = []  # InfluxQL asked on the v1-compatible /query
        self.status = 204
        self.version = "v2.7.10"
        # what /query answers: nothing stored at the batch's times
        self.query_answer: tuple[int, dict[str, Any]] = (200, {"results": [{"statement_id": 0}]})


@pytest.fixture
def fake_v2() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(204)
            self.send_header("X-Influxdb-Version", recorder.version)
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            url = urlparse(self.path)
            if url.path == "/query":
                recorder.queries.append(parse_qs(body.decode())["q"][0])
                status, doc = recorder.query_answer
                answer = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                return
            recorder.requests.append(
                {"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers), "body": body}
            )
            self.send_response(recorder.status)
            if recorder.status >= 400:
                msg = b'{"code":"invalid","message":"field type conflict"}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
            else:
                self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    server.shutdown()
    server.server_close()


def reading() -> ReadingPayload:
    return ReadingPayload(
        schema=1,
        site="tsagaan",
        node="haul-road",
        seq=7,
        ts=datetime(2026, 11, 22, 10, 1, tzinfo=UTC),
        period_s=60,
        metrics={"pm2_5": MetricValue(value=10.9, raw=12.0, n=60, cal="pms5003-a12@2026-10-01")},  # type: ignore[dict-item]
        flags=[],
    )


EXPECTED_LINE = (
    "reading,node=haul-road,site=tsagaan "
    'flags="",seq=7i,pm2_5=10.9,pm2_5_raw=12.0,pm2_5_n=60i,pm2_5_cal="pms5003-a12@2026-10-01",period_s=60i '
    "1795341660000"  # 2026-11-22T10:01:00Z; "12.0" without "i" is a float
)


def test_line_protocol_is_the_contract() -> None:
    assert to_line(reading()) == EXPECTED_LINE


def test_v2_write_sends_exact_lines_org_bucket_and_token(
    fake_v2: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, recorder = fake_v2
    monkeypatch.setenv("MINEWATCH_INFLUX_TOKEN", "s3cret-token")
    store = open_store(InfluxConfig(url=url, api="auto", org="community", bucket="river"))  # type: ignore[arg-type]
    assert isinstance(store, InfluxV2)
    store.write([to_line(reading())])
    store.close()
    (req,) = recorder.requests
    assert req["path"] == "/api/v2/write"
    assert req["query"] == {"org": ["community"], "bucket": ["river"], "precision": ["ms"]}
    assert req["headers"]["Authorization"] == "Token s3cret-token"
    assert req["body"].decode() == EXPECTED_LINE


def test_v2_keeps_a_reading_beside_one_stored_at_its_time(fake_v2: tuple[str, Recorder]) -> None:
    url, recorder = fake_v2
    stored = {"name": "reading", "tags": {"site": "tsagaan", "node": "haul-road", "ts_rank": ""}}
    stored |= {"columns": ["time", "seq", "gateway_flags"], "values": [[1795341660000, 6, None]]}
    recorder.query_answer = (200, {"results": [{"statement_id": 0, "series": [stored]}]})
    store = InfluxV2(InfluxConfig(url=url, api="v2", bucket="river"))  # type: ignore[arg-type]
    store.write([to_line(reading())])  # seq 7, at the time of the stored seq 6
    store.close()
    (query,) = recorder.queries
    assert "\"node\" = 'haul-road'" in query and "time >= 1795341660000ms" in query
    (req,) = recorder.requests
    head, fields, ms = EXPECTED_LINE.split(" ")
    assert req["body"].decode().splitlines() == [
        f'reading,node=haul-road,site=tsagaan gateway_flags="ts_shared" {ms}',
        f'{head},ts_rank=2 {fields},gateway_flags="ts_shared" {ms}',
    ]


def test_v2_without_the_dbrp_mapping_writes_and_says_what_is_at_risk(
    fake_v2: tuple[str, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    url, recorder = fake_v2
    recorder.query_answer = (404, {"code": "not found", "message": "database not found: river"})
    store = InfluxV2(InfluxConfig(url=url, api="v2", bucket="river"))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        store.write([to_line(reading())])
        store.write([to_line(reading())])
    store.close()
    assert [r["body"].decode() for r in recorder.requests] == [EXPECTED_LINE] * 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "once an hour, not once a batch"
    assert "DBRP mapping" in warnings[0] and "may replace it" in warnings[0]


def test_v2_refusal_is_not_retryable_and_says_why(fake_v2: tuple[str, Recorder]) -> None:
    url, recorder = fake_v2
    recorder.status = 422
    store = InfluxV2(InfluxConfig(url=url, api="v2"))  # type: ignore[arg-type]
    with pytest.raises(StoreError) as caught:
        store.write([to_line(reading())])
    assert caught.value.retryable is False
    assert "field type conflict" in str(caught.value)
    recorder.status = 503
    with pytest.raises(StoreError) as caught:
        store.write([to_line(reading())])
    assert caught.value.retryable is True


def test_auto_picks_v1_for_influxdb_1(fake_v2: tuple[str, Recorder]) -> None:
    url, recorder = fake_v2
    recorder.version = "1.6.7~rc0"
    assert isinstance(open_store(InfluxConfig(url=url)), InfluxV1)  # type: ignore[arg-type]


def test_unreachable_influx_is_retryable() -> None:
    from gateway.devservices import free_port

    store = InfluxV1(InfluxConfig(url=f"http://127.0.0.1:{free_port()}"))  # type: ignore[arg-type]
    with pytest.raises(StoreError) as caught:
        store.write([to_line(reading())])
    assert caught.value.retryable is True
