"""Issue 22, item 1: a flood of idle and slow-header connections on the dashboard port, more than the
gateway's open-file limit, must not stop ingest or alerts. A real `minewatch-gateway run` with `[web]`
under RLIMIT_NOFILE 256, the real broker and influxd, a webhook receiver; 400 idle + 100 slowloris
connections held (and reopened when closed) while a probe node publishes readings that raise and
clear an alert every second."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from contract.wire import format_ts
from gateway.devservices import Service, free_port
from tests.flood import Flood
from tests.helpers import ROOT, Influx, gateway_toml, publish_many, wait_for, wait_gateway_ready
from tests.receivers import HttpReceiver

FD_LIMIT = 256
FLOOD_S = 14.0
MAX_CONNECTIONS = 100
HEADER_TIMEOUT_S = 2.0


# `minewatch-gateway` with soft and hard RLIMIT_NOFILE lowered first (as a unit's LimitNOFILE would),
# set in the child itself: a preexec_fn is unsafe in this test process, which has threads.
LIMITED = (
    "import resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FD_LIMIT}, {FD_LIMIT})); "
    "from gateway.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _reading(prefix: str, seq: int, value: float) -> tuple[str, bytes]:
    doc = {
        "schema": 1,
        "site": "tsagaan",
        "node": "haul-road",
        "seq": seq,
        "ts": format_ts(datetime.now(UTC)),
        "period_s": 1,
        "metrics": {"pm2_5": {"value": value, "n": 1}},
        "flags": [],
    }
    return f"{prefix}/v1/tsagaan/haul-road/reading", json.dumps(doc).encode()


def _raised(hook: HttpReceiver) -> list[dict[str, object]]:
    return [b for b in hook.json_bodies("/hook") if b["state"] == "raised"]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_a_flood_on_the_dashboard_never_stops_ingest_or_alerts(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    hook = HttpReceiver()
    web_port = free_port()
    extra = (
        '[[alerts.rules]]\nname = "pm25"\ntype = "threshold"\nmetric = "pm2_5"\nlimit = 100.0\n'
        'clear_after = "0"\nremind_every = "0"\n'
        f'[[alerts.channels]]\ntype = "webhook"\nurl = "{hook.url}/hook"\n'
        "retry_backoff_s = 0.2\nrate_limit = 0\n"
        f"[web]\nport = {web_port}\nmax_connections = {MAX_CONNECTIONS}\n"
        f"header_timeout_s = {HEADER_TIMEOUT_S:g}\nidle_timeout_s = 5\n"
    )
    cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=extra,
    )
    log = workdir / "gateway.log"
    gateway = subprocess.Popen(
        [sys.executable, "-c", LIMITED, "run", "--config", str(cfg)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    flood = Flood(web_port, idle=400, slow=100)
    try:
        wait_gateway_ready(mosquitto.port, prefix, influx)
        wait_for(lambda: _listening(web_port), 30, "the dashboard listening")
        flood.start()
        time.sleep(3.0)  # the flood at its height: more connections than the gateway has files
        seq, stored_at, raised_at = 0, [], []
        end = time.monotonic() + FLOOD_S
        while time.monotonic() < end:
            seq += 1
            publish_many(mosquitto.port, [_reading(prefix, seq, 500.0 if seq % 2 else 5.0)])
            time.sleep(0.5)
            stored_at.append(influx.count() - 1)  # minus the probe's reading
            raised_at.append(len(_raised(hook)))
        assert gateway.poll() is None, log.read_text()[-3000:]
        held = flood.open_now()
        flood.stop()
        wait_for(lambda: influx.count() - 1 == seq, 20, f"all {seq} readings stored")
        wait_for(lambda: len(_raised(hook)) >= (seq + 1) // 2, 20, "a raise for each reading over the limit")

        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/v1/nodes", timeout=10) as resp:
                    return bool(resp.status == 200)
            except OSError:  # the flood's last connections may still be closing
                return False

        wait_for(answers, 20, "the pages back once the flood is gone")
        gateway.send_signal(signal.SIGTERM)
        # a clean stop closes the dashboard child's pipe and waits up to web.process.STOP_WAIT_S
        # (10 s) for it before a SIGTERM (10 s more): 20 s was that budget exactly, and missed once
        # on a loaded CI machine; the log says what the stop waited for if it is ever slower
        try:
            code = gateway.wait(45)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0, log.read_text()[-3000:]
    finally:
        flood.stop()
        if gateway.poll() is None:
            gateway.kill()
        hook.close()
    # Readings were stored and alerts raised all along the flood, not in a burst at its end.
    for series in (stored_at, raised_at):
        quarters = [series[len(series) * k // 4] for k in range(1, 4)]
        assert 0 < quarters[0] < quarters[1] < quarters[2], series
    assert len(_raised(hook)) == (seq + 1) // 2  # one per reading over the limit, none lost or doubled
    # The flood held fewer connections than it wanted: beyond max_connections they are refused.
    assert held < 500, held
    # Slow headers and silent connections were dropped by the server on its header deadline, over
    # and over (a slot held for ever would leave only the cap's refusals). The cap resets a
    # connection as soon as it is accepted; the deadline drops it HEADER_TIMEOUT_S after, and a
    # lifetime counts from the handshake (tests/flood.py), so what lived about that long or more was
    # the deadline's (give or take the flood noticing the handshake late, itself loaded). On a busy
    # machine a few are late by whole seconds of TCP retries (a refusal after the kernel dropped a
    # SYN or ACK while the backlog was full) or by the niced dashboard's loop: the median and nine in
    # ten are bounded, not the slowest one.
    for kind, lifetimes in flood.stats.lifetimes_s.items():
        dropped = sorted(t for t in lifetimes if t >= HEADER_TIMEOUT_S - 0.5)
        assert len(dropped) >= 10, (kind, sorted(lifetimes))
        assert dropped[len(dropped) // 2] < HEADER_TIMEOUT_S + 1.0, (kind, dropped)
        assert dropped[len(dropped) * 9 // 10] < HEADER_TIMEOUT_S + 2.0, (kind, dropped)
    dropped_total = sum(t >= HEADER_TIMEOUT_S - 0.5 for ts in flood.stats.lifetimes_s.values() for t in ts)
    assert dropped_total >= MAX_CONNECTIONS, flood.stats  # the slots turned over, at least once
    # The log tells of it without exploding (the unguarded gateway wrote 377 MB in 75 s).
    assert log.stat().st_size < 200_000, log.stat().st_size
