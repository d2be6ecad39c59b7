"""The reader protocol against a real influxd: the one range rule (start < time <= end), buckets
that end where a reading's averaging window ends, streams, alert events, and the query text the
report prints."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import InfluxConfig
from gateway.stores.backends import open_reader
from gateway.stores.reader import Reader, Span
from gateway.timerange import from_ms
from tests.helpers import Influx

T0 = datetime(2026, 11, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


@pytest.fixture
def reader(influx: Influx) -> Iterator[Reader]:
    """Two nodes, a reading a minute from T0 to T0 + 2 h inclusive; node a's readings at whole hours
    (window ends) carry a flag, the first hour of node a is signed; statuses and alert events."""
    lines = []
    for node, base in (("a", 10.0), ("b", 20.0)):
        for i in range(121):
            ts = T0 + i * MINUTE
            flags = "warming_up" if node == "a" and i % 60 == 0 else ""
            signed = "true" if node == "a" and i <= 60 else "false"
            lines.append(
                f"reading,site=s1,node={node} seq={i + 1}i,pm2_5={base + i % 2},pm2_5_n=10i,"
                f'pm2_5_cal="c1",flags="{flags}",signed={signed},period_s=60i {_ms(ts)}'
            )
    lines.append(f"reading,site=s2,node=c seq=1i,pm2_5=99 {_ms(T0 + MINUTE)}")
    lines += [
        f'node_status,site=s1,node=a state="offline",version="1.0" {_ms(T0 - MINUTE)}',
        f'node_status,site=s1,node=a state="online",version="1.1" {_ms(T0 + 30 * MINUTE)}',
        f'alert,site=s1,node=a,rule=r1,metric=pm2_5 state="raised",value=55,limit=50,message="m" '
        f"{_ms(T0 + 10 * MINUTE)}",
        f'alert,site=s1,node=a,rule=r1,metric=pm2_5 state="cleared",value=40,limit=50 '
        f"{_ms(T0 + 20 * MINUTE)}",
        f'alert,site=s1,node=b,rule=r1,metric=pm2_5 state="raised",value=60,limit=50 {_ms(T0 + 90 * MINUTE)}',
    ]
    influx.write(lines)
    r = open_reader(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    yield r
    r.close()


def test_a_range_holds_the_readings_with_start_lt_time_le_end(reader: Reader) -> None:
    rows = list(reader.readings(Span("s1", ["a"], T0, T0 + 10 * MINUTE), ["seq"]))
    assert [from_ms(r["time"]) for r in rows] == [T0 + i * MINUTE for i in range(1, 11)]
    both = list(reader.readings(Span("s1", [], T0, T0 + MINUTE), ["seq", "node"]))
    assert sorted(r["node"] for r in both) == ["a", "b"]  # and not site s2's node c


def test_what_is_stored(reader: Reader) -> None:
    assert {"reading", "node_status", "alert"} <= reader.measurements()
    assert {"seq", "pm2_5", "flags"} <= reader.fields("reading")
    assert reader.metric_fields() == ["pm2_5"]
    clock = reader.reading_clock("s1", "a", T0, T0 + 5 * MINUTE)
    assert [(r["seq"], r["period_s"]) for r in clock] == [(i, 60) for i in range(2, 7)]


def test_a_bucket_ends_where_a_readings_window_ends(reader: Reader) -> None:
    span = Span("s1", ["a"], T0, T0 + 2 * HOUR)
    rows = reader.aggregate(span, "seq", ["count"], bucket=HOUR, fill="zero")
    got = {(r["node"], r["start"]): r["count"] for r in rows if r["start"] >= T0}
    # (T0, T0+1h] holds minutes 1..60: the reading stamped T0+1h ends the first hour
    assert got == {("a", T0): 60, ("a", T0 + HOUR): 60}
    flagged = reader.aggregate(span, "seq", ["count"], flag="warming_up")
    assert [(r["node"], r["count"]) for r in flagged] == [("a", 2)]
    signed = reader.aggregate(span, "seq", ["count"], signed=True)
    assert [r["count"] for r in signed] == [60]
    firsts = list(reader.aggregate(span, "pm2_5_cal", ["first"], per_node=False, equals="c1"))
    assert from_ms(firsts[0]["time"]) == T0 + MINUTE


def test_period_means_with_their_counts(reader: Reader) -> None:
    span = Span("s1", [], T0, T0 + 2 * HOUR)
    rows = list(reader.period_means(span, ["pm2_5"], HOUR))
    means = {(r["node"], r["start"]): (r["pm2_5_mean"], r["pm2_5_count"]) for r in rows}
    assert means == {
        ("a", T0): (10.5, 60),
        ("a", T0 + HOUR): (10.5, 60),
        ("b", T0): (20.5, 60),
        ("b", T0 + HOUR): (20.5, 60),
    }


def test_trace_gives_the_query_text_verbatim(reader: Reader) -> None:
    texts: list[str] = []
    span = Span("s1", ["a"], T0, T0 + HOUR)
    reader.aggregate(span, "seq", ["count"], bucket=timedelta(hours=24), fill="zero", trace=texts.append)
    list(reader.readings(span, ["seq"], per_node=True, trace=texts.append))
    assert texts == [
        'SELECT count("seq") FROM "reading" WHERE "site" = \'s1\' AND ("node" = \'a\') AND '
        "time > '2026-11-01T00:00:00Z' AND time <= '2026-11-01T01:00:00Z' "
        'GROUP BY time(24h, 1ms), "node" fill(0)',
        'SELECT "seq" FROM "reading" WHERE "site" = \'s1\' AND ("node" = \'a\') AND '
        "time > '2026-11-01T00:00:00Z' AND time <= '2026-11-01T01:00:00Z' GROUP BY \"node\"",
    ]


def test_latest_per_node_at_or_before_now(reader: Reader) -> None:
    latest = reader.latest(T0 + 30 * MINUTE, site="s1")
    assert [(x.node, x.time, x.seq) for x in latest] == [
        ("a", T0 + 30 * MINUTE, 31),
        ("b", T0 + 30 * MINUTE, 31),
    ]
    assert latest[0].values == {"pm2_5": 10.0}
    assert reader.latest(T0 + HOUR, node="a")[0].flags == ["warming_up"]


def test_series_of_means_per_bucket(reader: Reader) -> None:
    s = reader.series("s1", "b", ["pm2_5"], T0, T0 + HOUR, 1800)
    assert s.times == [T0, T0 + 30 * MINUTE]
    assert s.values == {"pm2_5": [20.5, 20.5]}
    # aligned a millisecond early: [t, t + 30 min), so the reading stamped T0 opens the first bucket
    tick = timedelta(milliseconds=1)
    early = reader.series("s1", "b", ["pm2_5"], T0 - tick, T0 + HOUR - tick, 1800, align=-tick)
    assert early.times == [T0 - tick, T0 + 30 * MINUTE - tick]
    assert reader.hourly_means("pm2_5", T0 + 2 * HOUR, hours=2)[("s1", "a")] == [10.5, 10.5]


def test_alert_events_newest_first_and_the_active_ones(reader: Reader) -> None:
    events = reader.alerts(T0, T0 + 2 * HOUR, site="s1")
    assert [(e.node, e.state) for e in events] == [("b", "raised"), ("a", "cleared"), ("a", "raised")]
    assert events[2].message == "m" and events[2].limit == 50.0
    assert [(e.node, e.state) for e in reader.active_alerts(T0 + 2 * HOUR)] == [("b", "raised")]
    rows = reader.alert_rows("s1", T0, T0 + 15 * MINUTE, ["state", "value"])
    assert [(r["node"], r["rule"], r["metric"], r["state"]) for r in rows] == [("a", "r1", "pm2_5", "raised")]


def test_node_status_before_during_and_firmware(reader: Reader) -> None:
    assert reader.status_before("s1", T0) == {"a": "offline"}
    assert reader.status_changes("s1", T0, T0 + HOUR) == [("a", "online", T0 + 30 * MINUTE)]
    assert reader.firmware("s1", T0 + HOUR) == [("a", "1.0", T0 - MINUTE), ("a", "1.1", T0 + 30 * MINUTE)]


def test_rows_for_verify_and_csv(reader: Reader) -> None:
    rows = list(reader.signed_rows("\"site\" = 's2'"))
    assert [(r["node"], r["seq"]) for r in rows] == [("c", 1)]
    csv = list(reader.csv_rows(T0, T0 + 2 * MINUTE, site="s1"))
    assert [(r["node"], r["seq"]) for r in csv] == [("a", 2), ("b", 2), ("a", 3), ("b", 3)]


def test_recent_readings_by_the_databases_clock(influx: Influx, reader: Reader) -> None:
    now_ms = int(time.time() * 1000)
    influx.write([f"reading,site=s3,node=d seq=7i,pm2_5=1 {now_ms - 5000}"])
    rows = list(reader.recent(["seq", "pm2_5"], 600))
    assert [(r["site"], r["node"], r["seq"]) for r in rows] == [("s3", "d", 7)]


def test_streams_name_each_node_and_metric_with_the_calibration_in_force(influx: Influx) -> None:
    """The SensorThings catalogue: first and last reading per (node, metric); the calibration of
    the LAST reading, so a node that went back to uncalibrated values has none in force."""
    influx.write(
        [
            f'reading,site=s1,node=a seq=1i,pm2_5=5.0,pm2_5_n=1i,pm2_5_cal="c1",flags="" {_ms(T0)}',
            f'reading,site=s1,node=a seq=2i,pm2_5=6.0,pm2_5_n=1i,rh=40.0,rh_n=1i,flags="" {_ms(T0 + HOUR)}',
            f'reading,site=s1,node=b seq=1i,pm2_5=7.0,pm2_5_n=1i,pm2_5_cal="c2",flags="" {_ms(T0 + MINUTE)}',
            f'reading,site=s1,node=b seq=2i,pm2_5_n=0i,pm2_5_cal="c2",flags="sensor_fault" {_ms(T0 + HOUR)}',
        ]
    )
    r = open_reader(InfluxConfig(url=influx.url, database=influx.db))  # type: ignore[arg-type]
    try:
        got = [(s.node, s.metric, s.first, s.last, s.cal) for s in r.streams(T0 + 2 * HOUR)]
        before = [(s.node, s.metric, s.last) for s in r.streams(T0 + 30 * MINUTE)]
    finally:
        r.close()
    assert got == [
        ("a", "pm2_5", T0, T0 + HOUR, None),
        ("a", "rh", T0 + HOUR, T0 + HOUR, None),
        ("b", "pm2_5", T0 + MINUTE, T0 + HOUR, "c2"),  # a failed reading still belongs to the stream
    ]
    assert before == [("a", "pm2_5", T0), ("b", "pm2_5", T0 + MINUTE)]


def test_reading_cells_are_the_rows_of_readings_as_the_database_writes_them(reader: Reader) -> None:
    span = Span("s1", [], T0, T0 + 2 * HOUR)
    fields = ["node", "seq", "pm2_5", "pm2_5_cal", "flags", "signed", "absent_field"]
    cells = list(reader.reading_cells(span, fields))
    rows = list(reader.readings(span, fields))
    assert len(cells) == len(rows) == 240
    for c, r in zip(cells, rows, strict=True):
        assert c[0] == str(r["time"]) and c[1] == r["node"] and int(c[2]) == r["seq"]
        assert float(c[3]) == r["pm2_5"] and c[4] == r["pm2_5_cal"] and c[5] == r["flags"]
        assert c[6] == str(r["signed"]).lower() and c[7] == ""  # a field never stored: an empty cell
    assert {c[3] for c in cells} >= {"10", "11"}  # whole floats as InfluxDB writes them


def test_reading_cells_raise_the_database_error(influx: Influx, reader: Reader) -> None:
    from gateway.stores.base import StoreError
    from gateway.stores.influx_v1 import InfluxV1

    db = InfluxV1(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="400"):  # refused before it runs
        list(db.stream_cells('SELEC "seq" FROM "reading"', ["seq"]))
    with pytest.raises(StoreError, match="InfluxQL error"):  # as it runs: 1.x CSV leaves it out
        list(db.stream_cells('SELECT mean("flags") FROM "reading"', ["mean"]))
    db.close()


def test_latest_finds_a_node_silent_for_months_and_sees_a_new_reading(influx: Influx) -> None:
    """The lookup starts with the last hour and widens only for nodes not found there, so a node
    silent for 90 days (or three years) is still listed, with its own last reading."""
    now = T0
    influx.write(
        [
            f"reading,site=s1,node=busy seq=1i,pm2_5=1 {_ms(now - 2 * HOUR)}",
            f"reading,site=s1,node=busy seq=2i,pm2_5=2 {_ms(now - MINUTE)}",
            f"reading,site=s1,node=busy seq=3i,pm2_5=3 {_ms(now + MINUTE)}",  # after `now`
            f"reading,site=s1,node=quiet seq=7i,pm2_5=7 {_ms(now - timedelta(days=91))}",
            f'reading,site=s1,node=quiet seq=8i,turbidity=8,flags="x" {_ms(now - timedelta(days=90))}',
            f"reading,site=s2,node=ancient seq=9i,pm2_5=9 {_ms(now - timedelta(days=3 * 365))}",
        ]
    )
    r = open_reader(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    try:
        latest = r.latest(now)
        assert [(x.site, x.node, x.time, x.seq) for x in latest] == [
            ("s1", "busy", now - MINUTE, 2),
            ("s1", "quiet", now - timedelta(days=90), 8),
            ("s2", "ancient", now - timedelta(days=3 * 365), 9),
        ]
        assert (latest[1].values, latest[1].flags) == ({"turbidity": 8.0}, ["x"])
        assert [x.seq for x in r.latest(now, site="s1", node="quiet")] == [8]
        assert r.latest(now, site="s2", node="quiet") == []
        assert r.nodes() == [("s1", "busy"), ("s1", "quiet"), ("s2", "ancient")]
        assert r.nodes("s2") == [("s2", "ancient")]
        influx.write([f"reading,site=s1,node=quiet seq=9i,pm2_5=4 {_ms(now - 10 * MINUTE)}"])
        (quiet,) = r.latest(now, node="quiet")
        assert (quiet.time, quiet.seq, quiet.values) == (now - 10 * MINUTE, 9, {"pm2_5": 4.0})
    finally:
        r.close()
