"""The gateway's processes listen only where their config says: `ss -ltunp` (iproute2), read for the
real processes' PIDs (and any child they start), never a wildcard address the operator did not ask
for. A dashboard meant for loopback that also listened on 0.0.0.0 or :: would be public."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from gateway.devservices import Service, free_port
from tests.helpers import Influx, gateway_toml, spawn, wait_for


def _tree(pid: int) -> set[int]:
    """The process and all its descendants, from /proc."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def listening(pid: int) -> set[str]:
    """Local addresses (`addr:port`) of every TCP listener and UDP socket the process tree holds."""
    pids = _tree(pid)
    out = subprocess.run(["ss", "-ltunpH"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            found.add(line.split()[4])  # netid, state, recv-q, send-q, local address:port, ...
    return found


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def test_run_and_serve_listen_only_on_the_configured_address(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    run_port, serve_port = free_port(), free_port()
    cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=f'[web]\nhost = "127.0.0.1"\nport = {run_port}\n',
    )
    gateway = spawn(["gateway.cli", "run", "--config", str(cfg)], workdir / "gateway.log")
    serve = spawn(
        ["gateway.cli", "serve", "--config", str(cfg), "--host", "127.0.0.2", "--port", str(serve_port)],
        workdir / "serve.log",
    )
    try:
        wait_for(lambda: _accepts("127.0.0.1", run_port), 60, "the dashboard of `run`")
        wait_for(lambda: _accepts("127.0.0.2", serve_port), 60, "the dashboard of `serve`")
        # the dashboard of `run` is a child the gateway (re)starts: on a loaded machine the port may
        # answer a moment before `ss` lists the child's socket under the tree (seen once in CI)
        want_run, want_serve = {f"127.0.0.1:{run_port}"}, {f"127.0.0.2:{serve_port}"}
        deadline = time.monotonic() + 30
        while listening(gateway.pid) != want_run and time.monotonic() < deadline:
            time.sleep(0.2)
        assert listening(gateway.pid) == want_run, (workdir / "gateway.log").read_text()[-2000:]
        assert listening(serve.pid) == want_serve
        assert not _accepts("127.0.0.2", run_port) and not _accepts("127.0.0.1", serve_port)
    finally:
        for proc in (serve, gateway):
            proc.send_signal(signal.SIGTERM)
        assert gateway.wait(20) == 0, (workdir / "gateway.log").read_text()[-2000:]
        assert serve.wait(20) == 0, (workdir / "serve.log").read_text()[-2000:]
