"""A PMS5003 and a Modbus turbidity probe on ptys, through the real node process, the real broker and
the gateway into the real influxd; the PMS's port vanishes and comes back on the way."""

from __future__ import annotations

import signal
from pathlib import Path

from gateway.devservices import Service
from tests.fakes.frames import load
from tests.fakes.modbus import ModbusSlave
from tests.fakes.pty import PtySensor
from tests.helpers import Influx, Listener, gateway_toml, node_toml, spawn, wait_for, wait_gateway_ready


def test_serial_sensors_reach_influxdb_and_a_pulled_port_recovers(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    pms, probe = PtySensor(workdir, "ttyAMA0"), PtySensor(workdir, "ttyUSB0")
    slave = ModbusSlave(probe, 1, {0: 57, 1: 112})  # 5.7 NTU, 11.2 °C (DFRobot SEN0710 map)
    listener = Listener(mosquitto.port, f"{prefix}/v1/+/+/reading")
    gw_cfg = gateway_toml(
        workdir / "gateway.toml", mqtt_port=mosquitto.port, influx_url=influx.url, db=influx.db, prefix=prefix
    )
    node_cfg = node_toml(
        workdir / "node.toml",
        site="tsagaan",
        node="river-down",
        port=mosquitto.port,
        prefix=prefix,
        sensors=(
            f'[[sensors]]\ntype = "pms5003"\nport = "{pms.path}"\nwarm_up_s = 2\nframe_timeout_s = 1\n'
            f'[[sensors]]\ntype = "turbidity-modbus"\nport = "{probe.path}"\npreset = "dfrobot-sen0710"\n'
            "timeout_s = 0.3\n"
        ),
    )
    gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], workdir / "gateway.log")
    wait_gateway_ready(mosquitto.port, prefix, influx)  # readings sent before it subscribes are lost
    node = spawn(["node.cli", "run", "--config", str(node_cfg)], workdir / "node.log")

    def readings() -> list[dict]:
        return [p for p in listener.payloads() if p.get("site") == "tsagaan"]  # not the gateway probe

    try:
        with pms.streaming(load("pms5003"), period_s=0.2):
            wait_for(
                lambda: any("warming_up" not in r["flags"] and "pm2_5" in r["metrics"] for r in readings()),
                40,
                "a reading after the warm-up",
            )
            pms.unplug()
            wait_for(
                lambda: any("sensor_fault" in r["flags"] for r in readings()), 30, "a sensor_fault reading"
            )
            faulted = len(readings())
            pms.plug()
            wait_for(
                lambda: any(
                    r["metrics"].get("pm2_5", {}).get("value") is not None for r in readings()[faulted:]
                ),
                40,
                "PM values again after the port came back",
            )
        assert node.poll() is None, "the node kept running"
    finally:
        node.send_signal(signal.SIGTERM)
        assert node.wait(15) == 0
        slave.stop()
        pms.close()
        probe.close()
    published = readings()
    try:
        mine = """SELECT * FROM "reading" WHERE "site" = 'tsagaan'"""
        wait_for(lambda: len(influx.rows(mine)) >= len(published), 30, "all readings in InfluxDB")
        rows = influx.rows(mine)
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(15) == 0
        listener.close()
    assert len(rows) == len(published)
    by_seq = {r["seq"]: r for r in rows}
    warm = [p for p in published if "warming_up" in p["flags"]]
    assert warm, "the first readings are flagged warming_up"
    good = next(p for p in published if "pm2_5" in p["metrics"] and not p["flags"])
    row = by_seq[good["seq"]]
    assert row["pm2_5_raw"] == good["metrics"]["pm2_5"]["raw"] and 5.0 <= row["pm2_5_raw"] <= 8.0
    assert row["pm2_5"] == row["pm2_5_raw"]  # uncalibrated: value = raw (CF=1)
    assert row["pm2_5_atm_raw"] > 0 and row["pc0_3_raw"] >= 138 and row["pc10_n"] >= 1
    assert row["turbidity"] == 5.7 and row["water_temp"] == 11.2
    fault = next(p for p in published if "sensor_fault" in p["flags"])
    assert fault["metrics"]["pm2_5"]["value"] is None and fault["metrics"]["pm2_5"]["n"] == 0
    assert "pm2_5" not in {k for k, v in by_seq[fault["seq"]].items() if v is not None}
    assert by_seq[fault["seq"]]["turbidity"] == 5.7  # the probe kept going
    log = (workdir / "node.log").read_text()
    assert log.count("WARNING") >= 1 and "recovered" in log
