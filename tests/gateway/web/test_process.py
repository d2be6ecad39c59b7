"""Under `run`, the dashboard is a child process (gateway/web/process.py): killed, it is started
again; the gateway killed with SIGKILL, it stops too instead of holding the port; a dashboard that
cannot listen stops the gateway's start with exit 1, as before."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from gateway.devservices import Service, free_port
from tests.helpers import Influx, gateway_toml, spawn, wait_for


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4, after the command's name
                out.append(int(entry.name))
    return out


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_dashboard_process_is_restarted_and_never_outlives_the_gateway(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    port = free_port()
    cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=f"[web]\nport = {port}\n",
    )
    log = workdir / "gateway.log"
    gateway = spawn(["gateway.cli", "run", "--config", str(cfg)], log)
    try:
        wait_for(lambda: "data in" in log.read_text(), 60, "the gateway's loop running, the dashboard up")
        (first,) = _children(gateway.pid)
        nice = int(Path(f"/proc/{first}/stat").read_text().rsplit(")", 1)[1].split()[16])  # field 19
        assert nice == min(19, os.nice(0) + 10)  # the pages get the CPU ingest leaves (10 below us)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: "dashboard process exited with status -9" in log.read_text(), 10, "the exit seen")
        second = wait_for(lambda: [c for c in _children(gateway.pid) if c != first], 10, "a new dashboard")[0]
        wait_for(lambda: _listening(port), 30, "the new dashboard listening")
        assert gateway.poll() is None
        gateway.kill()  # no chance to stop its child: the socket pair's end closes with it
        gateway.wait(10)
        wait_for(lambda: not _alive(second), 10, "the dashboard gone with the gateway")
        assert not _listening(port)
    finally:
        if gateway.poll() is None:
            gateway.kill()


def test_run_whose_dashboard_cannot_listen_exits_1(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = gateway_toml(
            workdir / "gateway.toml",
            mqtt_port=mosquitto.port,
            influx_url=influx.url,
            db=influx.db,
            prefix=prefix,
            extra=f"[web]\nport = {port}\n",
        )
        gateway = spawn(["gateway.cli", "run", "--config", str(cfg)], workdir / "gateway.log")
        assert gateway.wait(60) == 1
    text = (workdir / "gateway.log").read_text()
    assert f"cannot listen on 127.0.0.1:{port}" in text  # the child says why
    assert "the dashboard did not start (exit status 1)" in text  # and the gateway that it stops
