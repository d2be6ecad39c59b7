"""`minewatch-gateway export` against a real influxd: exact round trips, period means with their
completeness, and bad arguments refused with exit 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.influxql import format_time, from_ms
from tests import regdata
from tests.helpers import Influx


@pytest.fixture
def site(influx: Influx, tmp_path: Path) -> Path:
    regdata.dust_site(influx, days=3)
    return regdata.gateway_config(tmp_path / "gateway.toml", influx)


def _export(config: Path, out: Path, *extra: str) -> int:
    args = ["--site", regdata.SITE, "--start", "2026-11-01", "--end", "2026-11-04", "--out", str(out)]
    return main(["export", "--config", str(config), *args, *extra])


def test_csv_round_trip_is_exact(site: Path, influx: Influx, tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    assert _export(site, out, "--node", "haul-road", "--metrics", "pm2_5,pm10") == 0
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    db = influx.rows(
        "SELECT * FROM reading WHERE node = 'haul-road' AND time > '2026-11-01T00:00:00Z' "
        "AND time <= '2026-11-04T00:00:00Z'"
    )
    assert len(rows) == len(db) == 3 * 1440 - 360
    by_seq = {int(r["seq"]): r for r in rows}
    for point in db:
        row = by_seq[int(point["seq"])]
        assert row["time"] == format_time(from_ms(point["time"]))
        for name in ("pm2_5", "pm2_5_raw", "pm10", "pm10_raw"):
            if point[name] is None:
                assert row[name] == ""
            else:
                assert float(row[name]) == float(point[name])  # exact: no rounding on the way
        assert row["pm2_5_cal"] == (point["pm2_5_cal"] or "")
        assert row["flags"] == point["flags"]
        assert row["signed"] == ("true" if point["signed"] else "")
        assert row["kid"] == (point["kid"] or "")
    assert rows[0]["time"] == "2026-11-01T00:01:00Z"
    assert rows[0]["flags"] == "warming_up"
    fault = next(r for r in rows if r["flags"] == "sensor_fault")
    assert (fault["pm2_5"], fault["pm2_5_raw"], fault["pm2_5_n"]) == ("", "0.0", "0")
    meta = json.loads((tmp_path / "export.csv.columns.json").read_text())
    assert [c["name"] for c in meta["columns"]] == list(rows[0].keys())
    assert meta["rows"] == len(rows)
    assert next(c for c in meta["columns"] if c["name"] == "pm2_5")["unit"] == "µg/m³"
    # the sidecar's query gives the same rows
    assert len(influx.rows(meta["influxql"])) == len(rows)


def test_jsonl_round_trip_is_exact_and_typed(site: Path, influx: Influx, tmp_path: Path) -> None:
    out = tmp_path / "export.jsonl"
    assert _export(site, out, "--format", "jsonl", "--metrics", "turbidity") == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    db = influx.rows("SELECT turbidity, turbidity_raw, seq FROM reading WHERE node = 'river-down'")
    assert len(rows) == len(db) == 288  # only readings that carry turbidity
    assert {r["node"] for r in rows} == {"river-down"}
    assert [r["turbidity"] for r in rows] == [float(p["turbidity"]) for p in db]
    assert all(isinstance(r["turbidity_n"], int) and r["turbidity_cal"] is None for r in rows)
    assert rows[-1]["time"] == "2026-11-02T00:00:00Z"  # river-down's last reading, ending day 1


@pytest.mark.parametrize("period", ["1h", "24h"])
def test_average_means_and_completeness(site: Path, influx: Influx, tmp_path: Path, period: str) -> None:
    out = tmp_path / "means.csv"
    assert _export(site, out, "--node", "haul-road", "--metrics", "pm2_5", "--average", period) == 0
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    db = influx.rows(
        f"SELECT mean(pm2_5), count(pm2_5) FROM reading WHERE node = 'haul-road' AND "
        f"time > '2026-11-01T00:00:00Z' AND time <= '2026-11-04T00:00:00Z' "
        f"GROUP BY time({period}, 1ms) fill(none)"
    )
    db = [p for p in db if p["time"] > regdata.ms(regdata.DAY0)]
    assert len(rows) == len(db) == (3 if period == "24h" else 3 * 24 - 5)  # 02:00-08:00 off: 5 empty hours
    for row, point in zip(rows, db, strict=True):
        assert float(row["pm2_5_mean"]) == pytest.approx(point["mean"], rel=1e-12)
        assert int(row["pm2_5_count"]) == point["count"]
        assert row["interval_s"] == "60"
    if period == "24h":
        assert [r["start"] for r in rows] == [
            "2026-11-01T00:00:00Z",
            "2026-11-02T00:00:00Z",
            "2026-11-03T00:00:00Z",
        ]
        # day 1 lost one sensor-fault reading, day 3 the six hours the node was off
        assert [float(r["pm2_5_completeness"]) for r in rows] == [round(1439 / 1440, 4), 1.0, 0.75]
    else:
        assert rows[0]["end"] == "2026-11-01T01:00:00Z"
        assert float(rows[0]["pm2_5_completeness"]) == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2026-11-05", "--end", "2026-11-01"], "must be after --start"),
        (["--start", "yesterday", "--end", "2026-11-01"], "is not a date or time"),
        (["--start", "2026-11-01", "--end", "2026-11-02", "--metrics", "pm25"], "unknown metric 'pm25'"),
        (["--start", "2026-11-01", "--end", "2026-11-02", "--node", "Bad/Node"], "is not a valid id"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    site: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", "--config", str(site), "--site", regdata.SITE, *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_bad_choice_exits_2(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["export", "--config", str(site), "--site", "x", "--start", "2026-11-01", "--end", "2026-11-02",
              "--average", "8h"])  # fmt: skip
    assert exc.value.code == 2
    assert "--average" in capsys.readouterr().err
