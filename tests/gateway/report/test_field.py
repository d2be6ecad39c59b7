"""The report's field records against a real influxd: the maintenance visits recorded through the
CLI, with the readings each marks counted as an independent query counts them."""

from __future__ import annotations

import csv
import html
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import InfluxConfig
from gateway.observations.records import FieldRecords, Observation
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from tests import regdata
from tests.gateway.report.test_report import tables
from tests.helpers import Influx


@pytest.fixture
def config(influx: Influx, tmp_path: Path) -> Path:
    lines = [
        regdata.reading_line(
            "river-down",
            regdata.DAY0 + timedelta(minutes=5 * i),
            i,
            {"turbidity": (4.0 + i / 10, 1.2, 300, None)},
        )
        for i in range(1, 289)
    ]
    influx.write(lines)
    return regdata.gateway_config(tmp_path / "gateway.toml", influx)


def _report(config: Path, out: Path) -> str:
    args = ["--site", regdata.SITE, "--start", "2026-11-01", "--end", "2026-11-02", "--out", str(out)]
    assert main(["report", "--config", str(config), *args]) == 0
    return out.read_text(encoding="utf-8")


def test_maintenance_done_is_listed_with_the_readings_it_marks(
    config: Path, influx: Influx, tmp_path: Path
) -> None:
    add = ["maintenance", "add", "--config", str(config), "--node", "river-down"]
    window = ["--flag-from", "2026-11-01T10:00Z", "--flag-to", "2026-11-01T10:30Z"]
    note = "<script>alert(1)</script> silt"
    assert (
        main(
            [*add, "--kind", "cleaned", "--at", "2026-11-01T10:15Z", "--by", "Bold", "--note", note, *window]
        )
        == 0
    )
    assert main([*add, "--kind", "inspected", "--at", "2026-11-01T16:00Z", "--by", "Saraa"]) == 0
    assert main([*add, "--kind", "moved", "--at", "2026-11-03T09:00Z", "--by", "Saraa"]) == 0  # after
    text = _report(config, tmp_path / "r.html")
    rows = tables(text)["maintenance-table"]
    assert [r[:4] for r in rows] == [
        ["river-down", "cleaned", "2026-11-01 10:15 UTC", "Bold"],
        ["river-down", "inspected", "2026-11-01 16:00 UTC", "Saraa"],
    ]
    assert rows[0][5] == "2026-11-01 10:00 UTC – 2026-11-01 10:30 UTC"
    counted = influx.rows(
        "SELECT count(seq) FROM reading WHERE node = 'river-down' AND "
        "time > '2026-11-01T10:00:00Z' AND time <= '2026-11-01T10:30:00Z'"
    )[0]["count"]
    assert rows[0][6] == str(counted) == "6"
    assert rows[1][5:] == ["none", "0"]
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)" in text
    # the queries printed give the same visits
    pre = re.search(r'id="field".*?<pre>(.*?)</pre>', text, re.S)
    assert pre is not None
    first = html.unescape(pre.group(1)).split(";")[0].strip()
    assert len(influx.rows(first)) == 2


def test_a_visit_just_after_the_period_that_marks_readings_in_it_is_listed(
    config: Path, influx: Influx, tmp_path: Path
) -> None:
    """November's marks and November's lists agree: a cleaning recorded at 00:10 on the 2nd whose
    window starts at 23:50 on the 1st is listed, counting only the period's marked readings (23:55
    and 00:00); one marking only the 2nd's readings, and one before the period marking nothing, are
    not; the export's side file lists the same visits (maintenance.of_period)."""
    add = ["maintenance", "add", "--config", str(config), "--node", "river-down", "--by", "Bold"]
    window = ["--flag-from", "2026-11-01T23:50Z", "--flag-to", "2026-11-02T00:20Z"]
    assert main([*add, "--kind", "cleaned", "--at", "2026-11-02T00:10Z", *window]) == 0
    later = ["--flag-from", "2026-11-02T00:00Z", "--flag-to", "2026-11-02T00:20Z"]
    assert main([*add, "--kind", "moved", "--at", "2026-11-02T00:10Z", *later]) == 0
    assert main([*add, "--kind", "inspected", "--at", "2026-10-31T23:00Z"]) == 0
    text = _report(config, tmp_path / "r.html")
    rows = tables(text)["maintenance-table"]
    assert [r[:4] for r in rows] == [["river-down", "cleaned", "2026-11-02 00:10 UTC", "Bold"]]
    assert rows[0][5] == "2026-11-01 23:50 UTC – 2026-11-02 00:20 UTC"
    counted = influx.rows(
        "SELECT count(seq) FROM reading WHERE node = 'river-down' AND "
        "time > '2026-11-01T23:50:00Z' AND time <= '2026-11-02T00:00:00Z'"
    )[0]["count"]
    assert rows[0][6] == str(counted) == "2"
    out = tmp_path / "x.csv"
    args = ["--site", regdata.SITE, "--start", "2026-11-01", "--end", "2026-11-02", "--out", str(out)]
    assert main(["export", "--config", str(config), *args]) == 0
    side = json.loads((tmp_path / "x.csv.columns.json").read_text())
    assert [(v["kind"], v["at"]) for v in side["maintenance_visits"]] == [("cleaned", "2026-11-02T00:10:00Z")]
    with out.open(encoding="utf-8", newline="") as fh:
        marked = [r["time"] for r in csv.DictReader(fh) if r["maintenance"]]
    assert marked == ["2026-11-01T23:55:00Z", "2026-11-02T00:00:00Z"]  # each mark's visit is listed


def test_a_period_without_visits_says_so(config: Path, tmp_path: Path) -> None:
    text = _report(config, tmp_path / "r.html")
    assert "No maintenance visit was recorded in this period." in text
    assert 'href="#field"' in text
    assert "observation was accepted for this period." in text


def test_observations_accepted_are_listed_and_others_are_not(
    config: Path, influx: Influx, tmp_path: Path
) -> None:
    store = InfluxV1(InfluxConfig(url=influx.url, database=influx.db))  # type: ignore[arg-type]
    field = FieldRecords(store, InfluxReader(store, owned=False), tmp_path / "photos")
    made = []
    for i, (kind, text) in enumerate(
        [("dust", "<b>plume</b> at the pit"), ("trucks", "at night"), ("smell", "x")]
    ):
        obs = Observation(
            id=f"00000000-0000-4000-8000-00000000000{i}",
            observer="code:1",
            kind=kind,
            text=text,
            at=regdata.DAY0 + timedelta(hours=10 + i),
            site=regdata.SITE,
            node="river-down",
            lat=None,
            lon=None,
            received=regdata.DAY0 + timedelta(hours=12),
            photo_received_sha256=None,
            photo_sha256=None,
            photos_received_sha256=("ab" * 32, "cd" * 32) if i == 0 else (),  # two photos: both listed
        )
        assert field.add(obs, None)
        made.append(obs)
    field.decide(made[0].id, "accepted", "Saraa", "seen on the chart", regdata.DAY0 + timedelta(hours=13))
    field.decide(made[1].id, "rejected", "Saraa", "no trucks that night", regdata.DAY0 + timedelta(hours=13))
    field.close()  # the third stays pending
    text = _report(config, tmp_path / "r.html")
    rows = tables(text)["observations-table"]
    assert rows == [
        [
            "2026-11-01 10:00 UTC",
            "Dust plume",
            "river-down",
            "<b>plume</b> at the pit",
            "by Saraa, 2026-11-01 13:00 UTC: seen on the chart",
            "abababababababab…cdcdcdcdcdcdcdcd…",
        ]
    ]
    assert "&lt;b&gt;plume" in text
    assert "<code>abababababababab…</code><br><code>cdcdcdcdcdcdcdcd…</code>" in text  # each photo's hash
