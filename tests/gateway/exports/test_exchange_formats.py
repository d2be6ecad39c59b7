"""`export --format aqdx|aqcsv|openaq` from real readings in influxd: each file equals its golden
file byte for byte, and every cell is checked against the format's published column definition
(AQDx 3.0 field dictionary; EPA's AQCSV field list; OpenAQ's upload-tool README). Set
MINEWATCH_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change, then read the diff."""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from contract.flags import Flag
from gateway.cli import main
from gateway.exports import quality
from tests.gateway.exports import exchange_data as data
from tests.helpers import Influx

GOLDEN = Path(__file__).parents[2] / "data" / "golden"
REPO = Path(__file__).parents[3]


def _decimal(p: int, s: int) -> Callable[[str], bool]:
    """AQDx `Decimal(p,s)`: at most p digits, s of them after the point; no exponent, no commas."""
    pattern = re.compile(rf"-?[0-9]{{1,{p - s}}}(\.[0-9]{{1,{s}}})?")
    return lambda cell: bool(pattern.fullmatch(cell)) and len(cell.lstrip("-").replace(".", "")) <= p


def _string(n: int, chars: str = r"[^,]") -> Callable[[str], bool]:
    return lambda cell: bool(re.fullmatch(rf"{chars}{{0,{n}}}", cell))


def _codes(*allowed: int) -> Callable[[str], bool]:
    return lambda cell: cell in {str(a) for a in allowed}


def _required(check: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda cell: cell != "" and check(cell)


ISO_OFFSET = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d"  # AQDx: an offset, never Z
# AQDx 3.0 field dictionary (cdphe-atops/aqdx-documentation docs/standard-format/field-dictionary.md),
# in its order, with each field's type and "Value Required"
AQDX = {
    "datetime": _required(
        lambda c: bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d", c))
    ),
    "parameter_code": _required(_string(5, "[0-9]")),
    "parameter_value": lambda c: c == "" or _decimal(12, 5)(c),
    "unit_code": _required(lambda c: bool(re.fullmatch(r"[0-9]{3}", c))),
    "method_code": _string(3, "[0-9]"),
    "duration": _required(_decimal(12, 3)),
    "aggregation_code": _required(_codes(0, 1, 2, 3, 4, 5, 6, 7)),
    "latitude": _required(_decimal(9, 5)),
    "longitude": _required(_decimal(9, 5)),
    "elevation": lambda c: c == "" or _decimal(8, 2)(c),
    "data_steward_name": _required(_string(64, "[A-Za-z0-9_-]")),
    "device_id": _required(_string(64, "[A-Za-z0-9_ -]")),
    "measurement_technology_code": _required(
        lambda c: bool(re.fullmatch(r"[A-Z]{2}([a-z]{2})?-([A-Z]{2}|00)([a-z]{2})?-[A-Z]{2}([a-z]{2})?", c))
    ),
    "instrument_classification": _required(_codes(1, 2, 3)),
    "dataset_id": _required(_string(128, r"[A-Za-z0-9_.-]")),
    "validity_code": _required(_codes(0, 1, 3, 5, 8, 9)),
    "calibration_code": _required(_codes(0, 1, 2, 3)),
    "review_level_code": _required(_codes(0, 1, 2, 3)),
    "detection_limit": lambda c: c == "" or _decimal(12, 5)(c),
    "qualifier_codes": _string(254, "[A-Z0-9 ]"),
}

# AQCSV (aqs.epa.gov/aqsweb/documents/AQCSV_Format.html), fields 1 to 20 in position order
AQCSV = {
    "site": _required(lambda c: bool(re.fullmatch(r"[0-9]{12}", c))),
    "data_status": _required(_codes(0, 1)),
    "action_code": lambda c: c == "",  # "Always blank"
    "datetime": _required(lambda c: bool(re.fullmatch(r"\d{8}T\d{4}[+-]\d{4}", c))),
    "parameter": _required(lambda c: bool(re.fullmatch(r"[0-9]{5}", c))),
    "duration": _required(lambda c: bool(re.fullmatch(r"[0-9]+(\.[0-9]+)?", c))),  # minutes
    "frequency": lambda c: c == "" or c.isdigit(),
    "value": lambda c: c == "" or bool(re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", c)),
    "unit": _required(lambda c: bool(re.fullmatch(r"[0-9]{3}", c))),
    "qc": _required(_codes(0, 1, 7, 8, 9)),
    "poc": _required(lambda c: c.isdigit()),
    "lat": lambda c: c == "" or bool(re.fullmatch(r"-?[0-9]{1,2}\.[0-9]+", c)),
    "lon": lambda c: c == "" or bool(re.fullmatch(r"-?[0-9]{1,3}\.[0-9]+", c)),
    "GISDatum": lambda c: c in {"", "WGS84", "NAD83", "NAD27"},
    "elev": lambda c: c == "" or bool(re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", c)),
    "method_code": lambda c: c == "" or bool(re.fullmatch(r"[0-9]{3}", c)),
    "mpc": lambda c: c in {"", "MDL"},
    "mpc_value": lambda c: c == "" or bool(re.fullmatch(r"[0-9.]+", c)),
    "uncertainty": lambda c: c == "" or bool(re.fullmatch(r"[0-9.]+", c)),
    "qualifiers": lambda c: bool(re.fullmatch(r"([A-Z0-9]{1,2}( [A-Z0-9]{1,2})*)?", c)),
}

# OpenAQ Data Upload Tool (openaq/openaq-data-format upload/README.md), the README's table order
OPENAQ = {
    "parameter": _required(lambda c: c in {"pm25", "pm10", "co", "bc", "so2", "no2", "o3"}),
    "location": _required(lambda c: True),
    "city": lambda c: True,
    "country": _required(lambda c: bool(re.fullmatch(r"[A-Z]{2}", c))),
    "value": _required(lambda c: bool(re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", c))),
    "unit": _required(lambda c: c in {"µg/m³", "ppm"}),
    "date_utc": _required(lambda c: bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", c))),
    "date_local": _required(lambda c: bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", c))),
    "sourceType": _required(lambda c: c in {"government", "research"}),
    "mobile": _required(lambda c: c in {"true", "false"}),
    "coordinates_latitude": _required(lambda c: -90 <= float(c) <= 90),
    "coordinates_longitude": _required(lambda c: -180 <= float(c) <= 180),
    "attribution_name": _required(lambda c: True),
    "attribution_url": _required(lambda c: c.startswith(("http://", "https://"))),
    "averagingPeriod_value": _required(lambda c: float(c) > 0),
    "averagingPeriod_unit": _required(lambda c: c in {"hours", "minutes"}),
}

PUBLISHED = {"aqdx": AQDX, "aqcsv": AQCSV, "openaq": OPENAQ}


@pytest.fixture
def site(influx: Influx, tmp_path: Path) -> Path:
    data.store(influx)
    return data.config(tmp_path / "gateway.toml", influx)


def _export(config: Path, out: Path, fmt: str, *extra: str) -> int:
    args = ["--site", data.SITE, "--start", "2026-11-01", "--end", "2026-11-02", "--out", str(out)]
    return main(["export", "--config", str(config), *args, "--format", fmt, *extra])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("fmt", sorted(PUBLISHED))
def test_export_equals_its_golden_file_and_its_published_columns(
    site: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"{fmt}.csv"
    assert _export(site, out, fmt) == 0
    golden = GOLDEN / f"{fmt}.csv"
    if os.environ.get("MINEWATCH_UPDATE_GOLDEN"):
        golden.write_bytes(out.read_bytes())
    assert out.read_bytes() == golden.read_bytes()
    rows = _rows(out)
    assert list(rows[0]) == list(PUBLISHED[fmt])  # every published column, in the published order
    for row in rows:
        bad = {name: cell for name, cell in row.items() if not PUBLISHED[fmt][name](cell)}
        assert not bad, f"{fmt}: cells outside their published definition: {bad}"
    side = json.loads((tmp_path / f"{fmt}.csv.columns.json").read_text())
    assert side["columns"] == list(PUBLISHED[fmt]) and side["rows"] == len(rows)


def test_aqdx_codes_follow_the_flags(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "aqdx.csv"
    assert _export(site, out, "aqdx") == 0
    rows = _rows(out)
    assert len(rows) == 9 * 5  # nine air readings, five metrics with AQS codes; turbidity has none
    by = {(r["datetime"], r["parameter_code"]): r for r in rows}
    # seq 3, the sensor fault: the reading ended 08:03Z, so its window began 08:02Z = 16:02 at +08:00
    fault = by[("2026-11-01T16:02:00+08:00", "88502")]
    assert (fault["parameter_value"], fault["validity_code"], fault["qualifier_codes"]) == ("", "9", "AN")
    assert by[("2026-11-01T16:02:00+08:00", "85101")]["validity_code"] == "9"  # the whole reading
    humid_pm = by[("2026-11-01T16:03:00+08:00", "88502")]
    humid_rh = by[("2026-11-01T16:03:00+08:00", "62201")]
    assert (humid_pm["validity_code"], humid_pm["qualifier_codes"]) == ("5", "LK CD")
    assert (humid_rh["validity_code"], humid_rh["qualifier_codes"]) == ("1", "")  # RH is not biased
    clean = by[("2026-11-01T16:01:00+08:00", "88502")]
    assert (clean["parameter_value"], clean["validity_code"], clean["calibration_code"]) == (
        "15.12500",
        "1",
        "1",
    )
    assert by[("2026-11-01T16:01:00+08:00", "85101")]["calibration_code"] == "0"  # no cal on pm10
    assert by[("2026-11-01T16:05:00+08:00", "88502")]["qualifier_codes"] == "2 QX CD"


def _window_start(seq: int) -> datetime:
    return data.T0 + timedelta(minutes=seq - 1)  # a reading's `ts` ends its 60 s window


@pytest.mark.parametrize("fmt", sorted(PUBLISHED))
def test_each_format_codes_exactly_the_readings_a_visit_marks(site: Path, tmp_path: Path, fmt: str) -> None:
    """The visit marks seq 8 and 9, which carry no flag: kept, as suspect with qualifier 3 (field
    issue) in AQDx and AQCSV; left out of OpenAQ, which has no quality column, as every suspect value
    is. The unflagged seq 2 beside them stays valid."""
    out = tmp_path / f"{fmt}.csv"
    assert _export(site, out, fmt) == 0
    rows = _rows(out)
    tz = timezone(timedelta(hours=8))
    if fmt == "aqdx":
        starts = {seq: _window_start(seq).astimezone(tz).isoformat() for seq in (2, *data.MARKED_SEQS)}
        codes = {
            (r["datetime"], r["parameter_code"]): (r["validity_code"], r["qualifier_codes"]) for r in rows
        }
        marked = {k: v for k, v in codes.items() if v[0] == "5" and "3" in v[1].split()}
        assert sorted({d for d, _ in marked}) == [starts[8], starts[9]]
        assert len(marked) == 2 * 5  # every metric of the two readings
        assert codes[(starts[8], "88502")] == ("5", "3 CD") and codes[(starts[9], "62201")] == ("5", "3")
        assert codes[(starts[2], "88502")] == ("1", "CD")
    elif fmt == "aqcsv":
        starts = {seq: _window_start(seq).astimezone(tz).strftime("%Y%m%dT%H%M%z") for seq in (2, 8, 9)}
        codes = {(r["datetime"], r["parameter"]): (r["qc"], r["qualifiers"]) for r in rows}
        marked = {k for k, v in codes.items() if v[1].split().count("3")}
        assert sorted({d for d, _ in marked}) == [starts[8], starts[9]] and len(marked) == 2 * 5
        assert {codes[k] for k in marked} == {("7", "3")}
        assert codes[(starts[2], "88502")] == ("0", "")
    else:
        ends = {r["date_utc"] for r in rows}
        for seq in data.MARKED_SEQS:
            assert (data.T0 + timedelta(minutes=seq)).strftime("%Y-%m-%dT%H:%M:%S.000Z") not in ends
        assert "2026-11-01T08:02:00.000Z" in ends  # seq 2, unflagged and unmarked, is published


def test_the_flag_table_in_the_docs_is_the_one_the_code_uses() -> None:
    """Every flag's row, and the row of a maintenance visit's mark (first cell `maintenance`)."""
    text = (REPO / "docs" / "regulators.md").read_text(encoding="utf-8")
    table: dict[str, tuple[int, int, str]] = {}
    for line in text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] in {f.value for f in Flag} | {"maintenance"}:
            table[cells[0]] = (int(cells[1].split()[0]), int(cells[2].split()[0]), cells[3].split()[0])
    codes = {flag.value: code for flag, code in quality.FLAG_CODES.items()}
    codes["maintenance"] = quality.MAINTENANCE_CODE
    assert table == {
        name: (code.validity, quality.AQCSV_QC[code.validity], code.qualifier) for name, code in codes.items()
    }


@pytest.mark.parametrize(
    ("fmt", "extra", "message"),
    [
        ("aqdx", ["--metrics", "turbidity"], "AQDx 3.0 (tabular CSV) has no code for turbidity"),
        ("aqcsv", ["--node", "river-down"], "no aqs_site for site 'tsagaan' node river-down"),
        ("openaq", ["--node", "river-down"], "no [[community_maps]] consent to OpenAQ"),
        ("aqcsv", ["--average", "1h"], "--average is not available with --format aqcsv"),
        ("aqdx", ["--node", "river-down"], "report.nodes has no lat/lon for site 'tsagaan' node river-down"),
    ],
)
def test_what_a_format_cannot_say_exits_2_naming_the_key(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, extra: list[str], message: str
) -> None:
    out = tmp_path / "x.csv"
    assert _export(site, out, fmt, *extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_aqdx_without_a_steward_name_names_the_file_and_key(
    influx: Influx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data.store(influx)
    config = tmp_path / "gateway.toml"
    config.write_text(f'[influxdb]\nurl = "{influx.url}"\napi = "v1"\ndatabase = "{influx.db}"\n')
    assert _export(config, tmp_path / "x.csv", "aqdx") == 2
    assert f"{config}: exports.data_steward_name is not set" in capsys.readouterr().err


def test_openaq_without_a_country_names_the_key(
    influx: Influx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data.store(influx)
    config = data.config(tmp_path / "gateway.toml", influx)
    config.write_text(config.read_text().replace('country = "MN"\n', ""))
    assert _export(config, tmp_path / "x.csv", "openaq") == 2
    assert f"{config}: exports.country is not set; OpenAQ upload CSV requires it" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", sorted(PUBLISHED))
def test_the_side_file_lists_the_field_records_as_the_raw_exports_does(
    site: Path, tmp_path: Path, fmt: str
) -> None:
    """A file in an exchange format has no column for a visit; its side file lists the visits and
    the accepted observations of the period, as `--format csv`'s does (docs/protocol.md, "Exports")."""
    visit = ["--node", "haul-road", "--kind", "cleaned", "--at", "2026-11-01T08:05Z", "--by", "Bold"]
    assert main(["maintenance", "add", "--config", str(site), *visit]) == 0
    out = tmp_path / f"{fmt}.csv"
    assert _export(site, out, fmt) == 0
    side = json.loads((tmp_path / f"{fmt}.csv.columns.json").read_text())
    raw = tmp_path / "raw.csv"
    assert _export(site, raw, "csv") == 0
    beside = json.loads((tmp_path / "raw.csv.columns.json").read_text())
    assert [(v["node"], v["kind"], v["at"], v["by"]) for v in side["maintenance_visits"]] == [
        ("haul-road", "cleaned", "2026-11-01T08:05:00Z", "Bold"),
        ("haul-road", "cleaned", "2026-11-01T08:10:00Z", "Bold"),  # exchange_data.CLEANING
    ]
    assert side["maintenance_visits"] == beside["maintenance_visits"]
    assert side["observations"] == beside["observations"] == []
