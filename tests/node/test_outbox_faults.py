"""The whole node on a card filled to the last byte and on a damaged outbox: a real file system, the
real outbox and the real broker, heard by a real subscriber."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway.devservices import Service, free_port
from node.config import NodeConfig, load
from node.outbox import Outbox
from node.service import NodeService
from tests.helpers import Listener, fill, node_toml, wait_for

TS = "2026-11-22T10:00:00.000Z"


def _run(cfg: NodeConfig, until: Any, what: str) -> list[int]:
    """Run the node until `until(seqs)` holds; returns the seqs it committed."""
    seqs: list[int] = []
    service = NodeService(cfg, on_reading=lambda seq, r: seqs.append(seq))
    thread = threading.Thread(target=service.run)
    thread.start()
    try:
        wait_for(lambda: not thread.is_alive() or until(seqs), 20, what)
        assert thread.is_alive(), "the node stopped by itself"
    finally:
        service.stop_event.set()
        thread.join(15)
    assert not thread.is_alive()
    return seqs


def _statuses(listener: Listener) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p, _ in listener.messages if t.endswith("/status")]


def test_the_node_keeps_measuring_on_a_full_card_and_reports_the_loss(
    small_card: Path, prefix: str, mosquitto: Service
) -> None:
    toml = node_toml(small_card / "node.toml", site="s", node="n", port=free_port(), prefix=prefix)
    cfg = load(toml)
    box = Outbox(cfg.buffer.path)
    for _ in range(100):  # a backlog from an outage
        box.append(TS, lambda s: b"{}")
    box.close()
    fill(small_card)
    seqs = _run(cfg, lambda seqs: len(seqs) >= 3, "three readings on the full card")
    assert seqs == list(range(101, 101 + len(seqs)))
    box = Outbox(cfg.buffer.path)
    assert box.dropped() >= len(seqs)  # the oldest made room, and were counted
    assert box.depth() + box.dropped() == 100 + len(seqs)
    box.close()

    # the same node, the card still full, now heard: its status says what was dropped
    listener = Listener(mosquitto.port, f"{prefix}/v1/s/n/status")
    cfg = load(node_toml(toml, site="s", node="n", port=mosquitto.port, prefix=prefix))
    _run(cfg, lambda seqs: len(seqs) >= 1 and _statuses(listener), "a reading and a status")
    online = [s for s in _statuses(listener) if s["state"] == "online"]
    assert online[0]["outbox"]["dropped"] >= len(seqs)
    assert "recovered_from" not in online[0]["outbox"]
    listener.close()


def test_a_damaged_outbox_is_kept_aside_and_the_node_measures_on(
    workdir: Path, prefix: str, mosquitto: Service, caplog: pytest.LogCaptureFixture
) -> None:
    toml = node_toml(
        workdir / "node.toml",
        site="s",
        node="n",
        port=mosquitto.port,
        prefix=prefix,
        top="status_interval_s = 1\n",
    )
    cfg = load(toml)
    box = Outbox(cfg.buffer.path)
    for _ in range(30):
        box.append(TS, lambda s: b"{}")
    box.close()
    with open(cfg.buffer.path, "r+b") as f:  # what a bad sector does to the header
        f.write(b"\xff" * 100)
    listener = Listener(mosquitto.port, f"{prefix}/v1/s/n/status")
    caplog.set_level(logging.WARNING)
    seqs = _run(
        cfg,
        lambda seqs: (
            len(seqs) >= 2 and any(s.get("outbox", {}).get("recovered_from") for s in _statuses(listener))
        ),
        "readings and a status naming the kept file",
    )
    assert seqs[0] > 30 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # never a seq used before
    kept = sorted(workdir.glob("n-outbox.sqlite.corrupt-*"))
    assert [p.name for p in kept] == [
        s["outbox"]["recovered_from"] for s in _statuses(listener) if s["state"] == "online"
    ][:1]
    assert kept[0].read_bytes()[:100] == b"\xff" * 100  # kept as it was found
    assert any("damaged" in r.getMessage() and kept[0].name in r.getMessage() for r in caplog.records)
    box = Outbox(cfg.buffer.path)
    assert box.last_seq() == seqs[-1]
    box.close()
    listener.close()
