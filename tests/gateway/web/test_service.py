"""The dashboard as people run it: `minewatch-gateway run` with `[web]`, and `serve` alone, as real
processes beside a real node (with a position), the real broker and the real influxd."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from contract.configfile import ConfigError
from gateway.cli import main
from gateway.devservices import Service, free_port
from node.config import load as load_node
from tests.helpers import Influx, gateway_toml, node_toml, spawn, wait_for


def _get(port: int, path: str) -> Any:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            body = resp.read()
            return json.loads(body) if path.startswith("/api/") else body.decode()
    except (urllib.error.URLError, OSError):
        return None


def test_run_serves_the_dashboard_and_serve_shows_the_same(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    run_port, serve_port = free_port(), free_port()
    gw_cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=f"[web]\nport = {run_port}\n",
    )
    node_cfg = node_toml(
        workdir / "haul-road.toml",
        site="tsagaan",
        node="haul-road",
        port=mosquitto.port,
        prefix=prefix,
        sensors='[[sensors]]\ntype = "simulated-pm"\nsample_interval_s = 0.25\n',
    )
    node_cfg.write_text(node_cfg.read_text().replace("[mqtt]", "lat = 43.1105\nlon = 106.8503\n[mqtt]", 1))
    gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], workdir / "gateway.log")
    serve = spawn(
        ["gateway.cli", "serve", "--config", str(gw_cfg), "--port", str(serve_port)], workdir / "serve.log"
    )
    node = spawn(["node.cli", "run", "--config", str(node_cfg)], workdir / "node.log")
    try:
        for port in (run_port, serve_port):
            nodes = wait_for(
                lambda port=port: [n for n in _get(port, "/api/v1/nodes") or [] if n["lat"] is not None],
                60,
                f"the node with its position on :{port}",
            )
            assert (nodes[0]["node"], nodes[0]["lat"], nodes[0]["lon"]) == ("haul-road", 43.1105, 106.8503)
            assert nodes[0]["status"] == "online"
        node.send_signal(signal.SIGTERM)
        assert node.wait(15) == 0

        def stored() -> float:  # read each time: the node's last partial reading may land after its stop
            return float(influx.rows('SELECT last("pm2_5") FROM "reading"')[0]["last"])

        for port in (run_port, serve_port):
            latest = wait_for(
                lambda port=port: [
                    n for n in _get(port, "/api/v1/latest") or [] if n["values"]["pm2_5"]["value"] == stored()
                ],
                30,
                f"the last stored reading on :{port}",
            )
            assert latest[0]["node"] == "haul-road"
            wait_for(
                lambda port=port: (_get(port, "/api/v1/nodes") or [{}])[0].get("status") == "stopped",
                30,
                "the node's status after a clean stop",
            )
            page = _get(port, "/")
            assert "haul-road" in page and "offline" in page
    finally:
        if node.poll() is None:
            node.kill()
        for proc in (serve, gateway):
            proc.send_signal(signal.SIGTERM)
        assert gateway.wait(20) == 0, (workdir / "gateway.log").read_text()[-2000:]
        assert serve.wait(20) == 0, (workdir / "serve.log").read_text()[-2000:]


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ("port = 0", "gateway.toml: web.port: 0 is too small: it must be 1 or more"),
        ('language = "xx"', "web.language: no translation xx.toml"),
        ('standards = ["who-2005"]', "web.standards: Value error, unknown standard 'who-2005'"),
        ("colour = 1", "web.colour: unknown key"),
        ("max_connections = 0", "web.max_connections: 0 is too small: it must be 1 or more"),
        ("header_timeout_s = 0", "web.header_timeout_s: 0 is too small: it must be more than 0"),
        ('idle_timeout_s = "long"', "web.idle_timeout_s: 'long' is not a whole number"),
        ("body_timeout_s = 7200", "web.body_timeout_s: 7200 is too large: it must be 3600 or less"),
    ],
)
def test_bad_web_config_exits_2_naming_the_key(
    workdir: Path, web: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = workdir / "gateway.toml"
    cfg.write_text(f'data_dir = "{workdir}"\n[mqtt]\nport = {free_port()}\n[web]\n{web}\n')
    assert main(["serve", "--config", str(cfg)]) == 2
    assert message in capsys.readouterr().err


def test_serve_on_a_busy_port_exits_1(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = workdir / "gateway.toml"
        cfg.write_text(f'data_dir = "{workdir}"\n[mqtt]\nport = {free_port()}\n[web]\nport = {port}\n')
        assert main(["serve", "--config", str(cfg)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text


@pytest.mark.parametrize(
    ("position", "message"),
    [
        ("lat = 43.1\n", "lat and lon: give both or neither"),
        ("lat = 91.0\nlon = 106.8\n", "lat: 91.0 is too large: it must be 90 or less"),
        ("lat = 43.1\nlon = -181\n", "lon: -181 is too small: it must be -180 or more"),
        ('lat = "north"\nlon = 106.8\n', "lat: 'north' is not a number"),
    ],
)
def test_node_position_is_validated(workdir: Path, position: str, message: str) -> None:
    path = workdir / "node.toml"
    path.write_text(f'site = "tsagaan"\nnode = "haul-road"\n{position}[[sensors]]\ntype = "simulated-pm"\n')
    with pytest.raises(ConfigError) as caught:
        load_node(path)
    assert str(path) in str(caught.value) and message in str(caught.value)
