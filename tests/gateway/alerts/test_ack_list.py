"""`minewatch-gateway ack --list` writes each value in its own unit: a sensor fault's value and peak
are how long it has lasted (minutes), not its metric's µg/m³."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.alerts.machine import MachineState
from gateway.alerts.store import AlertStore
from gateway.cli import main

ALERT = "tsagaan.haul-road.pm-fault.20261122T101500Z"


def test_a_sensor_faults_value_is_listed_in_minutes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        '[[alerts.rules]]\nname = "pm-fault"\ntype = "sensor_fault"\nmetric = "pm2_5"\nafter = "30m"\n'
    )
    store = AlertStore(tmp_path / "data" / "alerts.sqlite")
    machine = MachineState(
        "pm-fault", "tsagaan", "haul-road", alert_id=ALERT, started_ms=1795342500000, value=45.0, peak=45.0
    )
    doc = {"id": ALERT, "state": "raised", "severity": "warning", "message": "the PM2.5 sensor is faulty"}
    store.commit([machine], [(doc, [])])
    store.close()
    assert main(["ack", "--list", "--config", str(cfg)]) == 0
    listing = capsys.readouterr().out
    assert f"{ALERT}  WARNING  since 2026-11-22 10:15 UTC  value 45 min  peak 45 min" in listing
    assert "    the PM2.5 sensor is faulty\n" in listing
