"""`minewatch-gateway maintenance` against a real influxd: a visit is stored in its own measurement,
marks the readings of its window where they are read (the export's `maintenance` column) and never
changes a reading; bad visits are refused with exit 2 and nothing written."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import InfluxConfig
from gateway.observations.records import FieldRecords, Observation
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from tests import regdata
from tests.helpers import Influx

NODE = "river-down"


@pytest.fixture
def river(influx: Influx, tmp_path: Path) -> Path:
    """Turbidity every 5 minutes for two hours of 2026-11-01."""
    lines = [
        regdata.reading_line(
            NODE, regdata.DAY0 + timedelta(minutes=5 * i), i, {"turbidity": (4.0 + i / 10, 1.2, 300, None)}
        )
        for i in range(1, 25)
    ]
    influx.write(lines)
    return regdata.gateway_config(tmp_path / "gateway.toml", influx)


def _add(config: Path, *extra: str) -> int:
    return main(["maintenance", "add", "--config", str(config), "--node", NODE, *extra])


CLEANED = ("--kind", "cleaned", "--at", "2026-11-01T00:40Z", "--by", "Bold")
WINDOW = ("--flag-from", "2026-11-01T00:30Z", "--flag-to", "2026-11-01T00:50Z")


def test_a_visit_is_stored_beside_the_readings_and_listed(
    river: Path, influx: Influx, capsys: pytest.CaptureFixture[str]
) -> None:
    before = influx.rows("SELECT * FROM reading")
    assert _add(river, *CLEANED, "--note", "window wiped, <b>silt</b>", *WINDOW) == 0
    rows = influx.rows("SELECT * FROM maintenance")
    assert len(rows) == 1
    row = rows[0]
    # the site comes from the node's readings
    assert (row["site"], row["node"], row["kind"], row["by"]) == (regdata.SITE, NODE, "cleaned", "Bold")
    assert row["time"] == regdata.ms(regdata.DAY0 + timedelta(minutes=40))
    assert (row["flag_from"], row["flag_to"]) == ("2026-11-01T00:30:00.000Z", "2026-11-01T00:50:00.000Z")
    assert row["note"] == "window wiped, <b>silt</b>"
    assert row["recorded"].endswith("Z")
    assert influx.rows("SELECT * FROM reading") == before  # no reading touched
    capsys.readouterr()
    assert main(["maintenance", "list", "--config", str(river), "--site", regdata.SITE, "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(v["kind"], v["at"], v["flag_from"]) for v in listed] == [
        ("cleaned", "2026-11-01T00:40:00Z", "2026-11-01T00:30:00Z")
    ]
    assert main(["maintenance", "list", "--config", str(river), "--site", regdata.SITE]) == 0
    assert (
        "cleaned  by Bold  marks (2026-11-01 00:30:00 UTC, 2026-11-01 00:50:00 UTC]"
        in capsys.readouterr().out
    )


def test_a_person_reads_the_visits_in_the_sites_zone(
    river: Path, influx: Influx, capsys: pytest.CaptureFixture[str]
) -> None:
    river.write_text(river.read_text() + '[site]\ntimezone = "Asia/Ulaanbaatar"\n')
    assert _add(river, *CLEANED, *WINDOW) == 0
    assert "recorded: cleaned at tsagaan/river-down, 2026-11-01 08:40:00 UTC+08, by Bold" in (
        capsys.readouterr().out
    )
    assert main(["maintenance", "list", "--config", str(river), "--site", regdata.SITE]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line == (
        "2026-11-01 08:40:00 UTC+08  river-down  cleaned  by Bold  "
        "marks (2026-11-01 08:30:00 UTC+08, 2026-11-01 08:50:00 UTC+08]"
    )
    # the machine-readable form stays UTC
    assert main(["maintenance", "list", "--config", str(river), "--site", regdata.SITE, "--json"]) == 0
    (doc,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (doc["at"], doc["flag_from"], doc["flag_to"]) == (
        "2026-11-01T00:40:00Z",
        "2026-11-01T00:30:00Z",
        "2026-11-01T00:50:00Z",
    )


def test_the_export_marks_the_window_in_its_own_column(river: Path, influx: Influx, tmp_path: Path) -> None:
    assert _add(river, *CLEANED, *WINDOW) == 0
    assert _add(river, "--kind", "inspected", "--at", "2026-11-01T01:30Z", "--by", "Saraa") == 0
    out = tmp_path / "x.csv"
    args = ["--site", regdata.SITE, "--start", "2026-11-01", "--end", "2026-11-02", "--out", str(out)]
    assert main(["export", "--config", str(river), *args]) == 0
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    marked = [r["time"] for r in rows if r["maintenance"]]
    # (00:30, 00:50]: the readings stamped 00:35 to 00:50; the signed `flags` are left alone
    assert marked == [f"2026-11-01T00:{m}:00Z" for m in (35, 40, 45, 50)]
    assert {r["maintenance"] for r in rows} == {"", "cleaned"}
    assert all(r["flags"] == "" for r in rows)
    meta = json.loads((tmp_path / "x.csv.columns.json").read_text())
    assert [v["kind"] for v in meta["maintenance_visits"]] == ["cleaned", "inspected"]
    assert "maintenance" in [c["name"] for c in meta["columns"]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--kind", "cleaned", "--at", "2099-01-01", "--by", "Bold"), "in the future"),
        (("--kind", "cleaned", "--at", "2026-11-01T00:40Z", "--by", " "), "--by"),
        (("--kind", "cleaned", "--at", "yesterday", "--by", "Bold"), "not a date"),
        ((*CLEANED, "--flag-from", "2026-11-01T00:30Z"), "go together"),
        ((*CLEANED, "--flag-from", "2026-11-01T00:50Z", "--flag-to", "2026-11-01T00:30Z"), "after"),
        ((*CLEANED, "--flag-from", "2026-10-01", "--flag-to", "2026-11-01"), "within 7 days"),
        ((*CLEANED, "--note", "a\x1b[2Jb"), "--note"),
        ((*CLEANED, "--site", "Bad Site"), "not a valid id"),
    ],
)
def test_bad_visits_are_refused_and_nothing_is_written(
    river: Path, influx: Influx, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str
) -> None:
    assert _add(river, *extra) == 2
    assert message in capsys.readouterr().err
    assert influx.rows("SHOW MEASUREMENTS") == [{"name": "reading"}]


def test_a_visit_is_never_replaced(river: Path, influx: Influx, capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(river, *CLEANED, "--note", "first") == 0
    assert _add(river, *CLEANED, "--note", "second") == 2
    assert "already recorded" in capsys.readouterr().err
    assert [r["note"] for r in influx.rows("SELECT * FROM maintenance")] == ["first"]
    # another kind at the same moment is another record
    assert _add(river, "--kind", "moved", "--at", "2026-11-01T00:40Z", "--by", "Bold") == 0
    assert len(influx.rows("SELECT * FROM maintenance")) == 2


def test_a_node_without_readings_needs_its_site(
    river: Path, influx: Influx, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["maintenance", "add", "--config", str(river), "--node", "new-node", *CLEANED]
    assert main(args) == 2
    assert "give --site" in capsys.readouterr().err
    assert main([*args, "--site", regdata.SITE]) == 0
    assert influx.rows("SELECT * FROM maintenance")[0]["node"] == "new-node"


def test_an_unknown_kind_is_refused_by_the_parser(river: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        _add(river, "--kind", "painted", "--at", "2026-11-01", "--by", "Bold")
    assert exc.value.code == 2


def test_the_export_side_file_lists_the_observations_accepted(
    river: Path, influx: Influx, tmp_path: Path
) -> None:
    store = InfluxV1(InfluxConfig(url=influx.url, database=influx.db))  # type: ignore[arg-type]
    field = FieldRecords(store, InfluxReader(store, owned=False), tmp_path / "photos")
    for i, decision in enumerate(("accepted", "rejected", None)):
        obs = Observation(
            id=f"00000000-0000-4000-8000-00000000000{i}",
            observer="code:1",
            kind="water_colour",
            text=f"orange {i}",
            at=regdata.DAY0 + timedelta(minutes=30 + i),
            site=regdata.SITE,
            node=NODE,
            lat=None,
            lon=None,
            received=regdata.DAY0 + timedelta(hours=3),
            photo_received_sha256=None,
            photo_sha256=None,
        )
        assert field.add(obs, None)
        if decision is not None:
            field.decide(obs.id, decision, "Saraa", "checked", regdata.DAY0 + timedelta(hours=4))  # type: ignore[arg-type]
    field.close()
    out = tmp_path / "x.csv"
    args = ["--site", regdata.SITE, "--start", "2026-11-01", "--end", "2026-11-02", "--out", str(out)]
    assert main(["export", "--config", str(river), *args]) == 0
    meta = json.loads((tmp_path / "x.csv.columns.json").read_text())
    assert [(o["text"], o["state"], o["decided_by"]) for o in meta["observations"]] == [
        ("orange 0", "accepted", "Saraa")
    ]
    assert "observer" not in meta["observations"][0]
