"""The subscriber's own PUBLISH decoding (`_Client._handle_publish`) must read every packet as paho
does: the same topic, payload, packet id and retain flag, whatever properties come with it, and
anything it does not decode itself goes paho's way (QoS 0, a malformed packet)."""

from __future__ import annotations

import time
from typing import Any

import paho.mqtt.client as mqtt
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import devservices
from gateway.subscriber import Message, Subscriber, _Client

Decoded = tuple[str, bytes, int, int, bool]


def _packet(topic: bytes, payload: bytes, mid: int, qos: int, retain: bool, props: bytes) -> dict[str, Any]:
    body = len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"") + props + payload
    return {"command": 0x30 | (qos << 1) | int(retain), "packet": bytearray(body)}


def _ours(packet: dict[str, Any]) -> list[Decoded] | str:
    client = _Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    got: list[Decoded] = []
    client.on_publish_qos1 = lambda *args: got.append(args)
    client.on_message = lambda c, u, m: got.append(
        ("paho", m.topic, bytes(m.payload), m.mid, m.qos, m.retain)
    )
    client._in_packet = packet
    try:
        client._handle_publish()
    except Exception as exc:  # paho's MalformedPacket, say: the same for both
        return type(exc).__name__
    return got


def _paho(packet: dict[str, Any]) -> list[Decoded] | str:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    got: list[Decoded] = []
    client.on_message = lambda c, u, m: got.append((m.topic, bytes(m.payload), m.mid, m.qos, bool(m.retain)))
    client._in_packet = packet
    try:
        client._handle_publish()
    except Exception as exc:
        return type(exc).__name__
    return got


# what MQTT allows in a property's string: no null, no U+FEFF (paho refuses them, as a broker would)
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00\ufeff"), max_size=20)


def _properties(draw: st.DrawFn) -> bytes:
    props = Properties(PacketTypes.PUBLISH)
    if draw(st.booleans()):
        props.MessageExpiryInterval = draw(st.integers(0, 2**32 - 1))
    if draw(st.booleans()):
        props.ContentType = draw(_TEXT)
    if draw(st.booleans()):
        props.UserProperty = [(draw(_TEXT), draw(_TEXT) * 10) for _ in range(3)]
    if draw(st.booleans()):
        props.CorrelationData = draw(st.binary(max_size=300))  # a property length over 127: two bytes
    return bytes(props.pack())


@st.composite
def publishes(draw: st.DrawFn) -> dict[str, Any]:
    topic = draw(st.text(min_size=1, max_size=60).filter(lambda t: "\x00" not in t)).encode()
    return _packet(
        topic,
        draw(st.binary(max_size=5000)),
        draw(st.integers(1, 65535)),
        1,
        draw(st.booleans()),
        _properties(draw),
    )


@settings(max_examples=300)
@given(publishes())
def test_a_qos1_publish_is_read_as_paho_reads_it(packet: dict[str, Any]) -> None:
    ours = _ours(packet)
    assert ours == _paho(packet)
    assert ours and ours[0][0] != "paho"  # decoded by us, not handed on


@settings(max_examples=300)
@given(publishes(), st.data())
def test_a_cut_or_garbled_packet_goes_paho_s_way(packet: dict[str, Any], data: st.DataObject) -> None:
    body = packet["packet"]
    cut = data.draw(st.integers(0, len(body)))
    flips = data.draw(
        st.lists(st.tuples(st.integers(0, max(len(body) - 1, 0)), st.integers(0, 255)), max_size=3)
    )
    garbled = bytearray(body[:cut])
    for at, value in flips:
        if at < len(garbled):
            garbled[at] = value
    broken = {"command": packet["command"], "packet": garbled}
    ours, theirs = _ours(broken), _paho(broken)
    if isinstance(theirs, list):
        # paho reads it: so must we, as it does (or hand it to paho)
        assert ours == theirs or ours == [("paho", *theirs[0])], (ours, theirs)
    elif isinstance(ours, list) and ours[0][0] != "paho":
        # We took a packet paho refuses: only its properties can be what paho objects to, and we
        # skip them as their declared length says (the broker checks them on the way in).
        topic, payload = ours[0][0].encode(), ours[0][1]
        assert garbled[2 : 2 + len(topic)] == topic and garbled.endswith(payload)
        assert 2 + len(topic) + 2 + 1 <= len(garbled) - len(payload)
    else:
        assert ours == theirs  # refused the same way


def test_qos0_is_left_to_paho() -> None:
    packet = _packet(b"minewatch/v1/a/b/status", b"{}", 0, 0, True, b"\x00")
    assert _ours(packet) == [("paho", "minewatch/v1/a/b/status", b"{}", 0, 0, True)]


def test_through_mosquitto_with_properties_and_a_retained_message(mosquitto: devservices.Service) -> None:
    topics = ["minewatch/v1/ölgii/node-1/reading", "minewatch/v1/a/b/status"]
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("origin", "x" * 300)]
    props.MessageExpiryInterval = 3600
    pub.publish(topics[1], b"retained", qos=1, retain=True, properties=props).wait_for_publish(5)
    sub = Subscriber("127.0.0.1", mosquitto.port, f"test-sub-{time.monotonic_ns()}")
    sub.start(["minewatch/v1/#"])
    try:
        assert sub.connected.wait(10)
        time.sleep(0.3)  # the subscription is in place
        sent = [(topics[0], bytes([i % 256]) * i, False) for i in (0, 1, 200, 4000, 70_000)]
        for topic, payload, _ in sent:
            pub.publish(topic, payload, qos=1, properties=props).wait_for_publish(5)
        got: list[Message] = []
        deadline = time.monotonic() + 10
        while len(got) < 1 + len(sent) and time.monotonic() < deadline:
            msg = sub.inbox.get(0.5)
            if msg is not None:
                got.append(msg)
        assert [(m.topic, m.payload, m.retain) for m in got] == [(topics[1], b"retained", True), *sent]
        assert all(m.qos == 1 and m.mid > 0 for m in got)
        sub.ack(got)
    finally:
        sub.stop()
        pub.publish(topics[1], b"", qos=1, retain=True).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()
