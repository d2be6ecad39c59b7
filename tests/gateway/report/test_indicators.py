"""The standards' indicators in the report (per month and per year: days over the 24-hour limits,
annual means, the percentile forms), against values computed here by hand from the rows written to
a real influxd, with each standard's own data-capture and ranking rules."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway import devservices
from gateway.cli import main
from gateway.standards import percentile_rank
from tests import regdata
from tests.gateway.report.test_report import tables
from tests.helpers import Influx

YEAR0 = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 365
MISSING = set(range(100, 125))  # 25 days of April and May without a reading
SHORT = set(range(15, DAYS, 30))  # 17 of 24 hourly readings: under 75 %, not counted


def value(day: int) -> float:
    return float(10 + (day * 37) % 50)  # 10 .. 59 µg/m³, the same all day


@pytest.fixture(scope="module")
def year_db(influxd: devservices.Service) -> Iterator[Influx]:
    db = Influx(f"http://127.0.0.1:{influxd.port}", f"i_{uuid.uuid4().hex[:12]}")
    db.create()
    lines, seq = [], 0
    for day in range(DAYS):
        if day in MISSING:
            continue
        hours = 17 if day in SHORT else 24
        for h in range(hours):  # stamped at the end of each hour: (00:00, 24:00] is the day
            seq += 1
            ts = YEAR0 + timedelta(days=day, hours=h + 1)
            v = 500.0 if day in SHORT else value(day)
            lines.append(regdata.reading_line("hill", ts, seq, {"pm2_5": (v, v, 60, None)}))
    for i in range(0, len(lines), 5000):
        db.write(lines[i : i + 5000])
    yield db
    db.drop()


@pytest.fixture(scope="module")
def shown(year_db: Influx, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[str]]]:
    tmp = tmp_path_factory.mktemp("indicators")
    config = regdata.gateway_config(tmp / "gateway.toml", year_db)
    out = tmp / "report.html"
    args = ["--site", regdata.SITE, "--start", "2025-01-01", "--end", "2026-01-01", "--out", str(out)]
    assert main(["report", "--config", str(config), *args, "--metrics", "pm2_5", "--interval-s", "3600"]) == 0
    return tables(out.read_text(encoding="utf-8"))


def _valid(year_db: Influx) -> dict[int, float]:
    """Day index -> daily mean, for the days with at least 75 % of 24 readings, from the database."""
    rows = year_db.rows(
        "SELECT mean(pm2_5) AS m, count(pm2_5) AS c FROM reading WHERE node = 'hill' "
        "AND time > '2025-01-01T00:00:00Z' AND time <= '2026-01-01T00:00:00Z' GROUP BY time(1d, 1ms)"
    )
    out = {}
    for r in rows:
        day = round((r["time"] / 1000 - YEAR0.timestamp()) / 86400)
        if r["c"] and r["c"] >= 18:
            out[day] = r["m"]
    return out


def test_the_database_holds_what_the_hand_counts_assume(year_db: Influx) -> None:
    valid = _valid(year_db)
    assert len(valid) == DAYS - len(MISSING) - len(SHORT - MISSING)
    assert all(valid[d] == value(d) for d in valid)


def test_days_over_per_month_and_year(shown: dict[str, list[list[str]]], year_db: Influx) -> None:
    valid = _valid(year_db)
    months = shown["monthly-hill-pm2_5-who-2021"]
    assert [r[0] for r in months] == [f"2025-{m:02d}" for m in range(1, 13)]
    for m, row in enumerate(months, 1):
        mine = [v for d, v in valid.items() if (YEAR0 + timedelta(days=d)).month == m]
        days_in = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        assert row[1:5] == [
            str(days_in),
            str(len(mine)),
            f"{100 * len(mine) / days_in:.1f} %",
            str(sum(v > 15 for v in mine)),
        ]
        assert len(row) == 5  # one 24-hour limit of WHO 2021 is for PM2.5
    (year,) = shown["yearly-hill-pm2_5-mns-4585-2016"]
    assert year[:5] == [
        "2025",
        "365",
        str(len(valid)),
        f"{100 * len(valid) / 365:.1f} %",
        str(sum(v > 50 for v in valid.values())),
    ]
    assert year[5] == "yes"  # 328 of 365 days: over 75 %


def test_annual_means_and_percentiles_follow_each_standards_rules(
    shown: dict[str, list[list[str]]], year_db: Influx
) -> None:
    valid = _valid(year_db)
    means = sorted(valid.values())
    n = len(means)
    # WHO 2021: the mean of the valid days; the 99th percentile by nearest rank
    who = {r[0]: r[1:] for r in shown["forms-hill-pm2_5-who-2021-2025"]}
    annual = sum(means) / n
    assert who["Annual mean (5 µg/m³)"] == [f"{annual:.2f}", "over"]
    p99 = means[math.ceil(0.99 * n) - 1]
    rank = n - math.ceil(0.99 * n) + 1
    assert who[f"99th percentile of daily means (15 µg/m³) (rank {rank} of {n} from the highest)"] == [
        f"{p99:.2f}",
        "over",
    ]
    # US EPA: the mean of the four quarterly means, the 98th percentile by Appendix N's Table 1; the
    # second quarter has 25 days missing and 3 short, under 75 % of its 91 days: not judged
    q = [[v for d, v in valid.items() if ((YEAR0 + timedelta(days=d)).month - 1) // 3 == i] for i in range(4)]
    assert len(q[1]) / 91 < 0.75 and all(len(x) / 90 >= 0.75 for x in (q[0], q[2], q[3]))
    epa = {r[0]: r[1:] for r in shown["forms-hill-pm2_5-us-epa-2025"]}
    quarterly = sum(sum(x) / len(x) for x in q) / 4
    assert epa["Annual mean (9 µg/m³)"] == [
        f"{quarterly:.2f}",
        f"not judged: quarter 2 holds {100 * len(q[1]) / 91:.1f} % of its days",
    ]
    rank98 = math.ceil(n / 50)
    p98 = sorted(means, reverse=True)[rank98 - 1]
    key = f"98th percentile of daily means (35 µg/m³) (rank {rank98} of {n} from the highest)"
    assert epa[key][0] == f"{p98:.2f}" and epa[key][1].startswith("not judged")
    (year,) = shown["yearly-hill-pm2_5-us-epa"]
    assert year[-1].startswith("not judged")


def test_percentile_ranks() -> None:
    # 40 CFR 50 Appendix N, Table 1: 1-50 days -> the highest, 51-100 -> the 2nd, 351-366 -> the 8th
    assert [percentile_rank(n, 98, "epa-table-1") for n in (1, 50, 51, 100, 101, 350, 351, 366)] == [
        1, 1, 2, 2, 3, 7, 8, 8,
    ]  # fmt: skip
    # nearest rank: 365 days -> the 4th highest for the 99th percentile (WHO: 3-4 days a year over)
    assert percentile_rank(365, 99, "nearest-rank") == 4
    assert percentile_rank(100, 99, "nearest-rank") == 2
    assert percentile_rank(1, 99, "nearest-rank") == 1
