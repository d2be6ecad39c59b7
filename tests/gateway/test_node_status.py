"""The gateway's `node_status` measurement: every status message becomes one point, refused ones are
counted and never stop anything. Real paho messages go into the real handler, writing to a real influxd."""

from __future__ import annotations

from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest

from contract.status import OFFLINE, parse_status
from contract.wire import PayloadError
from gateway.config import InfluxConfig
from gateway.node_status import NodeStatusStore
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message
from tests.helpers import Influx

ONLINE = (
    b'{"state":"online","version":"0.1.0","started":"2026-11-22T10:00:00.000Z","uptime_s":3600,'
    b'"outbox":{"depth":12,"oldest_ts":"2026-11-22T10:58:00.000Z","dropped":3},'
    b'"sensors":{"pms5003":{"ok":false,"last_error":"no data on /dev/serial0","last_ok":null},'
    b'"turbidity-modbus":{"ok":true,"last_error":null,"last_ok":"2026-11-22T10:59:59.000Z"}},'
    b'"clock_synced":true}'
)


def _message(topic: str, payload: bytes, retain: bool = True) -> Message:
    """Build our Message from a real paho MQTTMessage, as the subscriber does."""
    raw = mqtt.MQTTMessage(mid=1, topic=topic.encode())
    raw.payload, raw.qos, raw.retain = payload, 1, retain
    return Message(raw.topic, bytes(raw.payload), raw.mid, raw.qos, raw.retain, 0.0)


class _Swapped:
    """A real store the test replaces underneath the handler, as an outage ends: down, then up."""

    def __init__(self, current: dict[str, InfluxV1]) -> None:
        self._current = current

    def write(self, lines: list[str]) -> None:
        self._current["store"].write(lines)

    def close(self) -> None:
        """The test closes the stores it opened."""


def test_status_messages_become_node_status_points(influx: Influx) -> None:
    store = InfluxV1(InfluxConfig(url=influx.url, database=influx.db, api="v1"))
    times = iter([datetime(2026, 11, 22, 11, 0, tzinfo=UTC), datetime(2026, 11, 22, 11, 5, tzinfo=UTC)])
    handler = NodeStatusStore(store, prefix="mw", clock=lambda: next(times))
    handler.handle(_message("mw/v1/tsagaan/haul-road/status", ONLINE))
    handler.handle(_message("mw/v1/tsagaan/haul-road/status", b'{"state":"offline"}'))
    rows = influx.rows('SELECT * FROM "node_status" GROUP BY "site", "node"')
    store.close()
    assert handler.stored == 2
    online, offline = rows
    assert online["time"] == int(datetime(2026, 11, 22, 11, 0, tzinfo=UTC).timestamp() * 1000)
    assert (online["site"], online["node"], online["state"]) == ("tsagaan", "haul-road", "online")
    assert (online["version"], online["uptime_s"]) == ("0.1.0", 3600)
    assert (online["outbox_depth"], online["outbox_dropped"], online["clock_synced"]) == (12, 3, True)
    assert online["sensor_pms5003_ok"] is False and online["sensor_turbidity-modbus_ok"] is True
    assert offline["state"] == "offline"
    assert offline["uptime_s"] is None and offline["sensor_pms5003_ok"] is None


def test_bad_status_messages_are_counted_and_stored_nowhere(influx: Influx) -> None:
    store = InfluxV1(InfluxConfig(url=influx.url, database=influx.db, api="v1"))
    handler = NodeStatusStore(store, prefix="mw")
    for topic, payload in [
        ("mw/v1/tsagaan/haul-road/status", b"not json"),
        ("mw/v1/tsagaan/haul-road/status", b'{"state":"asleep"}'),
        ("mw/v1/tsagaan/haul-road/status", b'{"state":"online","uptime_s":"3"}'),
        ("mw/v1/Bad Site/haul-road/status", b'{"state":"offline"}'),
        ("mw/v1/tsagaan/haul-road/status", b"x" * 5000),
    ]:
        handler.handle(_message(topic, payload))
    handler.handle(_message("mw/v1/tsagaan/haul-road/status", b'{"state":"offline"}'))
    store.close()
    assert sum(handler.rejected.values()) == 5
    assert handler.rejected["too_large"] == 1
    assert handler.stored == 1
    assert [r["state"] for r in influx.rows('SELECT "state" FROM "node_status"')] == ["offline"]


def test_the_offline_status_is_state_alone_and_online_round_trips() -> None:
    assert OFFLINE.to_wire() == b'{"state":"offline"}'
    status = parse_status(ONLINE)
    assert parse_status(status.to_wire()) == status
    assert b'"lat"' not in status.to_wire()  # position only when the node has one
    placed = parse_status(ONLINE[:-1] + b',"lat":43.1105,"lon":106.8503}')
    assert (placed.lat, placed.lon) == (43.1105, 106.8503)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"state":"online","lat":43.1}', "invalid"),  # lat without lon
        (b'{"state":"online","outbox":{"depth":-1,"oldest_ts":null,"dropped":0}}', "invalid"),
        (b'{"state":"online","sensors":{"PMS":{"ok":true,"last_error":null,"last_ok":null}}}', "invalid"),
        (b'{"state":"online","started":"yesterday"}', "invalid"),
        (b'{"state":"online","extra":1}', "invalid"),
        (b"[]", "invalid"),
    ],
)
def test_status_payloads_outside_the_contract_are_refused(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_status(payload)
    assert err.value.reason == reason


def test_status_points_wait_while_influxdb_is_down_and_are_written_after(influx: Influx) -> None:
    from gateway.devservices import free_port

    down = InfluxV1(InfluxConfig(url=f"http://127.0.0.1:{free_port()}", database=influx.db, api="v1"))
    up = InfluxV1(InfluxConfig(url=influx.url, database=influx.db, api="v1"))
    current = {"store": down}
    minutes = iter(range(3))
    handler = NodeStatusStore(
        _Swapped(current),
        prefix="mw",
        max_pending=2,
        clock=lambda: datetime(2026, 11, 22, 11, next(minutes), tzinfo=UTC),
    )
    for _ in range(3):
        handler.handle(_message("mw/v1/tsagaan/haul-road/status", ONLINE))
    assert handler.stored == 0 and handler.dropped == 1  # bounded: the oldest goes, counted
    current["store"] = up
    handler.tick()
    down.close()
    up.close()
    assert handler.stored == 2
    times = [r["time"] for r in influx.rows('SELECT "state" FROM "node_status"')]
    assert times == [int(datetime(2026, 11, 22, 11, m, tzinfo=UTC).timestamp() * 1000) for m in (1, 2)]
