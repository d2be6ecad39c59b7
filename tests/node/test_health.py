"""Reconnect backoff, the clock-sync probe and systemd notification: the small parts a long-running
node depends on."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.flags import Flag
from contract.sdnotify import Notifier
from hardware.simulated import SimulatedPm, SimulatedPmOptions
from node.backoff import Backoff
from node.clocksync import ClockWatch, adjtimex_synced, parse_timedatectl, system_probe
from node.sampler import Sampler, SensorSpec


def test_backoff_doubles_with_jitter_up_to_its_cap_and_resets() -> None:
    low = Backoff(1.0, 60.0, rand=lambda: 0.0)
    high = Backoff(1.0, 60.0, rand=lambda: 0.999999)
    lows = [low.next() for _ in range(10)]
    highs = [high.next() for _ in range(10)]
    assert lows[:4] == [0.5, 1.0, 2.0, 4.0]
    assert lows[-1] == 30.0 and highs[-1] == pytest.approx(60.0)
    assert all(lo < hi for lo, hi in zip(lows, highs, strict=True))  # the jitter spreads kits apart
    low.reset()
    assert low.next() == 0.5


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="min_s"):
        Backoff(10.0, 1.0)


@pytest.mark.parametrize(
    ("text", "synced"),
    [
        ("Timezone=UTC\nLocalRTC=no\nNTP=yes\nNTPSynchronized=yes\nTimeUSec=...\n", True),
        ("NTP=yes\nNTPSynchronized=no\n", False),
        ("CanNTP=no\nNTPSynchronized=no\n", False),
    ],
)
def test_timedatectl_output_is_read(text: str, synced: bool) -> None:
    assert parse_timedatectl(text) is synced


def test_timedatectl_without_the_property_is_an_error() -> None:
    with pytest.raises(ValueError, match="NTPSynchronized"):
        parse_timedatectl("Timezone=UTC\n")


def test_the_kernel_answers_and_the_system_probe_agrees() -> None:
    # The real adjtimex(2) call on this machine: whatever the answer, both paths must give it.
    assert system_probe() is adjtimex_synced()


def test_clock_watch_asks_the_probe_sparingly() -> None:
    answers = iter([False, True])
    calls: list[float] = []
    now = {"t": 0.0}

    def probe() -> bool:
        calls.append(now["t"])
        return next(answers)

    watch = ClockWatch(probe, every_s=30, monotonic=lambda: now["t"])
    assert watch.is_synced() is False
    now["t"] = 29.0
    assert watch.is_synced() is False
    now["t"] = 30.0
    assert watch.is_synced() is True
    assert calls == [0.0, 30.0]


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(5)
    yield sock
    sock.close()


def test_notifier_sends_ready_then_watchdog_at_half_the_period(notify_socket: socket.socket) -> None:
    now = {"t": 0.0}
    env = {"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "10000000"}
    notifier = Notifier(env, monotonic=lambda: now["t"])
    assert notifier.watchdog_s == 5.0
    notifier.tick()
    assert notify_socket.recv(100) == b"READY=1"
    for t in (1.0, 4.9, 5.0, 6.0, 10.0):
        now["t"] = t
        notifier.tick()
    notifier.stopping()
    got = []
    notify_socket.setblocking(False)
    while True:
        try:
            got.append(notify_socket.recv(100))
        except BlockingIOError:
            break
    assert got == [b"WATCHDOG=1", b"WATCHDOG=1", b"STOPPING=1"]  # at t=5 and t=10


def test_notifier_is_silent_outside_systemd_and_ignores_another_pids_watchdog() -> None:
    assert not Notifier({}).enabled
    Notifier({}).tick()  # no socket: nothing happens, nothing raises
    other = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None or os.getpid() == 1
    assert other.send("READY=1") is False  # unreachable socket: reported, not raised


def test_a_clock_set_back_restarts_the_windows_instead_of_dropping_every_sample() -> None:
    t = {"now": datetime(2026, 11, 22, 10, 0, 0, 500000, tzinfo=UTC)}

    def clock() -> datetime:
        return t["now"]

    sampler = Sampler(
        [SensorSpec("pm", SimulatedPm(SimulatedPmOptions(type="simulated-pm"), clock), 1.0)], 10, clock
    )
    readings = []
    for _ in range(25):
        readings += sampler.tick(t["now"])
        t["now"] += timedelta(seconds=1)
    assert [r.ts.minute * 60 + r.ts.second for r in readings] == [10, 20]
    t["now"] -= timedelta(hours=1)  # NTP corrects a clock that booted an hour fast
    for _ in range(25):
        readings += sampler.tick(t["now"])
        t["now"] += timedelta(seconds=1)
    after = readings[2:]
    assert len(after) >= 3, "sampling goes on after the clock is set back"
    assert after[-1].ts < readings[1].ts
    assert all(m.n >= 1 for r in after[1:] for m in r.metrics.values())
    assert Flag.SENSOR_FAULT not in after[-1].flags
