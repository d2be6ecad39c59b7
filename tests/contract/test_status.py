"""The node status payload: `outbox.recovered_from` is on the wire only when there is something to say."""

from __future__ import annotations

import json

from contract.status import OFFLINE, STOPPED, NodeStatus, OutboxStatus, parse_status


def _status(recovered_from: str | None) -> NodeStatus:
    return NodeStatus(
        state="online",
        version="0.1.0",
        started="2026-11-22T10:00:00.000Z",
        uptime_s=5,
        outbox=OutboxStatus(depth=3, oldest_ts=None, dropped=0, recovered_from=recovered_from),
        clock_synced=True,
    )


def test_recovered_from_is_left_out_when_there_is_none() -> None:
    wire = _status(None).to_wire()
    assert json.loads(wire)["outbox"] == {"depth": 3, "oldest_ts": None, "dropped": 0}
    assert parse_status(wire) == _status(None)


def test_recovered_from_names_the_kept_file_and_round_trips() -> None:
    wire = _status("outbox.sqlite.corrupt-20261122T100000Z").to_wire()
    assert json.loads(wire)["outbox"]["recovered_from"] == "outbox.sqlite.corrupt-20261122T100000Z"
    assert parse_status(wire).outbox == _status("outbox.sqlite.corrupt-20261122T100000Z").outbox


def test_a_planned_stop_and_the_last_will_are_their_state_alone() -> None:
    assert STOPPED.to_wire() == b'{"state":"stopped"}' and OFFLINE.to_wire() == b'{"state":"offline"}'
    assert parse_status(b'{"state": "stopped"}') == STOPPED
