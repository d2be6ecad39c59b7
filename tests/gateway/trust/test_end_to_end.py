"""A provisioned node signing its readings, through a Mosquitto running the generated configuration
(TLS listener, site CA), to the gateway and a real influxd: signed rows that anyone can re-verify
from the database alone; forged, unsigned and replayed messages store nothing; a revocation takes
effect in the running gateway."""

from __future__ import annotations

import csv
import getpass
import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contract.signing import Signer
from contract.wire import ReadingPayload
from gateway.cli import main as gateway_cli
from gateway.devservices import Service, find_binary, free_port
from gateway.timerange import from_ms
from gateway.trust.registry import KeyStatus, load_dir, save
from gateway.validate import parse_reading
from tests.helpers import ROOT, Influx, Listener, publish, spawn, wait_for

TOPIC = "minewatch/v1/tsagaan/haul-road/reading"
PROBE_SEQ = 10**6


def wait_quietly(cond: Callable[[], Any], timeout_s: float) -> Any:
    try:
        return wait_for(cond, timeout_s)
    except AssertionError:
        return None


def test_signed_readings_from_node_to_influxdb_and_back(
    influx: Influx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port, tls_port, web_port = free_port(), free_port(), free_port()
    gw_data = tmp_path / "gw"
    broker_dir = gw_data / "broker"
    gw_cfg = tmp_path / "gateway.toml"
    gw_cfg.write_text(
        f'data_dir = "{gw_data}"\n'
        f'[mqtt]\nport = {port}\nusername = "minewatch-gateway"\nclient_id = "gw-{influx.db}"\n'
        f'password_file = "{broker_dir / "minewatch-gateway.password"}"\n'
        f'[influxdb]\nurl = "{influx.url}"\ndatabase = "{influx.db}"\n[batch]\nmax_delay_s = 0.2\n'
        f"[web]\nport = {web_port}\n"
    )
    assert gateway_cli(
        ["broker-config", "--config", str(gw_cfg), "--port", str(port), "--tls-port", str(tls_port),
         "--tls-bind", "127.0.0.1", "--hostname", "127.0.0.1", "--run-as", getpass.getuser()]
    ) == 0  # fmt: skip
    node_dir = tmp_path / "haul-road"
    assert gateway_cli(
        ["provision", "--config", str(gw_cfg), "--site", "tsagaan", "--node", "haul-road",
         "--out", str(node_dir), "--mqtt-host", "127.0.0.1", "--mqtt-port", str(tls_port)]
    ) == 0  # fmt: skip
    node_cfg = node_dir / "node.toml"
    text = node_cfg.read_text().replace("interval_s = 60", "interval_s = 1")
    text = text.replace("/var/lib/minewatch/node/outbox.sqlite", str(tmp_path / "outbox.sqlite"))
    node_cfg.write_text(
        text.replace('type = "simulated-pm"', 'type = "simulated-pm"\nsample_interval_s = 0.25')
    )
    assert "tls = true" in text
    node_password = (node_dir / "mqtt.password").read_text().strip()
    gw_password = (broker_dir / "minewatch-gateway.password").read_text().strip()
    kid = Signer.from_file(node_dir / "node.key").kid

    broker = Service(
        "mosquitto",
        [find_binary("mosquitto"), "-c", str(broker_dir / "mosquitto.conf")],
        port,
        tmp_path,
        "tcp",
    )
    broker.start()
    listener = Listener(port, "minewatch/v1/+/+/reading", "minewatch-gateway", gw_password)
    gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], tmp_path / "gateway.log")
    log = tmp_path / "gateway.log"
    # Its session is new: what the node sends before the gateway subscribes would not be queued for
    # it. A signed probe from the node's account, stored, shows the gateway is listening.
    signer = Signer.from_file(node_dir / "node.key")
    probe = signer.sign(
        ReadingPayload.model_validate(
            {"schema": 1, "site": "tsagaan", "node": "haul-road", "seq": PROBE_SEQ,
             "ts": datetime(2026, 1, 1, tzinfo=UTC), "period_s": 1,
             "metrics": {"rh": {"value": 50.0, "n": 1}}, "flags": []}
        )
    )  # fmt: skip

    def probe_stored() -> bool:
        publish(port, TOPIC, probe.to_wire(), username="tsagaan/haul-road", password=node_password)
        return bool(wait_quietly(lambda: influx.count() > 0, 2.0))

    wait_for(probe_stored, 60, "the gateway storing")
    node = spawn(["node.cli", "run", "--config", str(node_cfg)], tmp_path / "node.log")
    try:
        # four of the node's own: the probe is published again every 2 s until the gateway stores it,
        # so on a loaded machine the listener may hold five copies of it before the node has even
        # set up its SIGTERM handler (it then dies of the signal, status -15)
        wait_for(
            lambda: len({p["seq"] for p in listener.payloads()} - {PROBE_SEQ}) >= 4,
            40,
            "four signed readings published",
        )
        node.send_signal(signal.SIGTERM)
        assert node.wait(15) == 0
        published = list({p["seq"]: p for p in listener.payloads()}.values())  # the probe may repeat
        assert all(p["kid"] == kid and len(p["sig"]) == 88 for p in published)
        wait_for(lambda: influx.count() >= len(published), 30, "the readings in InfluxDB")

        rows = influx.rows('SELECT * FROM "reading"')
        assert len(rows) == len(published)
        assert all(r["signed"] is True and r["kid"] == kid and r["period_s"] == 1 for r in rows)
        assert {r["sig"] for r in rows} == {p["sig"] for p in published}

        # forged, unsigned, and replayed: none of them adds or changes a row
        # (a reading of the node's current run: the probe, seq 10**6 of an older time, is one the
        # dedup window no longer holds once the node started at seq 1, and its replay would be
        # written again with a later `received`: docs/trust.md, "Revoking a node")
        first = next(p for p in published if p["seq"] != PROBE_SEQ)
        original = json.dumps(first, separators=(",", ":"), ensure_ascii=False).encode()
        forged = dict(published[-1], seq=published[-1]["seq"] + 1000)
        unsigned = {k: v for k, v in forged.items() if k not in ("sig", "kid")}
        for payload in (json.dumps(forged).encode(), json.dumps(unsigned).encode(), original):
            publish(port, TOPIC, payload, username="tsagaan/haul-road", password=node_password)
        wait_for(lambda: "bad_signature" in log.read_text() and "unsigned" in log.read_text(), 20, "refusals")
        assert influx.rows('SELECT * FROM "reading"') == rows

        # a third party re-verifies from the database alone, and notices one changed value in an export
        keys = gw_data / "keys"
        assert (
            gateway_cli(["verify", "--keys", str(keys), "--influx-url", influx.url, "--database", influx.db])
            == 0
        )
        # a third party with nothing but the dashboard: its CSV download and its public keys,
        # checked by the CLI's verifier and by the one-file checker run alone
        dashboard = f"http://127.0.0.1:{web_port}"
        download, keys_json = tmp_path / "download.csv", tmp_path / "keys.json"
        # up to a minute ahead: the node's last, partial reading is stamped with its window's end, a
        # moment after it stopped, and the download's default end is the dashboard's `now`
        until = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with urllib.request.urlopen(
            f"{dashboard}/download/readings.csv?site=tsagaan&end={until}", timeout=30
        ) as resp:
            download.write_bytes(resp.read())
        # every reading of the node's run, none left out by the period (the probe is older than
        # the download's default week); said in full if not, with the gateway's log (the
        # dashboard's own lines are in it)
        with download.open(newline="") as f:
            got = sorted(int(r["seq"]) for r in csv.DictReader(f))
        assert got == sorted(r["seq"] for r in rows if r["seq"] != PROBE_SEQ), (
            until,
            [(from_ms(r["time"]), r["seq"], from_ms(r["received"])) for r in rows],
            download.read_text()[:3000],
            log.read_text()[-3000:],
        )
        with urllib.request.urlopen(f"{dashboard}/api/v1/keys", timeout=30) as resp:
            keys_json.write_bytes(resp.read())
        with urllib.request.urlopen(f"{dashboard}/download", timeout=30) as resp:
            assert 'href="/api/v1/keys"' in resp.read().decode()
        published_keys = json.loads(keys_json.read_text())
        assert [(k["kid"], k["status"], k["valid_until"]) for k in published_keys] == [(kid, "active", None)]
        capsys.readouterr()
        assert gateway_cli(["verify", "--keys", str(keys_json), "--input", str(download)]) == 0
        assert f"{len(rows) - 1} rows: {len(rows) - 1} verified" in capsys.readouterr().out  # not the probe
        alone = subprocess.run(
            [sys.executable, "-I", str(ROOT / "contract" / "verify_offline.py"),
             "--keys", str(keys_json), "--input", str(download)],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert alone.returncode == 0, alone.stdout + alone.stderr
        # the export a regulator gets with the influx shell (docs/trust.md)
        export = tmp_path / "export.csv"
        host, _, influx_port = influx.url.removeprefix("http://").partition(":")
        shell = [find_binary("influx"), "-host", host, "-port", influx_port, "-database", influx.db]
        query = ["-format", "csv", "-precision", "rfc3339", "-execute", 'SELECT * FROM "reading"']
        export.write_bytes(
            subprocess.run([*shell, *query], capture_output=True, check=True, timeout=30).stdout
        )
        assert gateway_cli(["verify", "--keys", str(keys), "--input", str(export)]) == 0
        lines = export.read_text().splitlines(keepends=True)
        lines[2] = lines[2].replace(f",{rows[1]['pm2_5']},", f",{rows[1]['pm2_5'] + 0.1},", 1)
        assert lines[2] != export.read_text().splitlines(keepends=True)[2]
        export.write_text("".join(lines))
        capsys.readouterr()
        assert gateway_cli(["verify", "--keys", str(keys), "--input", str(export)]) == 1
        out = capsys.readouterr().out
        assert (
            f"bad_signature (a value, time or flag was changed after signing, or the row is forged): "
            f"row 2 (tsagaan/haul-road seq {rows[1]['seq']})" in out
        )
        assert f"{len(rows) - 1} verified, 1 bad_signature" in out

        # revoke the key in the registry while the gateway runs: SIGHUP makes it reread the keys
        record = next(iter(load_dir(keys).values()))
        save(keys, record.model_copy(update={"status": KeyStatus.REVOKED, "since": datetime.now(UTC)}))
        gateway.send_signal(signal.SIGHUP)
        late = Signer.from_file(node_dir / "node.key").sign(
            parse_reading(TOPIC, original).model_copy(update={"seq": 9999, "kid": None, "sig": None})
        )
        publish(port, TOPIC, late.to_wire(), username="tsagaan/haul-road", password=node_password)
        wait_for(lambda: "revoked_key" in log.read_text(), 20, "the revoked key refused")
        assert influx.rows('SELECT * FROM "reading"') == rows
        # what the gateway stored before the revocation is still evidence: judged by `received`.
        # A reading is received once its window has closed, except the node's last, partial one:
        # stamped with its window's end (period_s after its start), it is sent when the node stops,
        # up to period_s before that time.
        assert all(r["received"] for r in rows)
        assert all(r["received"] >= r["time"] for r in rows[:-1]), rows
        assert rows[-1]["received"] >= rows[-1]["time"] - rows[-1]["period_s"] * 1000, rows[-1]
        db = ["verify", "--keys", str(keys), "--influx-url", influx.url, "--database", influx.db]
        assert gateway_cli(db) == 0
        # a compromise found to have begun before those readings were stored discredits them
        save(
            keys,
            record.model_copy(update={"status": KeyStatus.REVOKED, "since": from_ms(rows[1]["received"])}),
        )
        capsys.readouterr()
        assert gateway_cli(db) == 1
        before = sum(r["received"] < rows[1]["received"] for r in rows)
        assert f"{len(rows) - before} revoked_key" in capsys.readouterr().out
    finally:
        if node.poll() is None:
            node.kill()
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(15) == 0
        listener.close()
        broker.stop()
