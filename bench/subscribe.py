"""The gateway's MQTT layer against bare paho, side by side: CPU per message to drain a backlog.

    .venv/bin/python bench/subscribe.py [--n 50000] [--rounds 3]

Starts a private Mosquitto, and for each consumer in turn: opens its persistent session (MQTT v5,
QoS 1), goes away, publishes N readings (the payloads of bench/ingest.py) for the broker to queue,
then reconnects and measures this process's CPU time until all N have been taken. Only the
consumer runs while it is measured, so the figure is its own.

  paho        a bare paho client as the ingest benchmark's pipe uses it: `loop_start`, automatic
              acknowledgement, `on_message` copies topic and payload into a list.
  subscriber  gateway.subscriber.Subscriber as the gateway runs it: manual acknowledgement, the
              inbox, and a consumer thread that takes the inbox and acknowledges in batches of 500.

Prints CPU µs per message for each and the ratio subscriber/paho per round and as a median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.ingest import PREFIX, _payloads, _publish
from gateway import devservices
from gateway.subscriber import Message, Subscriber

TOPIC = f"{PREFIX}/v1/+/+/reading"


def _connect_props() -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 2000
    return props


def _bare_paho(port: int, client_id: str, n: int) -> float:
    got: list[tuple[str, bytes]] = []
    done = threading.Event()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        got.append((msg.topic, bytes(msg.payload)))
        if len(got) >= n:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(TOPIC, qos=1)
    cpu0 = time.process_time()
    client.connect("127.0.0.1", port, clean_start=False, properties=_connect_props())
    client.loop_start()
    if not done.wait(300):
        raise RuntimeError(f"bare paho got {len(got)} of {n}")
    cpu = time.process_time() - cpu0
    client.disconnect()
    client.loop_stop()
    return cpu


def _subscriber(port: int, client_id: str, n: int) -> float:
    sub = Subscriber("127.0.0.1", port, client_id, session_expiry_s=3600, receive_maximum=2000)
    taken = 0
    cpu0 = time.process_time()
    sub.start([TOPIC])
    batch: list[Message] = []
    deadline = time.monotonic() + 300
    while taken < n and time.monotonic() < deadline:
        msg = sub.inbox.get(timeout=0.1)
        if msg is None:
            continue
        batch.append(msg)
        taken += 1
        if len(batch) >= 500:
            sub.ack(batch)
            batch = []
    sub.ack(batch)
    cpu = time.process_time() - cpu0
    sub.stop()
    if taken < n:
        raise RuntimeError(f"subscriber got {taken} of {n}")
    return cpu


def _round(port: int, name: str, r: int, messages: list[tuple[str, bytes]]) -> float:
    client_id = f"bench-{name}-{r}"
    # open the session and its subscription, then leave: the broker queues what follows for us
    opener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    subscribed = threading.Event()
    opener.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    opener.on_connect = lambda c, u, f, rc, p: c.subscribe(TOPIC, qos=1)
    opener.connect("127.0.0.1", port, clean_start=True, properties=_connect_props())
    opener.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("could not subscribe")
    opener.disconnect()
    opener.loop_stop()
    _publish(port, messages, 20)
    time.sleep(0.5)
    run = _bare_paho if name == "paho" else _subscriber
    return run(port, client_id, len(messages)) / len(messages) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    messages = _payloads(args.n, 20)
    ratios = []
    with tempfile.TemporaryDirectory(prefix="minewatch-bench-") as tmp:
        broker = devservices.mosquitto(Path(tmp))
        broker.start()
        try:
            print(f"N = {args.n} queued readings, drained at QoS 1; CPU µs per message of this process")
            for r in range(args.rounds):
                paho_us = _round(broker.port, "paho", r, messages)
                ours_us = _round(broker.port, "subscriber", r, messages)
                ratios.append(ours_us / paho_us)
                print(
                    f"round {r + 1}: paho {paho_us:.1f} µs, subscriber {ours_us:.1f} µs, "
                    f"ratio {ratios[-1]:.2f}"
                )
        finally:
            broker.stop()
    print(f"median ratio subscriber/paho over {args.rounds} rounds: {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
