"""The gateway's MQTT adapter, and the only module of the gateway that imports paho.

A persistent session (fixed client id, clean start off, a session expiry) at QoS 1 with manual
acknowledgement: the broker keeps and redelivers whatever we have not acknowledged, and we
acknowledge a message only once its reading is stored. On paho's network thread each QoS 1 PUBLISH
is decoded into our own `Message` (`_Client._handle_publish`; paho's `on_message` for anything else)
and appended to a bounded `Inbox`. When the inbox is full the append waits, which stops paho reading
the socket: back-pressure to the broker, not memory growth.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

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


class Inbox:
    """A bounded FIFO between paho's thread (`put`) and one consumer (`get_nowait`, `get`).

    A deque rather than `queue.Queue`: the queue takes a lock and notifies a condition on every put
    and get, for every message; a deque's append and popleft are atomic without one (bench/
    subscribe.py measures the MQTT layer against bare paho). The events are set only when the other
    side says it waits (the flag is raised before it looks again, so no wake-up is missed)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[Message] = deque()
        self._arrived = threading.Event()
        self._room = threading.Event()
        self._getter_waits = False
        self._putter_waits = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Message, give_up: Callable[[], bool]) -> bool:
        """Append, waiting while the inbox is full; False (not appended) once `give_up()` says so."""
        items = self._items
        while len(items) >= self.maxsize:
            self._room.clear()
            self._putter_waits = True
            if len(items) >= self.maxsize:
                if give_up():
                    self._putter_waits = False
                    return False
                self._room.wait(1.0)
            self._putter_waits = False
        items.append(item)
        if self._getter_waits:
            self._arrived.set()
        return True

    def get_nowait(self) -> Message | None:
        try:
            item = self._items.popleft()
        except IndexError:
            return None
        if self._putter_waits:
            self._room.set()
        return item

    def get(self, timeout: float) -> Message | None:
        """The next message, waiting up to `timeout` seconds for one."""
        item = self.get_nowait()
        if item is None:
            self._arrived.clear()
            self._getter_waits = True
            item = self.get_nowait()
            if item is None:
                self._arrived.wait(timeout)
                item = self.get_nowait()
            self._getter_waits = False
        return item


class _BufferedSocket:
    """A TCP socket read in large chunks, handed to paho a few bytes at a time.

    paho reads each packet with three or four `recv` calls (the command byte, the length bytes one by
    one, then the body) and a `select` before each packet: about five system calls per reading.
    This reads up to 64 KiB at once and answers those small `recv`s from memory. paho already knows
    sockets that hold data the kernel no longer shows `select` (TLS sockets): it asks `pending()`
    and then does not wait. TLS and websocket connections are left as paho makes them."""

    _CHUNK = 65536

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos < len(buf):
            self._pos = pos + size
            return buf[pos : pos + size]  # what the buffer holds, up to size: paho handles short reads
        data = self._sock.recv(max(size, self._CHUNK))  # raises BlockingIOError as the socket would
        if len(data) <= size:
            self._buf, self._pos = b"", 0
            return data
        self._buf, self._pos = data, size
        return data[:size]

    def pending(self) -> int:
        return max(len(self._buf) - self._pos, 0)

    def send(self, data: bytes | bytearray) -> int:
        return self._sock.send(data)

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)


PUBACK = 0x40
_PUBACK = struct.Struct("!BBH")
OnPublish = Callable[[str, bytes, int, int, bool], None]
"""topic, payload, mid, qos, retain"""


class _Client(mqtt.Client):
    """paho's client, reading plain TCP through `_BufferedSocket` and handing QoS 1 PUBLISH packets
    straight to `on_publish_qos1`.

    Both replace private paho methods (`_create_socket`, `_handle_publish`) that paho itself calls;
    should a paho release drop either, the override is simply never called and paho's own path runs,
    as before (with `on_message`, which the Subscriber sets as well)."""

    on_publish_qos1: OnPublish | None = None

    def _create_socket(self) -> Any:  # paho's SocketLike exists only for its type checking
        sock = super()._create_socket()
        if type(sock) is socket.socket:  # TCP or a unix socket; not TLS, not websockets
            return _BufferedSocket(sock)
        return sock

    def puback_all(self, mids: list[int]) -> None:
        """The PUBACKs of `mids` as one queued write (MQTT 5.0 section 3.4: fixed header 0x40,
        remaining length 2, packet id; no reason code means success).

        paho queues one packet (a dict and a `send` call) per acknowledgement; at a thousand
        readings a batch its thread fell behind and held 18,000 of them at once (bench/ingest.py:
        the gateway's peak memory grew with the readings sent). Should paho drop `_packet_queue`,
        the acknowledgements go one by one through its own `ack`."""
        queue = getattr(self, "_packet_queue", None)
        if queue is None:
            for mid in mids:
                self.ack(mid, 1)
            return
        for i in range(0, len(mids), 4096):  # 16 KiB a write at most
            part = mids[i : i + 4096]
            queue(PUBACK, b"".join(_PUBACK.pack(PUBACK, 2, mid) for mid in part), 0, 1)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Handle every whole packet already read, not one per `select` as paho does."""
        rc = super().loop_read(max_packets)
        sock = self._sock
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and isinstance(sock, _BufferedSocket) and sock.pending():
            if self._sock is not sock:
                break
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        """A QoS 1 PUBLISH (MQTT 5) decoded here; anything else, or anything odd, paho's way.

        paho decodes every PUBLISH's properties into a Properties object and wraps the message in
        an MQTTMessage before `on_message` copies it out: together a third of its thread's time per
        message in the ingest benchmark (docs/operations.md). The gateway reads no publish property,
        so they are skipped (MQTT 5.0 section 3.3.2: topic, packet id, property length, properties,
        payload). With manual acknowledgement paho does nothing else for a QoS 1 message."""
        handler = self.on_publish_qos1
        header = self._in_packet["command"]
        if handler is None or header & 0x06 != 0x02 or self._protocol != mqtt.MQTTv5:
            return super()._handle_publish()
        data = self._in_packet["packet"]
        end = 2 + ((data[0] << 8) | data[1]) if len(data) >= 2 else 0
        # property length: a variable byte integer of at most four bytes
        at = end + 2
        props = shift = 0
        while at < len(data) and shift <= 21:
            byte = data[at]
            props |= (byte & 0x7F) << shift
            at += 1
            if not byte & 0x80:
                break
            shift += 7
        else:
            return super()._handle_publish()  # too short or malformed: paho says which
        start = at + props
        if end <= 2 or start > len(data):
            return super()._handle_publish()
        try:
            topic = data[2:end].decode("utf-8")
        except UnicodeDecodeError:
            return super()._handle_publish()
        handler(topic, bytes(data[start:]), (data[end] << 8) | data[end + 1], 1, bool(header & 0x01))
        return MQTTErrorCode.MQTT_ERR_SUCCESS


class Subscriber:
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
        keepalive_s: int = 30,
        session_expiry_s: int = 7 * 86400,
        receive_maximum: int = 2000,
        queue_size: int = 5000,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self._host, self._port, self._keepalive = host, port, keepalive_s
        self._topics: list[str] = []
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self.inbox = Inbox(queue_size)
        self.connected = threading.Event()
        self._stopping = False
        self._epoch = 0
        self._epoch_lock = threading.Lock()
        client = _Client(
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
        client.on_publish_qos1 = self._on_publish
        self._client = client

    def start(self, topics: list[str]) -> None:
        """Connect and subscribe to `topics` (again on every reconnection). They come here, not to
        the constructor, because the gateway's loop knows them only once every plug-in has said
        which topic kinds it handles, and plug-ins that publish are handed the subscriber first."""
        self._topics = list(topics)
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
            ones = [msg.mid for msg in messages if msg.qos == 1 and msg.epoch == self._epoch]
            if ones:
                self._client.puback_all(ones)
            for msg in messages:
                if msg.qos > 1 and msg.epoch == self._epoch:
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

    def _on_publish(self, topic: str, payload: bytes, mid: int, qos: int, retain: bool) -> None:
        # positional: a NamedTuple built from keywords costs twice as much, on every message
        self.inbox.put(
            Message(topic, payload, mid, qos, retain, time.monotonic(), self._epoch), self._is_stopping
        )

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        """What `_Client._handle_publish` leaves to paho (QoS 0, say) arrives here."""
        self._on_publish(msg.topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.retain))

    def _is_stopping(self) -> bool:
        """When the inbox is full, paho's thread waits for room until this says stop: a message
        given up on is unacknowledged, and the broker redelivers it."""
        return self._stopping


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
    got = read_all_retained(
        host,
        port,
        topic,
        timeout_s=timeout_s,
        username=username,
        password=password,
        tls=tls,
        ca_file=ca_file,
        first_only=True,
    )
    return got[0][1] if got else None


def read_all_retained(
    host: str,
    port: int,
    topic_filter: str,
    *,
    timeout_s: float = 5.0,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    ca_file: str | None = None,
    first_only: bool = False,
) -> list[tuple[str, bytes]] | None:
    """Every retained (topic, payload) under `topic_filter` (wildcards allowed), in arrival order;
    None when the broker did not answer within timeout_s. The broker sends retained messages right
    after the SUBACK, so half a second after it is taken as the end of them."""
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    done = threading.Event()
    answered = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)

    def on_connect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
        if rc.is_failure:
            done.set()
        else:
            c.subscribe(topic_filter, qos=1)

    def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: object) -> None:
        answered.set()
        # retained messages are sent before the SUBACK is processed here; give them a moment
        threading.Timer(0.5, done.set).start()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            with lock:
                got.append((msg.topic, bytes(msg.payload)))
            if first_only:
                answered.set()
                done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=10)
    except OSError:
        return None
    client.loop_start()
    try:
        done.wait(timeout_s)
        with lock:
            return list(got) if answered.is_set() else None
    finally:
        client.disconnect()
        client.loop_stop()
