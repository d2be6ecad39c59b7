"""A signed node whose clock steps back (an RTC-less Pi corrected by NTP) sends new readings with the
`ts` of readings it already sent. Through the real Mosquitto, a real gateway process and the real
influxd, none of them replaces another: every `seq` is stored, those sharing a time are flagged
`ts_shared`, and every row still verifies, from the database and from an export."""

from __future__ import annotations

import csv
import signal
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.signing import Signer
from gateway.cli import main as gateway_cli
from gateway.devservices import Service
from gateway.timerange import format_time
from gateway.trust.provision import register
from node.config import load
from node.service import NodeService
from tests.helpers import Influx, Listener, gateway_toml, node_toml, spawn, wait_for, wait_gateway_ready


def test_a_node_whose_clock_steps_back_overwrites_no_reading(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    signer = Signer.generate()
    signer.write(workdir / "node.key")
    gw_cfg = gateway_toml(
        workdir / "gateway.toml", mqtt_port=mosquitto.port, influx_url=influx.url, db=influx.db, prefix=prefix
    )
    keys = workdir / "gateway-data" / "keys"
    register(keys, "s", "clk", signer, now=datetime(2026, 1, 1, tzinfo=UTC))
    sensors = (
        f'[identity]\nkey_file = "{workdir / "node.key"}"\n'
        '[[sensors]]\ntype = "simulated-pm"\nsample_interval_s = 0.25\n'
    )
    toml = node_toml(
        workdir / "node.toml", site="s", node="clk", port=mosquitto.port, prefix=prefix, sensors=sensors
    )
    cfg = load(toml)
    listener = Listener(mosquitto.port, f"{prefix}/v1/s/clk/reading")
    gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], workdir / "gateway.log")

    def run(clock: Callable[[], datetime], readings: int) -> None:
        service = NodeService(cfg, clock=clock, clock_probe=lambda: True)
        taken: list[int] = []
        service.on_reading = lambda seq, r: taken.append(seq)
        thread = threading.Thread(target=service.run)
        thread.start()
        try:
            wait_for(lambda: len(taken) >= readings, 20, f"{readings} readings")
        finally:
            service.stop_event.set()
            thread.join(15)

    try:
        wait_gateway_ready(mosquitto.port, prefix, influx)
        started = datetime.now(UTC)
        run(lambda: datetime.now(UTC), 3)
        back = datetime.now(UTC) - started + timedelta(seconds=0.5)
        run(lambda: datetime.now(UTC) - back, 3)  # NTP set the clock back to before the first run
        wait_for(lambda: len({p["seq"] for p in listener.payloads()}) >= 6, 20, "both runs published")
        sent = {p["seq"]: p for p in listener.payloads()}
        query = 'SELECT * FROM "reading" WHERE "site" = \'s\''
        wait_for(lambda: len(influx.rows(query)) >= len(sent), 30, "every reading in InfluxDB")
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(15) == 0
        listener.close()

    rows = influx.rows(query)
    assert sorted(r["seq"] for r in rows) == sorted(sent), "every reading stored, once"
    by_time: dict[int, list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        by_time[int(row["time"])].append(row)
        assert row["sig"] == sent[row["seq"]]["sig"] and row["signed"] is True
    shared = [group for group in by_time.values() if len(group) > 1]
    assert len(shared) >= 2, "the second run's windows fall on the first run's"
    for group in by_time.values():
        expected = "ts_shared" if len(group) > 1 else None
        assert [r["gateway_flags"] for r in group] == [expected] * len(group)
    # the node flags the later of each (its ts is not after the last it sent); the gateway flags both
    assert all("clock_unsynced" in str(max(g, key=lambda r: int(str(r["seq"])))["flags"]) for g in shared)

    # both readings of a shared time verify: from the database, and from the export a regulator gets
    where = ["--where", "site = 's'"]
    db = ["--influx-url", influx.url, "--database", influx.db]
    assert gateway_cli(["verify", "--keys", str(keys), *db, *where]) == 0
    out = workdir / "export.csv"
    window = ["--start", format_time(started - timedelta(minutes=1)), "--end", format_time(datetime.now(UTC))]
    assert gateway_cli(["export", "--config", str(gw_cfg), "--site", "s", *window, "--out", str(out)]) == 0
    with out.open(newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert sorted(int(r["seq"]) for r in exported) == sorted(sent)
    assert sum(r["gateway_flags"] == "ts_shared" for r in exported) == sum(len(g) for g in shared)
    assert gateway_cli(["verify", "--keys", str(keys), "--input", str(out)]) == 0
