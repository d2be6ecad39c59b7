"""A node stopped cleanly must not flap (issue 18): through the real broker, the real gateway process
and its alert path to a webhook receiver, a real node process is sent SIGTERM. Before, that gave a
critical "offline", an all-clear 0.12 s later (the node's last partial reading arrives after its
status) and a second "offline" once `after` had passed: three notifications for one planned stop.
Now it is one, at severity info, as a planned stop; the node's return is its all-clear. A node that
vanishes (SIGKILL: the broker publishes its last will) is told once, as offline, and stays so."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from gateway.devservices import Service
from tests.helpers import Influx, gateway_toml, node_toml, spawn, wait_for, wait_gateway_ready
from tests.receivers import HttpReceiver

AFTER_S = 3  # the offline rule's `after`: the old second "offline" came this long after the stop


def _count_for(seconds: float, hook: HttpReceiver) -> list[dict[str, object]]:
    """What the receiver has once `seconds` more have passed (long enough for a flap to show)."""
    time.sleep(seconds)
    return hook.json_bodies("/hook")


def test_a_sigterm_is_one_planned_stop_and_a_kill_one_offline(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    hook = HttpReceiver()
    rules = (
        f'[[alerts.rules]]\nname = "silent"\ntype = "offline"\nafter = "{AFTER_S}s"\n'
        'severity = "critical"\nremind_every = "1h"\nsites = ["tsagaan"]\n'
        f'[[alerts.channels]]\ntype = "webhook"\nurl = "{hook.url}/hook"\nretry_backoff_s = 0.2\n'
    )
    gw_cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=rules,
    )
    # A 2 s window read every 0.25 s: a stop mid-window sends a last partial reading, which the
    # gateway's alerts see after the status (a reading waits for its batch to be stored).
    node_cfg = node_toml(
        workdir / "haul-road.toml",
        site="tsagaan",
        node="haul-road",
        port=mosquitto.port,
        prefix=prefix,
        interval_s=2,
        sensors='[[sensors]]\ntype = "simulated-pm"\nsample_interval_s = 0.25\n',
        mqtt="keepalive_s = 5\n",
    )
    run_node = ["node.cli", "run", "--config", str(node_cfg)]
    procs: list[subprocess.Popen[bytes]] = []

    def haul_road_rows() -> list[dict[str, object]]:
        return influx.rows('SELECT "seq" FROM "reading" WHERE "node" = \'haul-road\'')

    try:
        procs.append(gateway := spawn(["gateway.cli", "run", "--config", str(gw_cfg)], workdir / "gw.log"))
        wait_gateway_ready(mosquitto.port, prefix, influx)
        procs.append(node := spawn(run_node, workdir / "node.log"))
        wait_for(lambda: len(haul_road_rows()) >= 2, 30, "the node's readings stored")
        time.sleep(0.9)  # into the next window: the stop leaves a partial one
        node.send_signal(signal.SIGTERM)
        assert node.wait(15) == 0
        stop = _count_for(AFTER_S + 4, hook)
        assert [(b["state"], b["severity"], b["msg_id"]) for b in stop] == [
            ("raised", "info", "alert.stop.stopped")
        ]
        assert str(stop[0]["message"]).startswith("haul-road (tsagaan) was stopped as planned at ")

        procs.append(node := spawn(run_node, workdir / "node.log"))  # started again
        wait_for(lambda: len(hook.json_bodies("/hook")) >= 2, 30, "the return")
        back = hook.json_bodies("/hook")[1]
        assert (back["state"], back["severity"], back["msg_id"]) == ("cleared", "info", "alert.stop.back")
        rows = len(haul_road_rows())
        wait_for(lambda: len(haul_road_rows()) > rows, 30, "readings again")

        node.send_signal(signal.SIGKILL)  # vanishes: the broker sends its last will after ~7.5 s
        node.wait(15)
        wait_for(lambda: len(hook.json_bodies("/hook")) >= 3, 30, "the last will's offline")
        lost = _count_for(AFTER_S + 2, hook)[2:]
        assert [(b["state"], b["severity"], b["msg_id"]) for b in lost] == [
            ("raised", "critical", "alert.offline.raised")
        ]
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(15) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        hook.close()
