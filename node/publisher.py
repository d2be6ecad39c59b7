"""The node's MQTT adapter, and the only module of the node that imports paho.

Callbacks run on paho's network thread; they only turn paho's objects into our plain values, enqueue
them and wake the main thread. The main thread owns the outbox and decides what to send.

The session is persistent (MQTT v5, clean start off, a session expiry): paho keeps unacknowledged
QoS 1 messages across reconnections and resends them with their original mids, and the broker keeps
our session while we are away. Reconnection waits are drawn from a jittered backoff (node.backoff),
handed to paho's own reconnect loop before each wait, so a whole site does not come back in step.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from typing import cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from node.backoff import Backoff

log = logging.getLogger(__name__)

STATUS_ROOM = 8
STILL_OFFLINE_LOG_S = 3600.0
"""While the broker stays unreachable, say so again at most this often (no log flood)."""


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Connected:
    """Put on the event queue at every (re)connection (the node publishes its status then)."""

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
        session_expiry_s: int = 7 * 86400,
        backoff: Backoff | None = None,
    ) -> None:
        self._host, self._port, self._keepalive = host, port, keepalive_s
        self._session_expiry_s = session_expiry_s
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.wake = threading.Event()
        """Set when there is work for the main loop: a connection, or `wake_every` acknowledgements."""
        self.wake_every = 1
        self._acks_since_wake = 0
        self._connected = threading.Event()
        self._stopping = False
        self._epoch = 0
        self._backoff = backoff or Backoff(1.0, 60.0)
        self._offline_since: float | None = None
        self._last_offline_log = 0.0
        client = _client(client_id, mqtt.MQTTv5, username, password, tls, ca_file, client_cert)
        if will:
            client.will_set(will.topic, will.payload, qos=1, retain=True)
        # The forwarder keeps at most max_inflight readings in paho; the spare room is for status
        # messages. The outbox is the queue, not paho's memory.
        client.max_inflight_messages_set(max_inflight + STATUS_ROOM)
        client.max_queued_messages_set(max_inflight + STATUS_ROOM)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        self._set_next_wait()

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._session_expiry_s
        self._client.connect_async(
            self._host, self._port, keepalive=self._keepalive, clean_start=False, properties=props
        )
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None:
        """Hand one message to paho at QoS 1: the mid its `Acked` will carry, or None if offline."""
        if not self._connected.is_set():
            return None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        # NO_CONN: the connection dropped just now, but paho keeps the message and sends it, with
        # this mid, once reconnected. Anything else (queue full) means paho did not take it.
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return None
        return int(info.mid)

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def _set_next_wait(self) -> None:
        """paho waits `min_delay` before its next attempt when the delay was just set (it resets its
        own doubling), so our jittered value is exactly what it waits. paho annotates the delays as
        int but sleeps on them as floats."""
        wait_s = self._backoff.next()
        self._client.reconnect_delay_set(min_delay=cast(int, wait_s), max_delay=cast(int, wait_s))

    def _went_offline(self, why: object) -> None:
        now = time.monotonic()
        if self._offline_since is None:
            self._offline_since = self._last_offline_log = now
            if not self._stopping:
                log.warning(
                    "broker %s:%d unreachable (%s); readings wait in the outbox, retrying",
                    self._host,
                    self._port,
                    why,
                )
        elif now - self._last_offline_log >= STILL_OFFLINE_LOG_S:
            self._last_offline_log = now
            log.warning(
                "broker %s:%d still unreachable after %.0f min (%s)",
                self._host,
                self._port,
                (now - self._offline_since) / 60,
                why,
            )

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        self._went_offline("connection failed")
        self._set_next_wait()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        if reason_code.is_failure:
            self._went_offline(f"refused: {reason_code}")
            return
        log.info(
            "connected to broker %s:%d (session %s)",
            self._host,
            self._port,
            "resumed" if flags.session_present else "new",
        )
        self._offline_since = None
        self._backoff.reset()
        self._epoch += 1
        self._connected.set()
        self.events.put(Connected(self._epoch))
        self.wake.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        self._connected.clear()
        self._went_offline(reason_code)
        self._set_next_wait()

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        self.events.put(Acked(mid))
        self._acks_since_wake += 1
        if self._acks_since_wake >= self.wake_every:
            self._acks_since_wake = 0
            self.wake.set()


def _client(
    client_id: str,
    protocol: MQTTProtocolVersion,
    username: str | None,
    password: str | None,
    tls: bool,
    ca_file: str | None,
    client_cert: tuple[str, str] | None,
) -> mqtt.Client:
    """A paho client with our credentials and TLS (verifying the broker, optionally a client cert),
    the same for the running node and for `minewatch-node check`."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if username:
        client.username_pw_set(username, password)
    if tls:
        certfile, keyfile = client_cert or (None, None)
        client.tls_set(ca_certs=ca_file, certfile=certfile, keyfile=keyfile, cert_reqs=ssl.CERT_REQUIRED)
    return client


@dataclass(frozen=True, slots=True)
class BrokerProblem:
    """Why the broker did not take us: `kind` is a message id under `[check]` in contract/i18n/
    (unreachable, no_answer, refused, closed, closed_cert), `params` its values."""

    kind: str
    params: dict[str, str]


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
) -> BrokerProblem | None:
    """Connect once and leave (for `minewatch-node check`): None when the broker accepts these
    credentials, otherwise what went wrong, as a message id of `check` and its parameters."""
    where = f"{host}:{port}"
    answers: queue.SimpleQueue[ReasonCode | None] = queue.SimpleQueue()
    client = _client(client_id, mqtt.MQTTv311, username, password, tls, ca_file, client_cert)
    client.on_connect = lambda c, userdata, flags, reason_code, props: answers.put(reason_code)
    # closed before any CONNACK: under TLS, the broker refused our client certificate
    client.on_disconnect = lambda c, userdata, flags, reason_code, props: answers.put(None)
    try:
        client.connect(host, port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        return BrokerProblem("unreachable", {"where": where, "error": str(exc)})
    client.loop_start()
    try:
        reason = answers.get(timeout=timeout_s)
    except queue.Empty:
        return BrokerProblem("no_answer", {"where": where, "seconds": f"{timeout_s:g}"})
    finally:
        client.disconnect()
        client.loop_stop()
    if reason is None:  # closed before answering
        return BrokerProblem("closed_cert" if client_cert else "closed", {"where": where})
    if reason.is_failure:
        return BrokerProblem("refused", {"where": where, "reason": str(reason)})
    return None
