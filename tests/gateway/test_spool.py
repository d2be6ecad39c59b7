"""The spool takes what InfluxDB cannot (unreachable, slow, 5xx), so messages are acknowledged and
nothing waits in memory; the drain writes it back in order; what InfluxDB refuses as a bad point goes
to the dead-letter store with the database's own message. Real influxd for the writes; a local HTTP
server for the answers a healthy influxd never gives (503, a reply slower than the timeout)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gateway.config import InfluxConfig
from gateway.deadletter import DeadLetters
from gateway.ingest import Ingest
from gateway.spool import Entry, Spool, SpoolDrain, SpoolFull
from gateway.stores.base import StoreError
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message
from tests.helpers import Influx

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def message(node: str, seq: int, metric: str = "pm2_5", value: float = 12.5) -> Message:
    doc = {
        "schema": 1,
        "site": "spool",
        "node": node,
        "seq": seq,
        "ts": (T0 + timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "period_s": 60,
        "metrics": {metric: {"value": value, "n": 60}},
        "flags": [],
    }
    return Message(
        f"minewatch/v1/spool/{node}/reading", json.dumps(doc).encode(), seq, 1, False, time.monotonic()
    )


class Trouble:
    mode = "503"


@pytest.fixture
def troubled_influx() -> Iterator[tuple[str, type[Trouble]]]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if Trouble.mode == "slow":
                time.sleep(2.0)
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error":"engine: cache maximum memory size exceeded"}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Trouble
    server.shutdown()
    server.server_close()


def v1(url: str, db: str = "x", timeout_s: float = 10.0) -> InfluxV1:
    return InfluxV1(InfluxConfig(url=url, database=db, api="v1", timeout_s=timeout_s))  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["503", "slow", "unreachable"])
def test_failing_influx_spools_acks_and_the_drain_writes_it_later(
    mode: str, troubled_influx: tuple[str, type[Trouble]], influx: Influx, tmp_path: Path
) -> None:
    url, trouble = troubled_influx
    trouble.mode = mode
    if mode == "unreachable":
        url = "http://127.0.0.1:9"  # discard port: nothing listens
    spool = Spool(tmp_path / "spool.sqlite")
    dead = DeadLetters(tmp_path / "dl.sqlite")
    acked: list[Message] = []
    ingest = Ingest(v1(url, timeout_s=0.5), acked.extend, spool=spool, dead=dead)
    for seq in range(1, 6):
        ingest.handle(message("a", seq))
    ingest.flush()
    assert len(acked) == 5 and spool.depth == 5
    assert ingest.stats.influx_reachable is False and ingest.stats.spooled == 5
    ingest.handle(message("a", 6))
    ingest.flush()  # behind what waits, without trying InfluxDB: order is kept
    assert spool.depth == 6 and len(acked) == 6
    assert ingest.stats.write_failures == 1  # only the first batch tried InfluxDB
    drain = SpoolDrain(spool, v1(influx.url, influx.db), dead, batch_size=4)
    assert drain.drain_once() == 4
    # the oldest first (InfluxDB sorts by time, so what is stored after one drain shows the order)
    assert [r["seq"] for r in influx.rows('SELECT "seq" FROM "reading"')] == [1, 2, 3, 4]
    assert drain.drain_once() == 2 and drain.drain_once() == 0
    assert spool.depth == 0
    rows = influx.rows('SELECT "seq" FROM "reading"')
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6]
    spool.close()
    reopened = Spool(tmp_path / "spool.sqlite")
    assert reopened.depth == 0
    reopened.close()


def test_spool_survives_a_restart_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    spool.append([Entry(f"line {i}", "t", b"p") for i in range(3)])
    spool.close()
    again = Spool(tmp_path / "spool.sqlite")
    assert again.depth == 3
    assert [e.line for e in again.oldest(10)] == ["line 0", "line 1", "line 2"]
    again.close()


def test_a_full_spool_is_not_acknowledged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=64 * 1024, warn_fraction=0.25)
    dead = DeadLetters(tmp_path / "dl.sqlite")
    acked: list[Message] = []
    ingest = Ingest(v1("http://127.0.0.1:9", timeout_s=0.5), acked.extend, spool=spool, dead=dead)
    with pytest.raises(SpoolFull):
        for seq in range(1, 10_000):
            ingest.handle(message("a", seq))
            if seq % 50 == 0:
                ingest.flush()
    assert spool.is_warning
    assert "SPOOL FILLING" in caplog.text
    waiting = ingest.pending
    assert waiting == 50 and len(acked) == spool.depth, "the batch that did not fit is not acknowledged"
    with pytest.raises(StoreError):
        ingest.flush()  # still full: still not acknowledged, nothing lost
    assert ingest.pending == waiting


def test_type_conflict_goes_to_dead_letters_with_the_database_message(influx: Influx, tmp_path: Path) -> None:
    # a string field "turbidity" in this shard: a float turbidity can never be written next to it
    store = v1(influx.url, influx.db)
    store.write([f'reading,node=old,site=spool turbidity="murky" {int(T0.timestamp() * 1000)}'])
    dead = DeadLetters(tmp_path / "dl.sqlite")
    acked: list[Message] = []
    ingest = Ingest(store, acked.extend, spool=Spool(tmp_path / "spool.sqlite"), dead=dead)
    batch = [message("a", 1), message("a", 2, "turbidity", 4.5), message("a", 3)]
    for msg in batch:
        ingest.handle(msg)
    ingest.flush()
    assert len(acked) == 3, "the refused point is kept in the dead-letter store, so it is acknowledged"
    assert sorted(r["seq"] for r in influx.rows('SELECT "seq" FROM "reading" WHERE "node" = \'a\'')) == [1, 3]
    (kept,) = dead.list()
    assert kept.reason == "store_refused" and "field type conflict" in kept.detail
    assert kept.payload == batch[1].payload and kept.topic == batch[1].topic
    assert ingest.stats.rejected == {"store_refused": 1}


def test_drain_sends_refused_spooled_points_to_dead_letters(influx: Influx, tmp_path: Path) -> None:
    store = v1(influx.url, influx.db)
    ms = int(T0.timestamp() * 1000)
    store.write([f'reading,node=old,site=spool pm10="dusty" {ms}'])
    spool = Spool(tmp_path / "spool.sqlite")
    dead = DeadLetters(tmp_path / "dl.sqlite")
    spool.append(
        [
            Entry(f"reading,node=a,site=spool pm2_5=1,seq=1i {ms + 1000}", "t/a", b"one"),
            Entry(f"reading,node=a,site=spool pm10=2,seq=2i {ms + 2000}", "t/b", b"two"),
        ]
    )
    SpoolDrain(spool, store, dead).drain_once()
    assert spool.depth == 0
    assert [r["seq"] for r in influx.rows('SELECT "seq" FROM "reading" WHERE "node" = \'a\'')] == [1]
    (kept,) = dead.list()
    assert (kept.topic, kept.payload, kept.reason) == ("t/b", b"two", "store_refused")
