"""The gateway's own health on the broker (retained, `<prefix>/v1/_gateway/<id>/status`), and the two
commands that show it and what was refused: `minewatch-gateway status` and `rejects`. Real broker,
real influxd, the real gateway loop in a thread."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from contract.wire import gateway_status_topic
from gateway.cli import main
from gateway.config import load
from gateway.devservices import Service
from gateway.wiring import build
from tests.helpers import Influx, Listener, gateway_toml, publish, wait_for


def test_status_is_retained_and_the_commands_show_it(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_path = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
    )
    cfg_path.write_text('status_interval_s = 0.5\ngateway_id = "north"\n' + cfg_path.read_text())
    service = build(load(cfg_path))
    thread = threading.Thread(target=service.run)
    thread.start()
    topic = gateway_status_topic(prefix, "north")
    listener = Listener(mosquitto.port, topic)
    try:
        wait_for(lambda: service.subscriber and service.subscriber.connected.is_set(), 20, "gateway up")
        publish(mosquitto.port, f"{prefix}/v1/site-a/node-1/reading", b"\xffnot json")
        publish(mosquitto.port, f"{prefix}/v1/site-a/node-1/reading", b"[1, 2]")

        def status_with_rejects() -> dict[str, object] | None:
            for t, payload, _ in reversed(listener.messages):
                doc = json.loads(payload)
                if t == topic and doc.get("rejects"):
                    return doc  # type: ignore[no-any-return]
            return None

        doc = wait_for(status_with_rejects, 20, "a status with the rejects")
        assert doc["state"] == "up" and doc["gateway_id"] == "north"
        assert doc["rejects"] == {"not_utf8": 1, "not_object": 1}
        assert doc["spool"]["depth"] == 0 and doc["spool"]["warning"] is False  # type: ignore[index]
        assert doc["influxdb_reachable"] is None and doc["last_write"] is None  # nothing written yet

        capsys.readouterr()
        assert main(["status", "--config", str(cfg_path)]) == 0
        out = capsys.readouterr().out
        assert "gateway north: UP" in out and "from broker" in out and "not_utf8" in out

        assert main(["rejects", "--config", str(cfg_path), "--since", "1h"]) == 0
        out = capsys.readouterr().out
        assert "not_utf8" in out and "hex:ff6e6f74206a736f6e" in out and "[1, 2]" in out

        assert main(["rejects", "--config", str(cfg_path), "--json", "--reason", "not_object"]) == 0
        (line,) = capsys.readouterr().out.splitlines()
        assert json.loads(line)["payload"] == "[1, 2]"
    finally:
        service.stop_event.set()
        thread.join(20)
    # a clean stop says "down", retained, so a monitor sees the gateway went away
    wait_for(lambda: any(json.loads(p).get("state") == "down" for _, p, _ in listener.messages), 10, "down")
    listener.close()
    assert main(["status", "--config", str(cfg_path)]) == 1
    assert "DOWN" in capsys.readouterr().out


def test_status_falls_back_to_the_data_dir_when_the_broker_is_away(
    influx: Influx, workdir: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.devservices import free_port

    cfg_path = gateway_toml(
        workdir / "gateway.toml", mqtt_port=free_port(), influx_url=influx.url, db=influx.db, prefix=prefix
    )
    data = load(cfg_path).data_dir
    data.mkdir(parents=True)
    (data / "status.json").write_text(
        '{"state":"up","gateway_id":"main","ts":"2026-11-22T10:00:00.000Z","rejects":{"not_json":3},'
        '"spool":{"depth":120,"bytes":500000,"max_bytes":1000000,"warning":true}}'
    )
    assert main(["status", "--config", str(cfg_path), "--timeout", "1"]) == 0
    out = capsys.readouterr().out
    assert "status.json" in out and "120 readings waiting" in out and "WARNING" in out
    # a person reads the time in the site's zone, with the zone; --json keeps the payload's UTC
    cfg_path.write_text(cfg_path.read_text() + '\n[site]\ntimezone = "Asia/Ulaanbaatar"\n')
    assert main(["status", "--config", str(cfg_path), "--timeout", "1"]) == 0
    assert "reported          2026-11-22 18:00:00 UTC+08 (" in capsys.readouterr().out
    assert main(["status", "--config", str(cfg_path), "--timeout", "1", "--json"]) == 0
    assert '"ts":"2026-11-22T10:00:00.000Z"' in capsys.readouterr().out


def test_rejects_since_must_be_a_time_or_a_duration(
    influx: Influx, workdir: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.commands.rejects import parse_since

    assert parse_since("2h", 10_000.0) == 10_000.0 - 7200
    assert parse_since("2026-11-22T10:00:00Z", 0) == 1795341600.0
    assert parse_since("2026-11-22T10:00", 0) == 1795341600.0
    cfg_path = gateway_toml(
        workdir / "gateway.toml", mqtt_port=1, influx_url=influx.url, db=influx.db, prefix=prefix
    )
    assert main(["rejects", "--config", str(cfg_path), "--since", "yesterday"]) == 2
    assert "--since 'yesterday'" in capsys.readouterr().err
