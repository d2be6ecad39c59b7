"""A client that reads a month's CSV download very slowly does not make the dashboard hold the month
in memory: the response streams, a day at a time, as fast as the client takes it. A real `serve`
process, a real influxd holding a month of one node at one reading a minute, and a real socket whose
receive buffer is kept small (so the kernel cannot swallow the download for it) reading a few KB at
a time, while the test watches the server's resident memory in /proc."""

from __future__ import annotations

import http.client
import io
import signal
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.wire import ReadingPayload
from gateway.devservices import Service, free_port
from gateway.points import to_line
from tests.helpers import Influx, gateway_toml, spawn, wait_for

START = datetime(2026, 10, 1, tzinfo=UTC)
ROWS = 30 * 24 * 60  # 30 days at one a minute: 43,200
QUERY = "/download/readings.csv?site=tsagaan&node=haul-road&start=2026-10-01&end=2026-10-31"
MB = 2**20


def _lines() -> list[str]:
    out = []
    for i in range(ROWS):
        doc = {
            "schema": 1,
            "site": "tsagaan",
            "node": "haul-road",
            "seq": i + 1,
            "ts": (START + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "period_s": 60,
            "metrics": {
                m: {"value": 10.0 + i % 97 / 10, "raw": 9.0 + i % 89 / 10, "n": 60, "cal": f"{m}-2026-09"}
                for m in ("pm2_5", "pm10", "air_temp", "rh")
            },
            "flags": [],
        }
        out.append(to_line(ReadingPayload.model_validate(doc)))
    return out


def rss(pid: int) -> int:
    """Resident memory of the process in bytes (VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _slow_get(port: int, pid: int, slow_s: float) -> tuple[bytes, list[int], int]:
    """GET the month, reading 4 KB every 20 ms for `slow_s`, then the rest at full speed; the
    response's raw bytes, the server's RSS sampled while reading slowly, and the bytes read then."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # before connect: no autotuning
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {QUERY} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    raw, samples = bytearray(), []
    deadline = time.monotonic() + slow_s
    while time.monotonic() < deadline:
        raw += sock.recv(4096)
        samples.append(rss(pid))
        time.sleep(0.02)
    slow_bytes = len(raw)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # and now take the rest quickly
    while chunk := sock.recv(1 << 20):
        raw += chunk
    sock.close()
    return bytes(raw), samples, slow_bytes


class _Bytes:
    """What http.client needs of a socket to parse a response already read."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


def test_a_slow_reader_of_a_month_keeps_the_server_memory_bounded(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    lines = _lines()
    for i in range(0, ROWS, 10_000):
        influx.write(lines[i : i + 10_000])
    port = free_port()
    cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=f"[web]\nport = {port}\n",
    )
    serve = spawn(["gateway.cli", "serve", "--config", str(cfg)], workdir / "serve.log")
    try:
        wait_for(lambda: _ok(port), 60, "the dashboard")
        # a day first, read at once: the modules, caches and pools a download needs are all there
        with socket.create_connection(("127.0.0.1", port)) as warm:
            day = QUERY.replace("10-31", "10-02")
            warm.sendall(f"GET {day} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            while warm.recv(1 << 20):
                pass
        before = rss(serve.pid)
        raw, samples, slow_bytes = _slow_get(port, serve.pid, slow_s=3.0)
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(20) == 0, (workdir / "serve.log").read_text()[-2000:]
    resp = http.client.HTTPResponse(_Bytes(raw))  # type: ignore[arg-type]
    resp.begin()
    body = resp.read()
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"  # streamed
    rows = body.decode().splitlines()
    assert len(rows) == 1 + ROWS and rows[1].startswith("2026-10-01T00:00:00.000Z,tsagaan,haul-road,1,")
    assert len(body) > 6 * MB  # more than the kernel's buffers on both sides could hold for us
    grew = max(samples) - before
    print(
        f"CSV {len(body) / MB:.1f} MB; read slowly {slow_bytes / MB:.2f} MB; server RSS +{grew / MB:.1f} MB"
    )
    assert slow_bytes < len(body) / 10  # the reader really was slow: most of the month still to come
    # holding the month's CSV text alone grows the server by its size (+8.7 MB measured), the
    # month's rows by far more; streaming a day at a time stayed under 1 MB
    assert grew < len(body) / 3, f"the server grew by {grew / MB:.1f} MB while the client read slowly"


def _ok(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
