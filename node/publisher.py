"""The node's MQTT adapter, and the only module of the node that imports paho.

Callbacks run on paho's network thread; they only turn paho's objects into our plain values and
enqueue them. The main thread owns the outbox and decides what to send.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Connected:
    """Put on the event queue at every (re)connection: mids sent before it may never be acked."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Acked:
    mid: int


Event = Connected | Acked


class Publisher:
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        client_cert: tuple[str, str] | None = None,
        keepalive_s: int = 30,
        max_inflight: int = 100,
        will: Will | None = None,
    ) -> None:
        self._host, self._port, self._keepalive = host, port, keepalive_s
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._connected = threading.Event()
        self._stopping = False
        self._epoch = 0
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if username:
            client.username_pw_set(username, password)
        if tls:
            certfile, keyfile = client_cert or (None, None)
            client.tls_set(ca_certs=ca_file, certfile=certfile, keyfile=keyfile, cert_reqs=ssl.CERT_REQUIRED)
        if will:
            client.will_set(will.topic, will.payload, qos=1, retain=True)
        client.max_inflight_messages_set(max_inflight)
        client.max_queued_messages_set(max_inflight)  # the outbox is the queue, not paho's memory
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        self._client.connect_async(self._host, self._port, keepalive=self._keepalive)
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None:
        """Hand one message to paho at QoS 1: the mid its `Acked` will carry, or None if offline."""
        if not self._connected.is_set():
            return None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None
        return int(info.mid)

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
        properties: object,
    ) -> None:
        if reason_code.is_failure:
            log.warning("broker %s:%d refused the connection: %s", self._host, self._port, reason_code)
            return
        log.info("connected to broker %s:%d", self._host, self._port)
        self._epoch += 1
        self._connected.set()
        self.events.put(Connected(self._epoch))

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        if self._connected.is_set() and not self._stopping:
            log.warning("lost the broker (%s); readings wait in the outbox", reason_code)
        self._connected.clear()

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        self.events.put(Acked(mid))


def probe_broker(
    host: str,
    port: int,
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    ca_file: str | None = None,
    client_cert: tuple[str, str] | None = None,
    timeout_s: float = 5.0,
) -> str | None:
    """Connect once and leave (for `minewatch-node check`): None when the broker accepts these
    credentials, otherwise what went wrong in plain words."""
    answers: queue.SimpleQueue[ReasonCode] = queue.SimpleQueue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    if username:
        client.username_pw_set(username, password)
    if tls:
        certfile, keyfile = client_cert or (None, None)
        client.tls_set(ca_certs=ca_file, certfile=certfile, keyfile=keyfile, cert_reqs=ssl.CERT_REQUIRED)
    client.on_connect = lambda c, userdata, flags, reason_code, props: answers.put(reason_code)
    try:
        client.connect(host, port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        return f"cannot reach the broker at {host}:{port} ({exc}): is it running, and [mqtt] host/port right?"
    client.loop_start()
    try:
        reason = answers.get(timeout=timeout_s)
    except queue.Empty:
        return f"no answer from {host}:{port} in {timeout_s:g} s: a firewall, or not an MQTT broker?"
    finally:
        client.disconnect()
        client.loop_stop()
    if reason.is_failure:
        return f"the broker at {host}:{port} refused us: {reason}: check [mqtt] username and password_file"
    return None
