"""A batch's acknowledgements go to the broker as one write (gateway/subscriber.py `puback_all`):
against a real Mosquitto, what was acknowledged is not sent again to the resumed session, and what
was not, is."""

from __future__ import annotations

import time

from gateway import devservices
from gateway.subscriber import Message, Subscriber
from tests.helpers import publish_many, wait_for


def _drain(sub: Subscriber, want: int, timeout_s: float = 30.0) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        msg = sub.inbox.get(timeout=0.5)
        if msg is not None:
            got.append(msg)
    return got


def test_acknowledged_messages_are_not_redelivered_and_the_others_are(
    mosquitto: devservices.Service, prefix: str
) -> None:
    topic = f"{prefix}/v1/tsagaan/ack-test/reading"
    client_id = f"ack-{prefix}"[:64]
    first = Subscriber("127.0.0.1", mosquitto.port, client_id, session_expiry_s=300)
    first.start([topic])
    wait_for(first.connected.is_set, 10, "connected")
    time.sleep(0.5)  # subscribed
    n, kept_back = 2500, 7
    publish_many(mosquitto.port, [(topic, str(i).encode()) for i in range(n)])
    got: list[Message] = []
    while len(got) < n - kept_back:  # as ingest does, a batch at a time (the broker sends 2,000
        batch = _drain(first, min(1000, n - kept_back - len(got)))  # before it waits for acks)
        assert batch, f"nothing more after {len(got)}"
        first.ack(batch)
        got += batch
    held = _drain(first, kept_back)
    assert len(held) == kept_back
    time.sleep(1.0)  # the writes leave paho's thread
    first.stop()
    again = Subscriber("127.0.0.1", mosquitto.port, client_id, session_expiry_s=300)
    again.start([topic])
    try:
        redelivered = _drain(again, kept_back, timeout_s=15)
        time.sleep(1.0)
        redelivered += _drain(again, n, timeout_s=1)
        assert sorted(m.payload for m in redelivered) == sorted(m.payload for m in held)
        again.ack(redelivered)
    finally:
        again.stop()
