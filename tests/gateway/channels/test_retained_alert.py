"""The alert topic's retained copy, through the real Mosquitto (issue 18): a subscriber that comes
late to a node's `…/alert` gets an alert still active there while any is, not another rule's
all-clear; once none is, the last all-clear. The events are the real engine's, two rules raising
on one node, delivered by the real dispatcher worker and MQTT channel."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.alerts.engine import Engine
from gateway.alerts.messages import EN
from gateway.channels.base import ChannelContext, open_channel
from gateway.channels.dispatcher import Worker, in_words
from gateway.channels.mqtt import MqttOptions
from gateway.devservices import Service
from gateway.subscriber import Subscriber
from tests.alert_helpers import T0, Feed, rules
from tests.fakes.clock import FakeClock
from tests.gateway.channels.test_channels import Outbox
from tests.helpers import Listener, wait_for

DUST = {"name": "dust", "type": "threshold", "metric": "pm2_5", "limit": 50, "clear_after": "2m"}
WATER = {"name": "water", "type": "threshold", "metric": "turbidity", "limit": 5, "clear_after": "2m"}


def _events() -> list[dict[str, Any]]:
    """Water raises, dust raises, dust clears (water still raised): the all-clear comes last, so
    the broker kept the alert that ended."""
    clock = FakeClock(T0)
    feed = Feed(Engine(rules(DUST, WATER), clock=clock), clock)
    end = feed.series("haul-road", T0, [9.0] * 3, metric="turbidity")
    end = feed.series("haul-road", end, [90.0] * 3)
    feed.series("haul-road", end, [10.0] * 5)
    got = [(e.rule, e.state) for e in feed.events]
    assert got == [("water", "raised"), ("dust", "raised"), ("dust", "cleared")], got
    return [e.to_json() for e in feed.events]


@pytest.fixture
def broker(mosquitto: Service, prefix: str) -> Iterator[Subscriber]:
    sub = Subscriber("127.0.0.1", mosquitto.port, f"test-retained-{prefix}")
    sub.start([f"{prefix}/v1/+/+/alert/ack"])  # as the gateway's own connection
    assert sub.connected.wait(10)
    yield sub
    sub.publish(f"{prefix}/v1/tsagaan/haul-road/alert", b"", retain=True, wait_s=5)  # keep nothing
    sub.stop()


def _worker(sub: Subscriber, prefix: str, active: list[dict[str, Any]] | None = None) -> Worker:
    ctx = ChannelContext(
        publish=lambda t, p: sub.publish(t, p, wait_s=5),
        prefix=prefix,
        publish_retained=lambda t, p: sub.publish(t, p, retain=True, wait_s=5),
        active=lambda opts: list(active or []),
    )
    opts = MqttOptions(type="mqtt")
    return Worker(opts, open_channel(opts, ctx), Outbox(), FakeClock(T0), threading.Event())


def _late_subscriber(port: int, topic: str) -> tuple[str, str, bool]:
    """(rule, state, retained) of what a subscriber that comes now receives on `topic`."""
    listener = Listener(port, topic)
    try:
        (doc,) = wait_for(lambda: listener.payloads("/alert"), 10)
        retained = [r for t, _, r in listener.messages if t == topic]
        return str(doc["rule"]), str(doc["state"]), retained == [True]
    finally:
        listener.close()


def test_a_late_subscriber_gets_the_alert_still_active_not_another_rules_all_clear(
    mosquitto: Service, prefix: str, broker: Subscriber
) -> None:
    topic = f"{prefix}/v1/tsagaan/haul-road/alert"
    water, dust, dust_cleared = _events()
    worker = _worker(broker, prefix)
    live = Listener(mosquitto.port, topic)
    try:
        for row, event in enumerate((water, dust), start=1):
            worker.process((row, event))
        assert _late_subscriber(mosquitto.port, topic) == ("dust", "raised", True)
        worker.process((3, dust_cleared))
        # what came later than the all-clear: the water alert, still raised, kept by the broker
        assert _late_subscriber(mosquitto.port, topic) == ("water", "raised", True)
        # a subscriber that was there all along got the all-clear, then the water alert again
        said = wait_for(lambda: [(d["rule"], d["state"]) for d in live.payloads("/alert")][3:] or None, 10)
        assert said == [("water", "raised")]
        assert [(d["rule"], d["state"]) for d in live.payloads("/alert")][:3] == [
            ("water", "raised"),
            ("dust", "raised"),
            ("dust", "cleared"),
        ]
        # the water alert's all-clear: nothing left active, so that is what a newcomer reads
        water_cleared = {**water, "state": "cleared", "ts": dust_cleared["ts"]}
        worker.process((4, water_cleared))
        assert _late_subscriber(mosquitto.port, topic) == ("water", "cleared", True)
    finally:
        live.close()


def test_when_the_broker_keeps_the_active_alert_an_all_clear_goes_out_unretained(
    mosquitto: Service, prefix: str, broker: Subscriber
) -> None:
    topic = f"{prefix}/v1/tsagaan/haul-road/alert"
    water, dust, dust_cleared = _events()
    worker = _worker(broker, prefix)
    live = Listener(mosquitto.port, topic)
    try:
        for row, event in enumerate((dust, water, dust_cleared), start=1):  # water raised last
            worker.process((row, event))
        said = wait_for(lambda: [(d["rule"], d["state"]) for d in live.payloads("/alert")][2:] or None, 10)
        assert said == [("dust", "cleared")]  # told live, once: nothing published twice
        assert _late_subscriber(mosquitto.port, topic) == ("water", "raised", True)
    finally:
        live.close()


def test_after_a_restart_the_alerts_active_at_start_keep_the_retained_copy(
    mosquitto: Service, prefix: str, broker: Subscriber
) -> None:
    """The gateway restarted with the water alert active (its latest event, as the store keeps it
    and the channel words it): the dust alert's all-clear does not replace it for a newcomer."""
    topic = f"{prefix}/v1/tsagaan/haul-road/alert"
    water, dust, dust_cleared = _events()
    _worker(broker, prefix).process((1, dust))  # before the restart: the broker keeps dust's raise
    worker = _worker(broker, prefix, active=[in_words(water, EN), in_words(dust, EN)])
    worker.process((2, dust_cleared))
    assert _late_subscriber(mosquitto.port, topic) == ("water", "raised", True)
