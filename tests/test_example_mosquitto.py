"""The production Mosquitto example we ship must be one Mosquitto accepts, with persistence and the
raised queue limits (docs/operations.md)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway import devservices
from tests.helpers import ROOT, wait_for


def test_example_config_runs_refuses_anonymous_and_persists(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "mosquitto.conf").read_text()
    for needed in ("persistence true", "max_queued_messages 1000000", "max_inflight_messages 1000"):
        assert f"\n{needed}\n" in text
    port = devservices.free_port()
    (tmp_path / "passwd").write_text("")
    local = (
        text.replace("listener 1883", f"listener {port} 127.0.0.1")
        .replace("/var/lib/mosquitto/", f"{tmp_path}/")
        .replace("/etc/mosquitto/passwd", str(tmp_path / "passwd"))
        .replace("log_dest syslog", "log_dest stderr")
    )
    if os.geteuid() == 0:  # Mosquitto started as root would drop to a user who cannot write tmp_path
        local += f"user {getpass.getuser()}\n"
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(local)
    service = devservices.Service(
        "mosquitto", [devservices.find_binary("mosquitto"), "-c", str(conf)], port, tmp_path, "tcp"
    )
    service.start()
    try:
        refused: list[bool] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anonymous")
        client.on_connect = lambda c, u, f, rc, p: refused.append(rc.is_failure)
        client.connect("127.0.0.1", port)
        client.loop_start()
        wait_for(lambda: refused, 10, "the broker's answer")
        client.loop_stop()
        assert refused == [True], "anonymous clients are refused"
    finally:
        service.stop()
    assert (tmp_path / "mosquitto.db").exists(), "persistence wrote its file at shutdown"
