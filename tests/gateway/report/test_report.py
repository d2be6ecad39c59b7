"""`minewatch-gateway report` against a real influxd: the numbers in the HTML equal independent
InfluxQL queries on the same data, plots are real PNGs, and empty or alert-free periods still give a
sensible report."""

from __future__ import annotations

import base64
import html
import io
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from pypdf import PdfReader

from contract.signing import key_id, public_b64
from gateway import devservices
from gateway.cli import main
from gateway.config import load as load_config
from gateway.report import drawing, plots, render
from gateway.report.model import ReportData
from gateway.stores import open_reader
from gateway.trust.registry import KeyRecord, save
from tests import regdata
from tests.fakes.clock import FakeClock
from tests.helpers import Influx

START, END = "2026-11-01", "2026-11-04"


class _Tables(HTMLParser):
    """Cell texts of every <table id=...>, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or "?"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(text: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(text)
    return {k: rows[1:] for k, rows in parser.tables.items()}  # without the header row


@pytest.fixture(scope="module")
def site_db(influxd: devservices.Service) -> Iterator[Influx]:
    """One site with readings, node statuses and alerts, shared read-only by this module's tests."""
    db = Influx(f"http://127.0.0.1:{influxd.port}", f"r_{uuid.uuid4().hex[:12]}")
    db.create()
    regdata.dust_site(db, days=3)
    regdata.statuses(db)
    regdata.alerts(db)
    regdata.offline_alerts(db)
    yield db
    db.drop()


def _report(db: Influx, tmp_path: Path, *extra: str, start: str = START, end: str = END) -> str:
    config = regdata.gateway_config(tmp_path / "gateway.toml", db)
    out = tmp_path / "report.html"
    args = ["--site", regdata.SITE, "--start", start, "--end", end, "--out", str(out)]
    assert main(["report", "--config", str(config), *args, *extra]) == 0
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def full_report(site_db: Influx, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _report(site_db, tmp_path_factory.mktemp("report"))


def _day_bounds(i: int) -> str:
    lo = regdata.DAY0 + timedelta(days=i)
    hi = lo + timedelta(days=1)
    return f"time > '{lo:%Y-%m-%dT%H:%M:%SZ}' AND time <= '{hi:%Y-%m-%dT%H:%M:%SZ}'"


def test_daily_means_and_days_over_equal_independent_queries(full_report: str, site_db: Influx) -> None:
    t = tables(full_report)
    for metric, label, who, mns in (("pm2_5", "PM2.5", 15.0, 50.0), ("pm10", "PM10", 45.0, 100.0)):
        rows = t[f"daily-haul-road-{metric}"]
        assert len(rows) == 3
        over_who = 0
        for i, row in enumerate(rows):
            db = site_db.rows(
                f"SELECT mean({metric}) AS m, count({metric}) AS c, max({metric}) AS x FROM reading "
                f"WHERE node = 'haul-road' AND {_day_bounds(i)}"
            )[0]
            assert row[0] == f"{regdata.DAY0 + timedelta(days=i):%Y-%m-%d}"
            assert row[1] == f"{db['m']:.2f}"
            assert row[2] == str(db["c"])
            assert row[4] == f"{db['x']:.1f}"  # a reading: the metric's decimals, as the alerts write it
            over_who += db["m"] > who and db["c"] >= 0.75 * 1440
            assert ("MNS 4585:2016" in row[5]) == (db["m"] > mns)
        summary = next(r for r in t["summary-table"] if r[:2] == ["haul-road", f"{label} (µg/m³)"])
        assert summary[4] == str(over_who)  # days over WHO 2021
    peak = site_db.rows("SELECT max(pm2_5) FROM reading WHERE node = 'haul-road'")[0]["max"]
    summary = next(r for r in t["summary-table"] if r[:2] == ["haul-road", "PM2.5 (µg/m³)"])
    assert summary[-1].startswith(f"{peak:.1f} at 2026-11-02 06:")


def test_completeness_flags_and_gaps_equal_independent_queries(full_report: str, site_db: Influx) -> None:
    t = tables(full_report)
    rows = t["completeness-haul-road"]
    for i, row in enumerate(rows):
        count = site_db.rows(f"SELECT count(seq) FROM reading WHERE node = 'haul-road' AND {_day_bounds(i)}")
        assert row[1] == str(count[0]["count"])
        assert row[2] == "1440"
    assert rows[2][3] == "75.0 %"  # six hours offline on day 3
    flags = {r[0]: r[1] for r in t["flags-haul-road"]}
    for flag, shown in flags.items():
        count = site_db.rows(f"SELECT count(seq) FROM reading WHERE node = 'haul-road' AND flags =~ /{flag}/")
        assert shown == str(count[0]["count"])
    assert set(flags) == {"warming_up", "high_humidity", "sensor_fault"}
    assert t["gaps-haul-road"] == [["2026-11-03 01:59 UTC", "2026-11-03 08:00 UTC", "6.0 h", "0", "yes"]]
    assert t["offline-haul-road"] == [["2026-11-03 02:00 UTC", "2026-11-03 08:00 UTC"]]
    # river-down stopped after day 1: the rest of the period is one gap, and its days are empty
    assert [r[1] for r in t["completeness-river-down"]] == ["288", "0", "0"]
    assert t["gaps-river-down"][0][:2] == ["2026-11-02 00:00 UTC", "2026-11-04 00:00 UTC"]


def test_exceedances_and_provenance(full_report: str, site_db: Influx) -> None:
    t = tables(full_report)
    ex = t["exceedance-table"]
    # the alert's stored peak, not the value at the raise; End is when the exceedance ended (the
    # alert's `ended`), the all-clear beside it; the offline alert is not an exceedance
    assert [(r[1], r[4], r[5], r[6], r[7], r[8], r[11]) for r in ex] == [
        (
            "mns-4585-2016-pm2_5-24h (MNS 4585:2016)",
            "50.0 µg/m³ (exceeds when strictly above the limit)",
            "2026-11-01 03:00 UTC",
            "2026-11-01 03:30 UTC",
            "2026-11-01 04:00 UTC",
            "50.03",  # against 50.0: the digits that make it exceed
            "late",
        ),
        (
            "pm25-1h (site rule)",
            "50.0 µg/m³ (exceeds when strictly above the limit)",
            "2026-11-02 07:00 UTC",
            "2026-11-02 10:00 UTC",
            "2026-11-02 11:00 UTC",
            "178.2",  # 178.25 with the metric's decimals, as the alert messages write it
            "live",
        ),
    ]
    highest = site_db.rows(
        "SELECT max(pm2_5) FROM reading WHERE node = 'haul-road' "
        "AND time > '2026-11-02T06:59:59.999Z' AND time <= '2026-11-02T10:00:00Z'"
    )[0]["max"]
    assert ex[1][9] == f"{highest:.1f}"
    assert [r[:2] for r in t["offline-table"]] == [
        ["river-down", "node status"],
        ["haul-road", "node status"],
        ["haul-road", "node-offline"],
    ]
    river, status, rule = t["offline-table"]
    inside = site_db.rows(
        "SELECT count(seq) FROM reading WHERE node = 'river-down' "
        "AND time > '2026-11-01T12:00:00Z' AND time < '2026-11-01T13:00:00Z'"
    )[0]["count"]
    assert river[2:] == ["2026-11-01 12:00 UTC", "2026-11-01 13:00 UTC", "1.0 h", str(inside), "yes"]
    assert inside == 11  # every 5 minutes, strictly between going offline and coming back
    assert status[2:] == ["2026-11-03 02:00 UTC", "2026-11-03 08:00 UTC", "6.0 h", "0", "no"]
    assert rule[2:5] == ["2026-11-03 02:15 UTC", "2026-11-03 08:00 UTC", "5.8 h"]
    cals = {(r[0], r[1], r[2]): r[5] for r in t["calibrations"]}
    for (node, label, cal), shown in cals.items():
        metric = {"PM2.5": "pm2_5", "PM10": "pm10"}[label]
        count = site_db.rows(
            f"SELECT count({metric}_cal) FROM reading WHERE node = '{node}' AND {metric}_cal = '{cal}'"
        )
        assert shown == str(count[0]["count"])
    assert set(cals) == {
        ("haul-road", "PM2.5", "pms5003-a12@2026-10-01"),
        ("haul-road", "PM2.5", "pms5003-a12@2026-11-02"),
    }
    assert [r[:2] for r in t["firmware"]] == [
        ["haul-road", "0.1.0"],
        ["haul-road", "0.2.0"],
        ["river-down", "0.2.0"],
    ]
    signed = {r[0]: (r[1], r[2]) for r in t["signatures"]}
    db_signed = site_db.rows("SELECT count(seq) FROM reading WHERE node = 'haul-road' AND signed = true")[0]
    db_total = site_db.rows("SELECT count(seq) FROM reading WHERE node = 'haul-road'")[0]
    assert signed["haul-road"] == (str(db_total["count"]), str(db_signed["count"]))
    assert signed["river-down"][1] == "0"


def test_queries_shown_run_and_give_the_same_numbers(full_report: str, site_db: Influx) -> None:
    # the nodes' tables share their queries, printed once (not once a node) and linked from each
    node = re.search(r'<section class="node" id="node-haul-road">.*?</section>', full_report, re.S)
    assert node is not None and 'href="#node-queries"' in node.group(0)
    pre = re.search(r'id="query-completeness">.*?<pre>(.*?)</pre>', full_report, re.S)
    assert pre is not None and full_report.count(pre.group(1)) == 1
    query = html.unescape(pre.group(1)).strip().rstrip(";")
    rows = [r for r in site_db.rows(query) if r["node"] == "haul-road" and r["count"]]
    assert [str(r["count"]) for r in rows] == [r[1] for r in tables(full_report)["completeness-haul-road"]]


def test_plots_are_valid_pngs(full_report: str) -> None:
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', full_report)
    assert len(images) == 3  # pm2_5 and pm10 at haul-road, turbidity at river-down
    for data in images:
        raw = base64.b64decode(data)
        assert raw.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(raw)) as img:
            img.verify()
        with Image.open(io.BytesIO(raw)) as img:
            assert img.size[0] > 500 and img.size[1] > 200


def test_a_period_without_exceedances_says_so(site_db: Influx, tmp_path: Path) -> None:
    text = _report(site_db, tmp_path, "--standard", "mns-4585-2016", start="2026-11-03", end="2026-11-04")
    assert "No exceedance was raised for site tsagaan in this period." in text
    t = tables(text)
    assert "exceedance-table" not in t  # the day's offline alert is listed as an offline period
    assert [r[1] for r in t["offline-table"]] == ["node status", "node-offline"]
    assert [r[0] for r in t["standards"]] == ["MNS 4585:2016"]
    assert len(t["daily-haul-road-pm2_5"]) == 1


def test_an_empty_period_gives_a_sensible_report(site_db: Influx, tmp_path: Path) -> None:
    text = _report(site_db, tmp_path, start="2025-01-01", end="2025-02-01")
    assert "No readings were stored for site tsagaan in this period." in text
    assert "data:image/png" not in text


def test_an_empty_database_and_pdf(influx: Influx, tmp_path: Path) -> None:
    text = _report(influx, tmp_path, "--pdf")
    assert "No readings were stored" in text
    assert "holds no alert records" in text
    assert "no node_status measurement" in text
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")


def test_pdf_of_a_full_report(site_db: Influx, tmp_path: Path) -> None:
    _report(site_db, tmp_path, "--pdf", str(tmp_path / "out.pdf"), start="2026-11-02", end="2026-11-03")
    pdf = PdfReader(tmp_path / "out.pdf")
    assert len(pdf.pages) >= 3
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "Air and water monitoring report: site tsagaan" in text
    assert "178.2" in text  # the exceedance table's peak
    pages = [page.extract_text() for page in pdf.pages]
    # every page numbered, across the parts the PDF is laid out in, and the whole counted
    assert f"This report has {len(pages)} pages." in pages[0]
    for i, page in enumerate(pages, 1):
        assert re.search(rf"Page {i}\b", page), (i, page[-200:])
    # the contents list gives each section's page: Provenance is on the page it says
    listed = re.search(r"Provenance\W*(\d+)", pages[0])
    assert listed is not None
    assert "Calibrations in force" in pages[int(listed.group(1)) - 1]
    # and links there, though the contents and the sections were laid out apart
    index = {p.indirect_reference.idnum: i for i, p in enumerate(pdf.pages) if p.indirect_reference}
    links = [a.get_object() for a in pdf.pages[0].get("/Annots", [])]
    assert int(listed.group(1)) - 1 in {
        index[a["/Dest"][0].idnum] for a in links if isinstance(a.get("/Dest"), list)
    }
    assert "/work/" not in text and "docs/" not in text and "INFO" not in text
    assert (
        len({img.data for page in pdf.pages for img in page.images}) == 2
    )  # pm2_5, pm10 (river-down has no data that day)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "2026-11-04", "--end", "2026-11-01"], "must be after --start"),
        (["--start", "2026-11-01", "--end", "2026-11-04", "--metrics", "dust"], "unknown metric 'dust'"),
    ],
)
def test_bad_arguments_exit_2(
    influx: Influx, tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = regdata.gateway_config(tmp_path / "gateway.toml", influx)
    args = ["report", "--config", str(config), "--site", "tsagaan", "--out", str(tmp_path / "r.html")]
    assert main([*args, *extra]) == 2
    assert message in capsys.readouterr().err


def test_unknown_standard_in_config_exits_2(
    influx: Influx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = regdata.gateway_config(tmp_path / "gateway.toml", influx)
    config.write_text(config.read_text() + '[report]\nstandards = ["who-2005"]\n')
    args = ["--site", "tsagaan", "--start", START, "--end", END, "--out", str(tmp_path / "r.html")]
    assert main(["report", "--config", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert "gateway.toml: report.standards: " in err and "who-2005" in err


def test_one_node_only(site_db: Influx, tmp_path: Path) -> None:
    text = _report(site_db, tmp_path, "--node", "river-down", "--standard", "who-2021")
    t = tables(text)
    assert {k for k in t if k.startswith(("completeness-", "daily-"))} == {
        "completeness-river-down",
        "daily-river-down-turbidity",
    }
    assert "exceedance-table" not in t  # the alerts were at haul-road
    assert "No exceedance was raised" in text
    assert "&#34;node&#34; = &#39;river-down&#39;" in text  # the queries shown are the filtered ones


FITTED = """
id = "pms5003-a12@2026-10-01"
metric = "pm2_5"
model = "linear"
description = "haul-road sensor A12"
valid_from = 2026-10-01T00:00:00Z
valid_to = 2027-04-01T00:00:00Z
[sensor]
type = "pms5003"
serial = "A12"
[coefficients]
slope = 0.5
intercept = 1.0
[provenance]
method = "co-location, least squares"
reference = "BAM-1020 at the Tsagaan station"
colocated_from = 2026-09-01T00:00:00Z
colocated_to = 2026-09-29T00:00:00Z
[provenance.after]
n = 28
r2 = 0.912
rmse = 3.41
"""


def test_calibration_files_given_show_their_fit_and_missing_ones_are_named(
    site_db: Influx, tmp_path: Path
) -> None:
    cals = tmp_path / "cals"
    cals.mkdir()
    (cals / "a12.toml").write_text(FITTED)
    (cals / "broken.toml").write_text("id = \n")
    text = _report(site_db, tmp_path, "--calibrations", str(cals), start="2026-11-01", end="2026-11-03")
    rows = {r[0]: r for r in tables(text)["calibration-files"]}
    fitted = rows["pms5003-a12@2026-10-01"]
    assert fitted[1:3] == ["a12.toml", "co-location, least squares: haul-road sensor A12"]
    assert "BAM-1020" in fitted[3] and "co-located 2026-09-01 to 2026-09-29" in fitted[3]
    assert fitted[4:] == ["from 2026-10-01 to 2027-04-01", "28", "0.912", "3.41"]
    assert "ask the network operator" in rows["pms5003-a12@2026-11-02"][1]
    assert "broken.toml: not valid TOML" in text


def _collect(db: Influx, tmp_path: Path, start: datetime, end: datetime, now: datetime) -> ReportData:
    from gateway.report import data

    cfg = load_config(regdata.gateway_config(tmp_path / "gateway.toml", db))
    reader = open_reader(cfg.influxdb)
    try:
        return data.collect(
            reader, site=regdata.SITE, start=start, end=end, generated=now, standards=["who-2021"]
        )
    finally:
        reader.close()


def test_a_period_running_into_the_future_covers_what_has_happened(site_db: Influx, tmp_path: Path) -> None:
    now = FakeClock(regdata.DAY0 + timedelta(days=2, hours=12))()
    report = _collect(site_db, tmp_path, regdata.DAY0, regdata.DAY0 + timedelta(days=4), now)
    assert report.end == now and report.requested_end == regdata.DAY0 + timedelta(days=4)
    river = next(n for n in report.nodes if n.node == "river-down")
    assert [d.start.day for d in river.days] == [1, 2, 3]  # not the 4th, which had not begun
    assert river.days[-1].expected == 144  # half a day of 5-minute readings, not a whole one
    assert river.gaps[-1].end == now  # the gap runs to now, not to midnight or the period's end
    text = render.html(report)
    assert "which had not come yet: the report covers what had happened, up to 2026-11-03 12:00 UTC" in text


def test_a_day_not_judged_is_not_drawn_as_a_mean(site_db: Influx, tmp_path: Path) -> None:
    start = regdata.DAY0 + timedelta(days=1)
    now = start + timedelta(days=30)
    part = _collect(site_db, tmp_path, start + timedelta(hours=22), start + timedelta(days=1), now)
    whole = _collect(site_db, tmp_path, start, start + timedelta(days=1), now)
    for report, judged in ((part, False), (whole, True)):
        section = next(m for m in report.metrics if m.node == "haul-road" and m.metric.value == "pm2_5")
        (day,) = section.daily
        assert day.is_complete is judged
        plot = plots.layout(section, report.start, report.end)
        labels = {m.label: m for m in plot.marks}
        if judged:
            (level,) = labels["24-hour mean (judged days)"].levels
            assert level == (day.start.timestamp(), (day.start + timedelta(days=1)).timestamp(), day.mean)
            assert "day not judged (insufficient data)" not in labels
        else:
            assert "24-hour mean (judged days)" not in labels  # no line claims a mean that is not one
            hatched = labels["day not judged (insufficient data)"]
            assert hatched.kind == "insufficient" and hatched.spans == [(plot.start_s, plot.end_s)]
        assert Image.open(io.BytesIO(drawing.png(plot))).size == (drawing.WIDTH, drawing.HEIGHT)


def test_site_metadata_keys_producer_and_flag_shares(site_db: Influx, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    keys_dir = tmp_path / "keys"
    created = regdata.DAY0 - timedelta(days=30)
    save(
        keys_dir,
        KeyRecord(
            kid=key_id(key), site=regdata.SITE, node="haul-road", public_key=public_b64(key), created=created
        ),
    )
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'gateway_id = "ger-1"\n[influxdb]\nurl = "{site_db.url}"\napi = "v1"\ndatabase = "{site_db.db}"\n'
        f'[trust]\nkeys_dir = "{keys_dir}"\n'
        '[report]\noperator = "Tsagaan community monitoring"\n'
        '[[report.nodes]]\nsite = "tsagaan"\nnode = "haul-road"\nlat = 43.1105\nlon = 106.8503\n'
        'installed = "2026-10-01, on the school roof, 4 m"\nmaintenance = ["2026-11-02: inlet cleaned"]\n'
        '[[report.nodes.sensors]]\nmodel = "Plantower PMS5003"\nserial = "A12-0042"\n'
        'metrics = ["pm2_5", "pm10"]\n'
    )
    out = tmp_path / "report.html"
    args = ["--site", regdata.SITE, "--start", START, "--end", END, "--out", str(out)]
    assert main(["report", "--config", str(config), *args]) == 0
    text = out.read_text(encoding="utf-8")
    t = tables(text)
    assert t["node-info"] == [
        [
            "haul-road",
            "43.11050, 106.85030",
            "Plantower PMS5003 (A12-0042): PM2.5, PM10",
            "2026-10-01, on the school roof, 4 m",
            "2026-11-02: inlet cleaned",
            "0.1.0 (2026-11-01), 0.2.0 (2026-11-03)",
        ]
    ]
    assert t["keys"] == [["haul-road", key_id(key), "active", f"{created:%Y-%m-%d %H:%M} UTC", "—"]]
    assert "by Tsagaan community monitoring, with minewatch" in text and "on gateway ger-1." in text
    total = site_db.rows("SELECT count(seq) FROM reading")[0]["count"]
    shares = {r[0]: r[1:] for r in t["flag-shares"]}
    warming = site_db.rows("SELECT count(seq) FROM reading WHERE flags =~ /warming_up/")[0]["count"]
    assert shares["warming_up"] == [str(warming), f"{100 * warming / total:.2f} %"]
    assert shares["clock_unsynced"] == ["0", "0.00 %"]  # always shown, even when none is flagged
    assert "docs/" not in text and "/tmp/" not in text  # no repository or file paths in a report
