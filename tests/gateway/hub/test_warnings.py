"""Warnings to a neighbour, through the real hub process, its broker and PostgreSQL, delivered to
real HTTP receivers: the first contact is warned; nobody confirms, so the second is warned after
the escalation time; the second confirms (escalation stops); the site's all-clear tells both the
end. Every step is in the warning's record, with times and names."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.hub import ForwardBatch, forward_topic
from contract.signing import Signer, public_b64
from gateway import devservices
from tests.gateway.hub.test_forward_e2e import HUB_PREFIX, _cli
from tests.helpers import publish, spawn, wait_for
from tests.receivers import HttpReceiver

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def receivers() -> Iterator[tuple[HttpReceiver, HttpReceiver]]:
    first, second = HttpReceiver(), HttpReceiver()
    yield first, second
    first.close()
    second.close()


def _event(state: str, at: datetime) -> dict[str, object]:
    started = NOW - timedelta(minutes=5)
    return {
        "schema": 1, "id": f"upriver.w1.turbidity-spike.{started:%Y%m%dT%H%M%SZ}", "state": state,
        "site": "upriver", "node": "w1", "rule": "turbidity-spike", "type": "threshold",
        "metric": "turbidity", "severity": "critical", "ts": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "ended": None, "value": 412.0,
        "limit": 100.0, "average": "instant", "peak": 412.0, "late": False, "acked_by": None,
        "category": None, "message": "Turbidity at w1 is 412.0 NTU, over the limit of 100.0",
        "msg_id": None, "msg_params": None,
    }  # fmt: skip


def test_a_warning_escalates_until_confirmed_and_its_end_reaches_everyone_warned(
    tmp_path: Path, pg: str, prefix: str, receivers: tuple[HttpReceiver, HttpReceiver]
) -> None:
    broker = devservices.mosquitto(tmp_path / "broker", persistent=True)
    broker.start()
    cfg = tmp_path / "hub.toml"
    cfg.write_text(
        f'topic_prefix = "{HUB_PREFIX}"\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f'client_id = "hub-{prefix}"\n[database]\ndsn = "{pg}"\n'
    )
    first, second = receivers
    hub_cli = ("hub",)
    _cli(*hub_cli, "init", "--config", str(cfg))
    for jid in ("up", "down"):
        _cli(
            *hub_cli,
            "jurisdiction",
            "--config",
            str(cfg),
            "--id",
            jid,
            "--name",
            jid,
            "--role",
            f"j_{jid}_{prefix}",
        )
    identity = Signer.generate()
    _cli(*hub_cli, "site", "--config", str(cfg), "--id", "upriver", "--jurisdiction", "up",
         "--identity-key", public_b64(identity.private.public_key()))  # fmt: skip
    for rank, (name, receiver, lang) in enumerate(
        (("Duty officer", first, "en"), ("Governor", second, "mn")), 1
    ):
        channel = f'{{"type": "webhook", "url": "{receiver.url}/w", "language": "{lang}", "retries": 0}}'
        _cli(*hub_cli, "contact", "--config", str(cfg), "--jurisdiction", "down", "--rank", str(rank),
             "--name", name, "--channel", channel)  # fmt: skip
    _cli(*hub_cli, "warn-rule", "--config", str(cfg), "--site", "upriver", "--rule", "turbidity-spike",
         "--neighbour", "down", "--escalate-after", "3")  # fmt: skip
    log = tmp_path / "hub.log"
    hub = spawn(["gateway.cli", "hub", "run", "--config", str(cfg)], log)
    try:
        wait_for(lambda: "taking batches" in log.read_text(), 30, "hub")
        time.sleep(0.5)
        topic = forward_topic(HUB_PREFIX, "upriver")
        raised = ForwardBatch(site="upriver", batch=1, alerts=[_event("raised", NOW)])
        publish(broker.port, topic, raised.model_dump_json().encode())

        wait_for(lambda: first.json_bodies(), 20, "the first contact warned")
        assert first.json_bodies()[0]["action"] == "warning" and not second.requests
        wait_for(lambda: second.json_bodies(), 20, "the second contact warned after 3 s unconfirmed")
        escalated = second.json_bodies()[0]
        assert escalated["action"] == "escalated" and escalated["warning"] == 1
        assert "412" in str(escalated["alert"]["value"])

        said = _cli(*hub_cli, "warning", "confirm", "--config", str(cfg), "--id", "1", "--by", "Governor")
        assert "confirmed by Governor" in said
        time.sleep(4)  # past another escalation time: nothing more goes out while confirmed
        assert len(first.requests) == 1 and len(second.requests) == 1

        cleared = ForwardBatch(
            site="upriver", batch=2, alerts=[_event("cleared", NOW + timedelta(minutes=9))]
        )
        publish(broker.port, topic, cleared.model_dump_json().encode())
        wait_for(lambda: len(first.requests) == 2 and len(second.requests) == 2, 20, "the end told to both")
        assert [b["action"] for b in first.json_bodies()] == ["warning", "end"]
        assert [b["action"] for b in second.json_bodies()] == ["escalated", "end"]

        record = _cli(*hub_cli, "warning", "log", "--config", str(cfg), "--id", "1").splitlines()
        steps = [(line.split("\t")[1], line.split("\t")[2], line.split("\t")[3]) for line in record]
        assert steps == [
            ("warning", "Duty officer", ""), ("escalated", "Governor", ""), ("confirmed", "", "Governor"),
            ("end", "Duty officer", ""), ("end", "Governor", ""),
        ]  # fmt: skip
        assert "ended" in _cli(*hub_cli, "warning", "list", "--config", str(cfg))
        # the Mongolian contact read Mongolian
        said = second.json_bodies()[0]
        assert "сэрэмжлүүл" in said["subject"] and "confirm --id 1" in said["text"]
        assert first.json_bodies()[0]["subject"].startswith("Warning 1 from upriver")
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(20)
        broker.stop()
