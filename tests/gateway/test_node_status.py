"""The gateway's `node_status` measurement: every status message becomes one point, refused ones are
counted and never stop anything. Real paho messages go into the real handler, writing to a real influxd."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from contract.status import OFFLINE, parse_status
from contract.wire import PayloadError
from gateway.cli import main
from gateway.config import InfluxConfig, load
from gateway.devservices import Service
from gateway.hooks import Hooks
from gateway.node_status import NodeStatusStore, attach
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message
from gateway.wiring import assemble, open_parts
from tests.helpers import Influx, gateway_toml, publish, wait_for

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


def test_a_recovered_outbox_is_stored_and_shown_by_the_status_command(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A node that kept a damaged outbox aside says so in its retained status: the real gateway stores
    the kept file's name in `node_status`, and `minewatch-gateway status` shows it from the broker.
    The name is the node's text: quotes, a backslash and a newline are stored as sent."""
    kept = 'outbox.sqlite.corrupt-20261122T100000Z "x"\\y\nz'
    recovered = json.loads(ONLINE)
    recovered["outbox"]["recovered_from"] = kept
    cfg_path = gateway_toml(
        workdir / "gateway.toml", mqtt_port=mosquitto.port, influx_url=influx.url, db=influx.db, prefix=prefix
    )
    cfg = load(cfg_path)
    parts, hooks = open_parts(cfg), Hooks()
    attach(hooks, parts.store, prefix)  # as `minewatch-gateway run` does
    service = assemble(parts, hooks)
    thread = threading.Thread(target=service.run)
    thread.start()
    try:
        wait_for(lambda: service.subscriber and service.subscriber.connected.is_set(), 20, "gateway up")
        publish(mosquitto.port, f"{prefix}/v1/tsagaan/haul-road/status", json.dumps(recovered).encode(), True)
        publish(mosquitto.port, f"{prefix}/v1/tsagaan/river-up/status", ONLINE, retain=True)
        rows = wait_for(
            lambda: len(r := influx.rows('SELECT * FROM "node_status" GROUP BY "node"')) == 2 and r,
            20,
            "two node_status points",
        )
        capsys.readouterr()
        assert main(["status", "--config", str(cfg_path)]) == 0
        out = capsys.readouterr().out
    finally:
        service.stop_event.set()
        thread.join(20)
    by_node = {r["node"]: r for r in rows}
    assert by_node["haul-road"]["outbox_recovered_from"] == kept
    assert by_node["river-up"]["outbox_recovered_from"] is None  # nothing to say: no field
    assert "2 online, 0 offline" in out
    (warning,) = [line for line in out.splitlines() if "WARNING: its outbox was damaged" in line]
    assert repr(kept) in warning
    assert "tsagaan/river-up" in out and out.count("WARNING: its outbox") == 1
