"""The subscriber's own parts: the inbox between paho's thread and the main loop (FIFO, bounded,
never a lost wake-up) and the buffered socket paho reads from."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from gateway.subscriber import Inbox, Message, _BufferedSocket


def _msg(i: int) -> Message:
    return Message(f"t/{i}", str(i).encode(), i, 1, False, time.monotonic())


def test_messages_come_out_in_the_order_they_went_in() -> None:
    inbox = Inbox(10)
    for i in range(5):
        assert inbox.put(_msg(i), lambda: False)
    assert len(inbox) == 5
    assert [m.mid for m in iter(inbox.get_nowait, None)] == [0, 1, 2, 3, 4]
    assert inbox.get_nowait() is None


def test_a_full_inbox_holds_the_producer_until_the_consumer_makes_room() -> None:
    inbox = Inbox(3)
    for i in range(3):
        inbox.put(_msg(i), lambda: False)
    done = threading.Event()

    def produce() -> None:
        inbox.put(_msg(3), lambda: False)
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    assert not done.wait(0.3)  # blocked: back-pressure, not growth
    assert len(inbox) == 3
    first = inbox.get_nowait()
    assert first is not None and first.mid == 0
    assert done.wait(2.0)  # woken by the room made, well before its one-second re-check
    t.join()
    assert [m.mid for m in iter(inbox.get_nowait, None)] == [1, 2, 3]


def test_a_producer_waiting_on_a_full_inbox_gives_up_when_told() -> None:
    inbox = Inbox(1)
    inbox.put(_msg(0), lambda: False)
    stopping = threading.Event()
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(inbox.put(_msg(1), stopping.is_set)))
    t.start()
    time.sleep(0.1)
    stopping.set()
    t.join(5)
    assert result == [False]
    assert len(inbox) == 1  # the message it gave up on was not appended (the broker redelivers it)


def test_a_waiting_consumer_wakes_when_a_message_arrives() -> None:
    inbox = Inbox(10)
    threading.Timer(0.2, lambda: inbox.put(_msg(7), lambda: False)).start()
    started = time.monotonic()
    got = inbox.get(timeout=5.0)
    assert got is not None and got.mid == 7
    assert time.monotonic() - started < 2.0
    assert inbox.get(timeout=0.05) is None  # and times out when nothing comes


def test_no_message_is_lost_or_doubled_between_two_busy_threads() -> None:
    inbox = Inbox(50)
    n = 20_000
    seen: list[int] = []

    def consume() -> None:
        while len(seen) < n:
            m = inbox.get(timeout=2.0)
            if m is None:
                return
            seen.append(m.mid)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(n):
        inbox.put(_msg(i), lambda: False)
    t.join(30)
    assert seen == list(range(n))


def test_buffered_socket_hands_out_small_reads_from_one_large_one() -> None:
    # a real socket pair: paho's reads (1 byte, 1 byte, the rest) served from one kernel read
    a, b = socket.socketpair()
    try:
        b.setblocking(False)
        buffered = _BufferedSocket(b)
        a.sendall(b"\x30\x05hello\x30\x02hi")
        time.sleep(0.05)
        assert buffered.recv(1) == b"\x30"
        assert buffered.pending() == 10  # the rest waits in memory, where select cannot see it
        assert buffered.recv(1) == b"\x05"
        assert buffered.recv(5) == b"hello"
        assert buffered.recv(100) == b"\x30\x02hi"  # a short read: no more than it holds
        assert buffered.pending() == 0
        with pytest.raises(BlockingIOError):  # nothing buffered, nothing on the socket
            buffered.recv(1)
        a.close()
        assert buffered.recv(1) == b""  # the peer closed: paho sees the connection lost
    finally:
        b.close()
