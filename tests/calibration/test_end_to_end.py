"""Calibrated readings from a real node process through the real broker and gateway into the real
influxd: `raw`, `value` and `cal` stored as docs/protocol.md says, `value` equal to the calibration
applied to `raw`, and `minewatch-calibrate apply` reproducing the stored values exactly."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.devservices import Service
from tests.helpers import ROOT, Influx, gateway_toml, node_toml, spawn, wait_for, wait_gateway_ready

PM10_CAL = """
id = "replay-r1@2026-11-01"
metric = "pm10"
model = "linear"
valid_from = 2026-11-01T00:00:00Z
valid_to = 2100-01-01T00:00:00Z
[sensor]
type = "replay-csv"
label = "r1"
[coefficients]
slope = 0.8
intercept = -1.5
[provenance]
method = "co-location, ordinary least squares (linear)"
"""


def recording(path: Path) -> Path:
    rows = ["timestamp,pm2_5,pm10,rh"]
    for minute in range(6):
        for second in range(0, 60, 15):
            pm = 8 + 3 * minute + second / 15
            # the fourth window has no humidity reading at all: the preset's 50 % RH is assumed
            rh = "" if minute == 3 else f"{40 + 5 * minute + second / 30:.1f}"
            rows.append(f"2026-11-20T10:{minute:02d}:{second:02d}Z,{pm:.1f},{1.5 * pm:.1f},{rh}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_calibrated_readings_are_stored_with_raw_and_cal_and_can_be_recomputed(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    recording(workdir / "rec.csv")
    (workdir / "cal").mkdir()
    (workdir / "cal" / "pm10.toml").write_text(PM10_CAL)
    cfg = node_toml(
        workdir / "node.toml",
        site="tsagaan",
        node="haul-road",
        port=mosquitto.port,
        prefix=prefix,
        interval_s=60,
        sensors=f'[[sensors]]\ntype = "replay-csv"\npath = "{workdir / "rec.csv"}"\nsample_interval_s = 0.1\n'
        'calibration = ["epa-us-2021", "cal/pm10.toml"]\n',  # the calibration path: relative to node.toml
    )
    gw_cfg = gateway_toml(
        workdir / "gateway.toml", mqtt_port=mosquitto.port, influx_url=influx.url, db=influx.db, prefix=prefix
    )
    gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], workdir / "gateway.log")

    def stored() -> list[dict[str, Any]]:
        return influx.rows('SELECT * FROM "reading" WHERE "node" = \'haul-road\'')

    node = None
    try:
        # the replay publishes at once: the gateway must be subscribed before the node starts
        wait_gateway_ready(mosquitto.port, prefix, influx)
        node = spawn(["node.cli", "run", "--config", str(cfg)], workdir / "node.log")
        # six recorded minutes, all in the past: each window closes as soon as it is read
        wait_for(lambda: len(stored()) >= 6, 60, "six calibrated readings in InfluxDB")
        node.send_signal(signal.SIGTERM)
        assert node.wait(20) == 0
        rows = stored()
    finally:
        if node is not None and node.poll() is None:
            node.kill()
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(15) == 0
    assert len(rows) == 6
    for row in rows:
        assert row["pm2_5_cal"] == "epa-us-2021"
        assert row["pm10_cal"] == "replay-r1@2026-11-01"
        assert row.get("rh_cal") is None  # no calibration for rh: uncalibrated, no cal field
        rh = row.get("rh_raw")
        # the published formula, by hand, on what was stored as raw
        expected = 0.524 * row["pm2_5_raw"] - 0.0862 * (50.0 if rh is None else rh) + 5.75
        assert row["pm2_5"] == round(expected, 4)
        assert row["pm10"] == round(0.8 * row["pm10_raw"] - 1.5, 4)
        assert ("cal_fallback" in row["flags"].split(",")) == (rh is None)
    assert sum(1 for r in rows if r.get("rh_raw") is None) == 1

    # a regulator's check: export raw and cal, recompute with the published file, compare exactly
    export = workdir / "export.csv"
    with export.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "pm2_5_raw", "rh_raw", "pm2_5_cal", "pm2_5"])
        for row in rows:
            writer.writerow(
                [
                    row["time"],
                    repr(row["pm2_5_raw"]),
                    _cell(row.get("rh_raw")),
                    row["pm2_5_cal"],
                    repr(row["pm2_5"]),
                ]
            )
    recomputed = workdir / "recomputed.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "calibration.cli",
            "apply",
            "--cal",
            "epa-us-2021",
            "--input",
            str(export),
            "--out",
            str(recomputed),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = list(csv.DictReader(recomputed.open()))
    assert len(out) == 6
    for line in out:
        assert float(line["value"]) == float(line["pm2_5"])  # exactly, not approximately
        assert line["cal"] == line["pm2_5_cal"]


def _cell(value: object) -> str:
    return "" if value is None else repr(value)
