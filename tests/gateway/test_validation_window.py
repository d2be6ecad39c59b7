"""`ts` must lie between 2000-01-01 and the gateway's clock plus a configurable tolerance; the clock is
a parameter, so no test waits. And the on_stored hooks see a repeated reading once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.wire import PayloadError, ReadingPayload
from gateway.config import InfluxConfig
from gateway.deadletter import DeadLetters
from gateway.ingest import Ingest
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message
from gateway.validate import parse_reading
from tests.helpers import Influx

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TOPIC = "minewatch/v1/s/n/reading"


def payload(ts: str, seq: int = 1) -> bytes:
    doc = {
        "schema": 1,
        "site": "s",
        "node": "n",
        "seq": seq,
        "ts": ts,
        "period_s": 60,
        "metrics": {"pm2_5": {"value": 1.0, "n": 1}},
        "flags": [],
    }
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("ts", "tolerance_s", "reason"),
    [
        ("2026-11-22T12:04:59.000Z", 300, None),
        ("2026-11-22T12:05:00.000Z", 300, None),
        ("2026-11-22T12:05:00.001Z", 300, "ts_in_future"),
        ("2026-11-22T12:00:30.000Z", 0, "ts_in_future"),
        ("2026-11-22T13:00:00.000Z", 3600, None),
        ("2000-01-01T00:00:00.000Z", 300, None),
        ("1999-12-31T23:59:59.999Z", 300, "ts_too_old"),
        ("1970-01-01T00:00:00.000Z", 300, "ts_too_old"),
    ],
)
def test_ts_window(ts: str, tolerance_s: float, reason: str | None) -> None:
    if reason is None:
        parse_reading(TOPIC, payload(ts), now=NOW, clock_tolerance_s=tolerance_s)
    else:
        with pytest.raises(PayloadError) as caught:
            parse_reading(TOPIC, payload(ts), now=NOW, clock_tolerance_s=tolerance_s)
        assert caught.value.reason == reason


def test_ingest_uses_its_clock_and_hooks_see_each_reading_once(tmp_path: Path, influx: Influx) -> None:
    seen: list[ReadingPayload] = []
    acked: list[Message] = []
    store = InfluxV1(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    ingest = Ingest(
        store,
        acked.extend,
        clock=lambda: NOW.timestamp(),
        on_stored=[seen.extend],
        dead=DeadLetters(tmp_path / "dl.sqlite"),
        clock_tolerance_s=60,
    )

    def msg(ts: datetime, seq: int, mid: int) -> Message:
        return Message(
            TOPIC, payload(ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"), seq), mid, 1, False, time.monotonic()
        )

    ingest.handle(msg(NOW - timedelta(minutes=1), 1, 1))
    ingest.handle(msg(NOW, 2, 2))
    ingest.handle(msg(NOW + timedelta(minutes=2), 3, 3))  # two minutes ahead with a 60 s tolerance
    ingest.handle(msg(NOW - timedelta(minutes=1), 1, 4))  # the node resent seq 1
    ingest.flush()
    ingest.handle(msg(NOW, 2, 5))  # and the broker redelivered seq 2
    ingest.flush()
    assert len(acked) == 5
    assert [r.seq for r in seen] == [1, 2]
    assert ingest.stats.duplicates == 2 and ingest.stats.rejected == {"ts_in_future": 1}
    # a repeat in the same batch is written again, to the same series and time (InfluxDB keeps one
    # point); one of a reading already stored is acknowledged without writing, so its `received`
    # (the gateway's time of storing) is never replaced
    assert ingest.stats.stored == 3
    assert [r["seq"] for r in influx.rows('SELECT "seq" FROM "reading"')] == [1, 2]
    store.close()
