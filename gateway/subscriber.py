"""The gateway's MQTT adapter, and the only module of the gateway that imports paho.

A persistent session (fixed client id, clean start off, a session expiry) at QoS 1 with manual
acknowledgement: the broker keeps and redelivers whatever we have not acknowledged, and we
acknowledge a message only once its reading is stored. `on_message` runs on paho's network thread;
it copies the message into our own type and puts it on a bounded queue. When the queue is full the
put blocks, which stops paho reading the socket: back-pressure to the broker, not memory growth.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from typing import NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)


class Message(NamedTuple):  # a tuple, not a frozen dataclass: built for every message, on paho's thread
    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_at: float  # time.monotonic()
    epoch: int = 0  # which connection it came on: a mid means nothing on another connection


class Subscriber:
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        topics: list[str],
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        keepalive_s: int = 30,
        session_expiry_s: int = 7 * 86400,
        receive_maximum: int = 2000,
        queue_size: int = 5000,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self._host, self._port, self._keepalive = host, port, keepalive_s
        self._topics = topics
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self.inbox: queue.Queue[Message] = queue.Queue(maxsize=queue_size)
        self.connected = threading.Event()
        self._stopping = False
        self._epoch = 0
        self._epoch_lock = threading.Lock()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if username:
            client.username_pw_set(username, password)
        if tls:
            client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
        if will:  # the gateway's status turns "down" when it vanishes without saying so
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._session_expiry_s
        # Without this the broker would keep at most its default in-flight window (20) of
        # unacknowledged messages for us, and batching would stall on it.
        props.ReceiveMaximum = self._receive_maximum
        self._client.connect_async(
            self._host, self._port, keepalive=self._keepalive, clean_start=False, properties=props
        )
        self._client.loop_start()

    def ack(self, messages: list[Message]) -> None:
        """Acknowledge messages received on the current connection. One received before a reconnection
        is not acknowledged: the broker resends it under the resumed session (we store it again,
        harmlessly), and its old mid may by now name a different, unprocessed message."""
        with self._epoch_lock:
            for msg in messages:
                if msg.qos > 0 and msg.epoch == self._epoch:
                    self._client.ack(msg.mid, msg.qos)

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, wait_s: float = 0.0
    ) -> bool:
        """Queue a message (paho sends it); with `wait_s`, wait that long for the broker's PUBACK."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        if wait_s > 0:
            try:
                info.wait_for_publish(wait_s)
            except (RuntimeError, ValueError):
                return False
            return info.is_published()
        return True

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker %s:%d refused the connection: %s", self._host, self._port, reason_code)
            return
        log.info(
            "connected to broker %s:%d (session %s)",
            self._host,
            self._port,
            "resumed" if flags.session_present else "new",
        )
        with self._epoch_lock:
            self._epoch += 1
        # Subscribe every time: a broker that lost our session (restart without persistence)
        # would otherwise leave us connected and deaf.
        client.subscribe([(t, 1) for t in self._topics])
        self.connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        if not self._stopping:
            log.warning("lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        item = Message(
            topic=msg.topic,
            payload=bytes(msg.payload),
            mid=int(msg.mid),
            qos=int(msg.qos),
            retain=bool(msg.retain),
            received_at=time.monotonic(),
            epoch=self._epoch,
        )
        while not self._stopping:
            try:
                self.inbox.put(item, timeout=1.0)
                return
            except queue.Full:
                continue  # unacknowledged: the broker redelivers it if we stop now


def read_retained(
    host: str,
    port: int,
    topic: str,
    *,
    timeout_s: float = 5.0,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    ca_file: str | None = None,
) -> bytes | None:
    """The retained message on `topic`, or None when there is none (or no broker) within timeout_s."""
    got: queue.Queue[bytes | None] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)

    def on_connect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
        if rc.is_failure:
            got.put(None)
        else:
            c.subscribe(topic, qos=1)

    def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: object) -> None:
        # retained messages are sent before the SUBACK is processed here; give them a moment
        threading.Timer(0.5, lambda: got.put(None)).start()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            got.put(bytes(msg.payload))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=10)
    except OSError:
        return None
    client.loop_start()
    try:
        return got.get(timeout=timeout_s)
    except queue.Empty:
        return None
    finally:
        client.disconnect()
        client.loop_stop()
