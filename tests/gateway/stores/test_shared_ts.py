"""Two readings of one node with the same `ts` and different `seq`s, written to a real influxd: both
are kept and flagged `ts_shared`, each keeps its own values; a redelivery of either still lands on
its own point (stored once); readers see both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contract.wire import MetricValue, ReadingPayload
from gateway.config import InfluxConfig
from gateway.points import to_line
from gateway.stores.backends import open_reader
from gateway.stores.influx_v1 import InfluxV1
from gateway.stores.reader import Row, Span
from gateway.stores.shared_ts import NODE_STATEMENTS_MAX, keep_both
from tests.helpers import Influx

TS = datetime(2026, 11, 22, 10, 1, tzinfo=UTC)
ROWS = 'SELECT "seq", "pm2_5", "pm2_5_cal", "flags", "gateway_flags" FROM "reading" WHERE "node" = \'n1\''


def _reading(seq: int, value: float, *, ts: datetime = TS, cal: str = "c1") -> ReadingPayload:
    return ReadingPayload(
        schema=1,
        site="s1",
        node="n1",
        seq=seq,
        ts=ts,
        period_s=60,
        metrics={"pm2_5": MetricValue(value=value, raw=value, n=60, cal=cal)},  # type: ignore[dict-item]
        flags=["clock_unsynced"],  # type: ignore[list-item]
    )


def _store(influx: Influx) -> InfluxV1:
    return InfluxV1(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]


def _by_seq(influx: Influx) -> dict[int, dict[str, object]]:
    rows = influx.rows(ROWS)
    by_seq = {int(r["seq"]): r for r in rows}
    assert len(by_seq) == len(rows), "one point per reading"
    return by_seq


def test_a_reading_with_the_ts_of_an_earlier_one_is_kept_beside_it(influx: Influx) -> None:
    store = _store(influx)
    store.write([to_line(_reading(7, 10.0)), to_line(_reading(8, 11.0, ts=TS + timedelta(minutes=1)))])
    store.write([to_line(_reading(9, 99.0))])  # the clock went back a minute: seq 9 has seq 7's ts
    rows = _by_seq(influx)
    assert sorted(rows) == [7, 8, 9]
    assert (rows[7]["pm2_5"], rows[9]["pm2_5"]) == (10, 99), "neither replaced the other"
    assert rows[7]["gateway_flags"] == rows[9]["gateway_flags"] == "ts_shared"
    assert rows[8]["gateway_flags"] is None
    assert rows[7]["flags"] == rows[9]["flags"] == "clock_unsynced", "the signed flags are untouched"

    # redeliveries of either reading (the broker, the spool) still store each once
    store.write([to_line(_reading(9, 99.0)), to_line(_reading(7, 10.0))])
    store.write([to_line(_reading(9, 99.0))])
    assert sorted(_by_seq(influx)) == [7, 8, 9]

    # a third reading at that time, and a repeat of it in the same batch
    store.write([to_line(_reading(10, 5.0)), to_line(_reading(10, 5.0))])
    rows = _by_seq(influx)
    assert sorted(rows) == [7, 8, 9, 10]
    assert all(rows[s]["gateway_flags"] == "ts_shared" for s in (7, 9, 10))
    store.close()

    reader = open_reader(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    span = Span("s1", ["n1"], TS - timedelta(hours=1), TS + timedelta(hours=1))
    exported = list(reader.readings(span, ["seq", "pm2_5", "gateway_flags"], per_node=True))
    assert sorted((r["time"], r["seq"]) for r in exported) == [
        *((int(TS.timestamp() * 1000), s) for s in (7, 9, 10)),
        (int((TS + timedelta(minutes=1)).timestamp() * 1000), 8),
    ]
    flagged = reader.flagged("s1", "n1", TS - timedelta(hours=1), TS + timedelta(hours=1))
    assert sorted(flagged) == [(TS, ["clock_unsynced", "ts_shared"])] * 3 + [
        (TS + timedelta(minutes=1), ["clock_unsynced"])
    ]
    reader.close()


def test_two_readings_with_one_ts_in_one_batch_are_both_kept(influx: Influx) -> None:
    store = _store(influx)
    # a `,seq=` inside a string field is not the reading's seq
    store.write([to_line(_reading(3, 1.0, cal="x,seq=4i")), to_line(_reading(4, 2.0))])
    rows = _by_seq(influx)
    assert sorted(rows) == [3, 4]
    assert rows[3]["pm2_5_cal"] == "x,seq=4i"
    assert rows[3]["gateway_flags"] == rows[4]["gateway_flags"] == "ts_shared"
    store.close()


def test_into_a_database_not_yet_created(influx: Influx) -> None:
    influx.drop()
    store = _store(influx)
    store.write([to_line(_reading(1, 1.0))])
    assert sorted(_by_seq(influx)) == [1]
    store.close()


def _at(node: str, seq: int, minute: int) -> str:
    reading = _reading(seq, float(seq), ts=TS + timedelta(minutes=minute))
    return to_line(reading.model_copy(update={"node": node}))


@pytest.mark.parametrize("nodes", [2, NODE_STATEMENTS_MAX + 1])
def test_each_node_is_looked_up_over_its_own_times(influx: Influx, nodes: int) -> None:
    """Nodes whose readings interleave (as 20 nodes sending at once do): another node's points
    within the batch's span are not fetched, and a point at one of this batch's times still is.
    Past NODE_STATEMENTS_MAX nodes, one statement for the site's span: the same lines out."""
    store = _store(influx)
    others = [f"m{i:03d}" for i in range(nodes - 1)]
    store.write(
        [_at("n1", 100 + m, m) for m in range(10)] + [_at(o, 1 + m, m) for o in others for m in range(5)]
    )
    fetched: list[int] = []

    def lookup(influxql: str) -> list[Row]:
        rows = store.query(influxql)
        fetched.append(len(rows))
        return rows

    # the others go on in order; n1's clock went back to minute 3 (seq 200 at seq 103's time)
    batch = [_at(o, 1 + m, m) for o in others for m in range(5, 10)] + [_at("n1", 200, 3)]
    out = keep_both(batch, lookup)
    # n1's seq 103 alone; over the site's span, n1's minutes 3-9 and the others' 3 and 4 too
    assert fetched == [1 if nodes <= NODE_STATEMENTS_MAX else 7 + 2 * len(others)]
    assert out[: len(batch) - 1] == batch[:-1]  # nothing stored at their times: as they were
    assert out[-2].startswith('reading,node=n1,site=s1 gateway_flags="ts_shared" ')  # seq 103 flagged
    assert ",ts_rank=2 " in out[-1] and "seq=200i" in out[-1]  # and seq 200 kept beside it
    store.close()
