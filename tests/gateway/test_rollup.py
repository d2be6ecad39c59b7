"""Roll-ups against the raw readings they summarise, through the real store and a real influxd:
every hour and day of every node, after the readings arrive, after a late backlog lands in hours
already rolled up, across a restart, and from `minewatch-gateway rollup --rebuild`."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contract.wire import ReadingPayload
from gateway import cli
from gateway.config import InfluxConfig
from gateway.points import to_line
from gateway.report import data, plots
from gateway.report.model import ReportData
from gateway.rollup import DIRTY_FILE, MAX_WAIT, SETTLE, Rollups, bucket_of, jobs
from gateway.stores import open_reader, open_store, rollups_for
from gateway.stores.base import Store
from gateway.stores.reader import Series
from tests.fakes.clock import FakeClock
from tests.helpers import Influx

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
METRICS = ("pm2_5", "pm10")


def readings(node: str, start: datetime, minutes: Iterable[int], seq0: int = 1) -> list[ReadingPayload]:
    out = []
    for i in minutes:
        # a value that varies within each hour, a pm10 missing every 7th reading (a failed sensor)
        pm25 = round(5 + (i * 37 % 101) / 3, 3)
        # the calibration changes at minute 100 (inside an hour), and minute 50 has none
        cal = None if i == 50 else ("pms-a@2026-01-01" if i < 100 else "pms-b@2026-03-01")
        metrics: dict[str, Any] = {"pm2_5": {"value": pm25, "n": 60, "cal": cal}}
        metrics["pm10"] = {"value": None if i % 7 == 0 else pm25 * 1.5, "n": 60}
        flags = [] if metrics["pm10"]["value"] is not None else ["sensor_fault"]
        flags += ["high_humidity", "warming_up"] if i % 11 == 0 else []
        doc = {
            "schema": 1,
            "site": "tsagaan",
            "node": node,
            "seq": seq0 + i,
            "ts": (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "period_s": 60,
            "metrics": metrics,
            "flags": flags,
        }
        out.append(ReadingPayload.model_validate(doc))
    return out


def store_them(store: Store, rollups: Rollups, batch: list[ReadingPayload]) -> None:
    """What ingest does: write, then hand the readings to the on_stored hook."""
    store.write([to_line(r) for r in batch])
    rollups.stored(batch)


def expected(influx: Influx, period: str) -> dict[tuple[str, int], dict[str, float]]:
    """Each statistic computed here from the raw readings (not by InfluxDB's GROUP BY), and for an
    hour the facts the report reads instead of the raw readings (gaps, flags, calibrations)."""
    values: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    readings_in: dict[tuple[str, int], int] = defaultdict(int)
    hours: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in influx.rows('SELECT * FROM "reading" GROUP BY "node"'):
        key = (str(row["node"]), bucket_of(int(row["time"]), period))  # type: ignore[arg-type]
        readings_in[key] += 1
        hours[key].append(row)
        for m in METRICS:
            if row.get(m) is not None:
                values[(*key, m)].append(float(row[m]))
    width = 3600 if period == "1h" else 86400
    out: dict[tuple[str, int], dict[str, float]] = {}
    for (node, start, m), vals in values.items():
        stats = out.setdefault((node, start), {"readings": readings_in[(node, start)]})
        stats[f"{m}_mean"] = sum(vals) / len(vals)
        stats[f"{m}_min"], stats[f"{m}_max"] = min(vals), max(vals)
        stats[f"{m}_count"] = len(vals)
        stats[f"{m}_completeness"] = round(min(1.0, len(vals) / (width / 60)), 4)
    if period == "1h":
        for key, rows in hours.items():
            out.setdefault(key, {"readings": len(rows)}).update(_facts(rows))
    return out


def _facts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """An hour's readings (in time order) as the facts docs/protocol.md describes."""
    times, seqs = [int(r["time"]) for r in rows], [int(r["seq"]) for r in rows]
    facts: dict[str, Any] = {
        "time_first": times[0],
        "time_last": times[-1],
        "seq_first": seqs[0],
        "seq_last": seqs[-1],
        "seq_missing": sum(b - a - 1 for a, b in itertools.pairwise(seqs) if b > a + 1),
        "gap_ms": max((b - a for a, b in itertools.pairwise(times)), default=0),
    }
    for r in rows:
        for flag in set(str(r.get("flags") or "").split(",")) - {""}:
            facts[f"flag_{flag}"] = facts.get(f"flag_{flag}", 0) + 1
    for m in METRICS:
        facts[f"{m}_n_count"] = sum(1 for r in rows if r.get(f"{m}_n") is not None)
        cals = [(int(r["time"]), str(r[f"{m}_cal"])) for r in rows if r.get(f"{m}_cal") is not None]
        if cals:
            ids = {c for _, c in cals}
            facts[f"{m}_cal"] = ids.pop() if len(ids) == 1 else "*"
            facts[f"{m}_cal_count"], facts[f"{m}_cal_first"] = len(cals), cals[0][0]
            facts[f"{m}_cal_last"] = cals[-1][0]
    return facts


def stored(influx: Influx, period: str) -> dict[tuple[str, int], dict[str, float]]:
    width = 3_600_000 if period == "1h" else 86_400_000
    out = {}
    for row in influx.rows(f'SELECT * FROM "reading_{period}" GROUP BY "node"'):
        start = int(row["time"]) - width  # stamped at the bucket's end
        out[(str(row["node"]), start)] = {
            k: v for k, v in row.items() if k not in ("time", "node", "site", "interval_s") and v is not None
        }
    return out


def assert_rollups_match(influx: Influx) -> None:
    for period in ("1h", "1d"):
        want, got = expected(influx, period), stored(influx, period)
        assert sorted(got) == sorted(want), period
        for key, stats in want.items():
            assert set(got[key]) == set(stats), (period, key)
            for name, value in stats.items():
                if isinstance(value, str):
                    assert got[key][name] == value, (period, key, name)
                else:
                    assert math.isclose(got[key][name], value, rel_tol=1e-9), (period, key, name)


@pytest.fixture
def store(influx: Influx) -> Store:
    s = open_store(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    return s


def test_rollups_equal_the_raw_statistics_also_after_a_late_backlog(
    influx: Influx, store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    backend = rollups_for(store, InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    spool_depth = [0]
    rollups = Rollups(backend, clock, tmp_path / DIRTY_FILE, waiting=lambda: spool_depth[0] > 0)
    # three hours across midnight for two nodes; node b is cut off after 90 minutes (an outage)
    store_them(store, rollups, readings("a", T0, range(1, 181)))
    store_them(store, rollups, readings("b", T0, range(1, 91)))
    clock.advance(SETTLE.total_seconds() - 1)
    rollups.tick()
    assert influx.rows('SELECT count("readings") FROM "reading_1h"') == []  # not settled yet
    clock.advance(1)
    rollups.tick()
    assert rollups.pending == 0
    assert_rollups_match(influx)
    before = stored(influx, "1h")[
        ("b", bucket_of(int((T0 + timedelta(minutes=60)).timestamp() * 1000), "1h"))
    ]

    # the backlog of b arrives: the rest of the hour b's roll-up already covers, and the next day's;
    # while it waits in the spool nothing is recomputed
    spool_depth[0] = 1
    # with readings lost on the way: six minutes (seq missing, no gap) and 21 (a gap inside an hour)
    backlog = [m for m in range(91, 181) if not (120 <= m <= 125 or 140 <= m <= 160)]
    store_them(store, rollups, readings("b", T0, backlog))
    clock.advance(MAX_WAIT.total_seconds())
    rollups.tick()
    assert (
        stored(influx, "1h")[("b", bucket_of(int((T0 + timedelta(minutes=60)).timestamp() * 1000), "1h"))]
        == before
    )
    spool_depth[0] = 0
    clock.advance(SETTLE.total_seconds())
    rollups.tick()
    assert_rollups_match(influx)
    march_2 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
    # a day b had no reading of before: minutes 121-180 but the 26 lost
    assert stored(influx, "1d")[("b", march_2)]["pm2_5_count"] == 34


def test_the_current_hour_is_refreshed_while_it_fills_and_marks_survive_a_restart(
    influx: Influx, store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    cfg = InfluxConfig(url=influx.url, database=influx.db, api="v1")  # type: ignore[arg-type]
    rollups = Rollups(rollups_for(store, cfg), clock, tmp_path / DIRTY_FILE)
    for minute in range(1, 8):  # a reading a minute, as a node sends them: never 30 s of quiet
        store_them(store, rollups, readings("a", T0, range(minute, minute + 1)))
        clock.advance(60 if minute < 6 else 10)
        rollups.tick()
    # MAX_WAIT after the first reading, the hour was rolled up with what it held then
    assert influx.rows('SELECT "pm2_5_count" FROM "reading_1h"')[0]["pm2_5_count"] == 5
    # stopped with marks outstanding: a new gateway (a new instance on the same file) recomputes them
    store_them(store, rollups, readings("a", T0, range(8, 30)))
    again = Rollups(rollups_for(store, cfg), clock, tmp_path / DIRTY_FILE)
    assert again.pending == 2  # the hour and the day
    clock.advance(SETTLE.total_seconds())
    again.tick()
    assert_rollups_match(influx)


def test_jobs_merge_nodes_with_the_same_hours_and_split_runs() -> None:
    h = 3_600_000
    keys: list[Any] = [("s", "a", "1h", 0), ("s", "a", "1h", h), ("s", "b", "1h", 0), ("s", "b", "1h", h)]
    keys += [("s", "a", "1h", 5 * h)]
    found = [(j.nodes, j.start, j.end) for j in jobs(keys)]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert found == [
        (["a", "b"], epoch, epoch + timedelta(hours=2)),
        (["a"], epoch + timedelta(hours=5), epoch + timedelta(hours=6)),
    ]


def test_rebuild_command_rolls_up_history_written_around_the_gateway(influx: Influx, tmp_path: Path) -> None:
    influx.write([to_line(r) for n in ("a", "b") for r in readings(n, T0, range(1, 200))])
    _rebuild(influx, tmp_path, "2026-03-01", "2026-03-02T03:00Z")
    assert_rollups_match(influx)
    args = ["rollup", "--config", str(tmp_path / "gateway.toml"), "--rebuild", "--site", "tsagaan"]
    assert cli.main([*args, "--start", "2026-03-02", "--end", "2026-03-01"]) == 2


def _rebuild(influx: Influx, tmp_path: Path, start: str, end: str) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path}"\n[mqtt]\nhost = "127.0.0.1"\n'
        f'[influxdb]\nurl = "{influx.url}"\ndatabase = "{influx.db}"\napi = "v1"\n'
    )
    args = ["rollup", "--config", str(cfg), "--rebuild", "--site", "tsagaan", "--start", start, "--end", end]
    assert cli.main(args) == 0


def test_report_and_series_from_rollups_equal_those_from_raw(influx: Influx, tmp_path: Path) -> None:
    """Three days and a bit for two nodes, one of them silent for five hours: the report's tables and
    the dashboard's long series read from the roll-ups show what the raw readings show."""
    outage = range(1500, 1800)
    lines = [to_line(r) for r in readings("a", T0, range(1, 4321))]
    # readings lost: five (no gap); 21 minutes inside an hour; half an hour across an hour's end
    lost = {*range(2000, 2005), *range(2405, 2426), *range(2500, 2531)}
    lines += [to_line(r) for r in readings("b", T0, range(1, 4321)) if int(r.seq) - 1 not in {*outage, *lost}]
    influx.write(lines)
    reader = open_reader(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    start, end = T0 - timedelta(hours=2), T0 + timedelta(days=3, hours=-1, minutes=30)

    def report() -> ReportData:
        return data.collect(
            reader,
            site="tsagaan",
            start=start,
            end=end,
            generated=end + timedelta(days=9),
            standards=["who-2021"],
        )

    def series() -> list[Series]:
        out = []
        for every in (3600, 21600, 86400):  # on their grids: roll-up buckets are whole hours and days
            if every == 86400:
                lo, hi = T0 + timedelta(hours=2), T0 + timedelta(days=2, hours=2)
            else:
                lo, hi = T0 - timedelta(hours=4), T0 + timedelta(days=2, hours=20)
            out.append(reader.series("tsagaan", "b", ["pm2_5", "pm10"], lo, hi, every))
        return out

    raw_report, raw_series = report(), series()
    _rebuild(influx, tmp_path, "2026-03-01", "2026-03-05")
    rolled_report, rolled_series = report(), series()
    assert any("reading_1d" in q for qs in rolled_report.queries.values() for q in qs)
    assert not any("reading_1d" in q for qs in raw_report.queries.values() for q in qs)
    assert rolled_report.nodes == raw_report.nodes  # completeness, flags, gaps, seq lost
    assert rolled_report.metrics == raw_report.metrics  # daily means, the highest reading and its time
    assert rolled_report.calibrations == raw_report.calibrations
    assert rolled_report.uncalibrated == raw_report.uncalibrated
    assert rolled_report.signatures == raw_report.signatures
    b = next(n for n in rolled_report.nodes if n.node == "b")
    # before its first reading, the outage, the two lost stretches; and the seq lost in them
    assert len(b.gaps) == 4 and b.missing_seq == 5 + 21 + 31 + 300
    assert b.flags["sensor_fault"] > 0 and b.flags["high_humidity"] > 0
    assert {c.cal for c in rolled_report.calibrations} == {"pms-a@2026-01-01", "pms-b@2026-03-01"}
    # the gaps read the hours' facts, and raw readings only for the edges and hours with a gap
    assert any("reading_1h" in q for q in rolled_report.queries["gaps:b"])
    assert any(d.readings < d.expected for n in raw_report.nodes if n.node == "b" for d in n.days)
    for raw_s, rolled_s in zip(raw_series, rolled_series, strict=True):
        assert rolled_s.times == raw_s.times
        for m in ("pm2_5", "pm10"):
            assert len(rolled_s.values[m]) == len(raw_s.values[m])
            for x, y in zip(rolled_s.values[m], raw_s.values[m], strict=True):
                assert (x is None and y is None) or math.isclose(x, y, rel_tol=1e-12)  # type: ignore[arg-type]
    assert None in rolled_series[0].values["pm2_5"]  # b's silent hours stay gaps


def test_a_long_periods_plot_band_from_rollups_equals_the_one_from_raw(
    influx: Influx, tmp_path: Path
) -> None:
    """Forty days and a bit, more hours than the plot has pixels: the band the plot draws (the
    lowest and highest hourly mean of each group of hours) is grouped by the database over the
    hourly roll-ups, the partial first day's hours folded into the same groups, and equals both
    the band from the raw readings and the one computed here from the readings themselves."""
    minutes = range(1, 40 * 1440, 20)
    influx.write([to_line(r) for node in ("a", "b") for r in readings(node, T0, minutes)])
    reader = open_reader(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    start, end = T0 - timedelta(hours=5), T0 + timedelta(days=40)

    def report() -> ReportData:
        return data.collect(
            reader, site="tsagaan", start=start, end=end, generated=end, standards=["who-2021"]
        )

    raw_report = report()
    _rebuild(influx, tmp_path, "2026-03-01", "2026-04-12")
    rolled_report = report()
    assert rolled_report.metrics == raw_report.metrics
    per = 2  # 965 hours for 900 pixels
    hours: dict[tuple[str, int], list[float]] = defaultdict(list)
    for row in influx.rows('SELECT "pm2_5" FROM "reading" GROUP BY "node"'):
        hours[(str(row["node"]), bucket_of(int(row["time"]), "1h") + 3600_000)].append(float(row["pm2_5"]))
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (node, hour_end), values in hours.items():
        groups[(node, (hour_end - 1) // (per * 3600_000))].append(sum(values) / len(values))
    for section in rolled_report.metrics:
        band = section.band
        assert band is not None and band.hours == per and not section.hourly
        assert 0 < len(band) <= plots.DENSE
        if section.metric.value != "pm2_5":
            continue
        want = sorted((k, min(v), max(v)) for (node, k), v in groups.items() if node == section.node)
        got = zip(band.times_s, band.lows, band.highs, strict=True)
        for (k, low, high), (mid_s, b_low, b_high) in zip(want, got, strict=True):
            assert mid_s == (k + 0.5) * per * 3600
            assert math.isclose(low, b_low, rel_tol=1e-12) and math.isclose(high, b_high, rel_tol=1e-12)
    queries = rolled_report.queries["hourly:pm2_5"]
    assert any('FROM "reading_1h"' in q and "GROUP BY time(2h, 1ms)" in q for q in queries)
    assert not any('FROM "reading_1h"' in q for q in raw_report.queries["hourly:pm2_5"])


def test_in_the_background_the_hook_never_waits_for_a_recompute(
    influx: Influx, store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    cfg = InfluxConfig(url=influx.url, database=influx.db, api="v1")  # type: ignore[arg-type]
    rollups = Rollups(rollups_for(store, cfg), clock, tmp_path / DIRTY_FILE, background=True)
    store_them(store, rollups, readings("a", T0, range(1, 121)))
    clock.advance(SETTLE.total_seconds())
    rollups.tick()  # starts the worker
    store_them(store, rollups, readings("b", T0, range(1, 121)))  # meanwhile, on the loop's thread
    rollups.join()
    clock.advance(SETTLE.total_seconds())
    rollups.tick()
    rollups.join()
    assert rollups.pending == 0
    assert_rollups_match(influx)
