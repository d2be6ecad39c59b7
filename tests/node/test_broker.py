"""The node alone against the real broker, heard by a real MQTT subscriber."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

from gateway.devservices import Service
from gateway.validate import parse_reading
from node.config import load
from node.outbox import Outbox
from node.service import NodeService
from tests.helpers import Listener, node_toml, wait_for


def test_node_publishes_numbered_readings_and_its_status(
    mosquitto: Service, workdir: Path, prefix: str
) -> None:
    listener = Listener(mosquitto.port, f"{prefix}/v1/#")
    cfg = load(
        node_toml(workdir / "node.toml", site="tsagaan", node="haul-road", port=mosquitto.port, prefix=prefix)
    )
    service = NodeService(cfg)
    thread = threading.Thread(target=service.run)
    thread.start()
    try:
        wait_for(lambda: len(listener.payloads()) >= 4, 20, "four readings")
    finally:
        service.stop_event.set()
        thread.join(15)
    assert not thread.is_alive()
    readings = [parse_reading(t, p, prefix) for t, p, _ in listener.messages if t.endswith("/reading")]
    assert [r.seq for r in readings] == list(range(1, len(readings) + 1))
    assert all(r.site == "tsagaan" and r.node == "haul-road" and r.period_s == 1 for r in readings)
    steps = {(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(readings)}
    assert steps == {1.0}
    assert all(r.ts.microsecond == 0 for r in readings)  # windows end on whole seconds
    assert all(r.metrics["pm2_5"].n >= 1 for r in readings)  # type: ignore[index]
    statuses = [(json.loads(p), retain) for t, p, retain in listener.messages if t.endswith("/status")]
    assert statuses[0][0]["state"] == "online"
    assert statuses[-1][0] == {"state": "stopped"}  # a clean shutdown says so itself: a planned stop
    listener.close()
    box = Outbox(cfg.buffer.path)
    assert box.depth() == 0, "every acknowledged reading leaves the outbox"
    assert box.last_seq() == readings[-1].seq
    box.close()


def test_readings_wait_in_the_outbox_while_the_broker_is_unreachable(
    workdir: Path, prefix: str, mosquitto: Service
) -> None:
    from gateway.devservices import free_port

    dead_port = free_port()
    cfg = load(node_toml(workdir / "node.toml", site="s", node="n", port=dead_port, prefix=prefix))
    service = NodeService(cfg)
    seqs: list[int] = []
    service.on_reading = lambda seq, r: seqs.append(seq)
    thread = threading.Thread(target=service.run)
    thread.start()
    wait_for(lambda: len(seqs) >= 3, 20, "three readings taken offline")
    service.stop_event.set()
    thread.join(15)
    box = Outbox(cfg.buffer.path)
    assert box.depth() == len(seqs)
    box.close()

    # the same node, now with a broker: the backlog goes out oldest first, then new readings
    listener = Listener(mosquitto.port, f"{prefix}/v1/s/n/reading")
    cfg2 = load(node_toml(workdir / "node.toml", site="s", node="n", port=mosquitto.port, prefix=prefix))
    service2 = NodeService(cfg2)
    thread2 = threading.Thread(target=service2.run)
    thread2.start()
    try:
        wait_for(lambda: len(listener.payloads()) >= len(seqs) + 2, 20, "backlog and new readings")
    finally:
        service2.stop_event.set()
        thread2.join(15)
    got = [p["seq"] for p in listener.payloads()]
    assert got[: len(seqs)] == seqs
    assert got == list(range(1, len(got) + 1))
    listener.close()
