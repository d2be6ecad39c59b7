"""The warning desk driven with a clock of the test's own, over real PostgreSQL and real HTTP
receivers: a warning whose alert ends before the desk first sends it is still sent (marked as
already ended), then its end, each step recorded at the desk's time; an ordinary warning is not
marked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from contract.signing import Signer, public_b64
from gateway.hub.warnings import WarningDesk
from gateway.stores.postgres_hub import HubStore
from tests.receivers import HttpReceiver

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(pg: str) -> Iterator[HubStore]:
    hub = HubStore(pg)
    hub.prepare()
    tag = uuid.uuid4().hex[:8]
    for jid in ("up", "down"):
        hub.add_jurisdiction(jid, jid, f"j_{jid}_{tag}")
    hub.add_site("upriver", "up", public_b64(Signer.generate().private.public_key()))
    hub.add_warning_rule("upriver", "turbidity-spike", "down", 1800)
    yield hub
    hub.close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


def _event(state: str, node: str, at: datetime) -> dict[str, object]:
    started = T0  # the alert's id, the same in its raised and cleared events
    return {
        "schema": 1, "id": f"upriver.{node}.turbidity-spike.{started:%Y%m%dT%H%M%SZ}", "state": state,
        "site": "upriver", "node": node, "rule": "turbidity-spike", "type": "threshold",
        "metric": "turbidity", "severity": "critical", "ts": f"{at:%Y-%m-%dT%H:%M:%SZ}",
        "started": f"{started:%Y-%m-%dT%H:%M:%SZ}", "ended": None, "value": 412.0, "limit": 100.0,
        "average": "instant", "peak": 412.0, "late": False, "acked_by": None, "category": None,
        "message": f"Turbidity at {node} is 412.0 NTU, over the limit of 100.0", "msg_id": None,
        "msg_params": None,
    }  # fmt: skip


def test_a_warning_ended_before_its_first_send_is_sent_marked_then_its_end(
    store: HubStore, receiver: HttpReceiver
) -> None:
    channel = {"type": "webhook", "url": f"{receiver.url}/w", "language": "en", "retries": 0}
    store.add_contact("down", 1, "Duty officer", channel)
    now = [T0]
    desk = WarningDesk(store, lambda: now[0])
    # raised and cleared within one tick of the desk: before this fix, recorded and never sent
    store.open_warnings("upriver", [_event("raised", "w1", T0)], T0 + timedelta(milliseconds=100))
    cleared = _event("cleared", "w1", T0 + timedelta(milliseconds=500))
    store.open_warnings("upriver", [cleared], T0 + timedelta(milliseconds=600))

    now[0] = T0 + timedelta(seconds=1)
    assert desk.tick() == 1
    first = receiver.json_bodies()[0]
    assert first["action"] == "warning" and first["warning"] == 1
    assert first["subject"].startswith("Warning 1 from upriver (already ended)")
    assert "already ended" in first["text"] and "confirm --id 1" in first["text"]
    assert first["ended"] == (T0 + timedelta(milliseconds=600)).isoformat()

    now[0] = T0 + timedelta(seconds=2)
    assert desk.tick() == 1  # then its end
    assert [b["action"] for b in receiver.json_bodies()] == ["warning", "end"]
    now[0] = T0 + timedelta(seconds=3)
    assert desk.tick() == 0  # and nothing more

    assert store.warning_log(1) == [
        (T0 + timedelta(seconds=1), "warning", "Duty officer", None,
         "already ended at 2026-12-07T02:00:00.600Z"),
        (T0 + timedelta(seconds=2), "end", "Duty officer", None, ""),
    ]  # fmt: skip
    (row,) = store.warnings()
    assert row["ended"] == T0 + timedelta(milliseconds=600) and row["end_sent"] == T0 + timedelta(seconds=2)
    assert row["contact_rank"] == 1

    # an ordinary warning (its alert still active when sent) is not marked
    store.open_warnings("upriver", [_event("raised", "w2", T0)], now[0])
    now[0] = T0 + timedelta(seconds=4)
    assert desk.tick() == 1
    second = receiver.json_bodies()[2]
    assert second["warning"] == 2 and second["ended"] is None
    assert "already ended" not in second["subject"] + second["text"]
    assert store.warning_log(2) == [(T0 + timedelta(seconds=4), "warning", "Duty officer", None, "")]


def test_the_mongolian_contact_reads_the_marked_warning_in_mongolian(
    store: HubStore, receiver: HttpReceiver
) -> None:
    channel = {"type": "webhook", "url": f"{receiver.url}/w", "language": "mn", "retries": 0}
    store.add_contact("down", 1, "Даргa", channel)
    store.open_warnings("upriver", [_event("raised", "w1", T0)], T0)
    store.open_warnings("upriver", [_event("cleared", "w1", T0)], T0)
    assert WarningDesk(store, lambda: T0 + timedelta(seconds=1)).tick() == 1
    said = receiver.json_bodies()[0]
    assert "аль хэдийн дууссан" in said["subject"] and "confirm --id 1" in said["text"]
