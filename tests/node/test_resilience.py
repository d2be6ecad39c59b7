"""The node as a real subprocess against a real Mosquitto (and, where it matters, the real gateway and
influxd): broker outages, kill -9 in the middle of a replay, the last will, SIGTERM under systemd's
notify protocol. Intervals are 1 s and numbers small, so each test runs in seconds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contract.flags import Flag
from contract.metrics import Metric
from contract.status import NodeStatus
from contract.wire import format_ts
from gateway import devservices
from node.config import load
from node.outbox import Outbox
from node.sampler import MetricReading, Reading
from node.service import to_payload
from tests.helpers import Influx, Listener, gateway_toml, node_toml, publish, spawn, wait_for


def _outbox(path: Path) -> tuple[int, int]:
    """(depth, last_seq) read by a connection of our own, as a second process would."""
    db = sqlite3.connect(path, timeout=30)
    try:
        (depth,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        row = db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        return int(depth), int(row[0]) if row else 0  # (no reading committed yet)
    except sqlite3.OperationalError:  # not created yet
        return 0, 0
    finally:
        db.close()


def _statuses(listener: Listener) -> list[dict[str, Any]]:
    return listener.payloads("/status")


@pytest.fixture
def own_broker() -> Iterator[devservices.Service]:
    """A broker of this test's own on a fixed port, so it can be stopped and started again; with
    persistence, as production runs it, so what it queued for the gateway survives the restart."""
    # Mosquitto started as root drops to its own user, which must be able to write here.
    workdir = Path(tempfile.mkdtemp(prefix="mw-broker-"))
    workdir.chmod(0o777)
    broker = devservices.mosquitto(
        workdir, port=devservices.free_port(), extra=f"persistence true\npersistence_location {workdir}/\n"
    )
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def _start_gateway(
    workdir: Path, port: int, influx: Influx, prefix: str, env: dict[str, str] | None = None
) -> Any:
    cfg = gateway_toml(
        workdir / "gateway.toml", mqtt_port=port, influx_url=influx.url, db=influx.db, prefix=prefix
    )
    gateway = spawn(["gateway.cli", "run", "--config", str(cfg)], workdir / "gateway.log", env=env)

    def listens() -> bool:  # a refused probe proves the subscription is in place
        publish(port, f"{prefix}/v1/probe/probe/reading", b"{}")
        return "rejected message" in (workdir / "gateway.log").read_text()

    wait_for(listens, 30, "the gateway to subscribe")
    return gateway


def test_a_broker_outage_loses_nothing_and_influxdb_stores_each_reading_once(
    own_broker: devservices.Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(workdir / "gateway-notify.sock"))
    notify.settimeout(30)
    env = {"NOTIFY_SOCKET": str(workdir / "gateway-notify.sock"), "WATCHDOG_USEC": "2000000"}
    gateway = _start_gateway(workdir, own_broker.port, influx, prefix, env)
    assert notify.recv(100) == b"READY=1"  # the gateway under systemd: ready, then the watchdog
    assert notify.recv(100) == b"WATCHDOG=1"
    notify.close()
    listener = Listener(own_broker.port, f"{prefix}/v1/s/n/#")
    cfg = node_toml(
        workdir / "node.toml",
        site="s",
        node="n",
        port=own_broker.port,
        prefix=prefix,
        top="status_interval_s = 2\n",
        mqtt="reconnect_max_s = 2\n",
    )
    outbox = load(cfg).buffer.path
    node = spawn(["node.cli", "run", "--config", str(cfg)], workdir / "node.log")
    try:
        wait_for(lambda: influx.count() >= 2, 30, "readings stored before the outage")
        own_broker.stop()
        _, last_before = _outbox(outbox)
        wait_for(lambda: _outbox(outbox)[0] >= 3, 30, "readings kept in the outbox during the outage")
        taken_offline = _outbox(outbox)[1] - last_before
        own_broker.start()
        wait_for(lambda: _outbox(outbox)[0] == 0, 30, "the backlog to drain")
        wait_for(lambda: influx.count() >= _outbox(outbox)[1] - 2, 30, "the backlog in InfluxDB")
    finally:
        node.send_signal(signal.SIGTERM)
        assert node.wait(15) == 0
    _, last = _outbox(outbox)
    try:
        wait_for(lambda: influx.count() == last, 30, "every reading in InfluxDB")
        wait_for(
            lambda: any(r["state"] == "stopped" for r in influx.rows('SELECT * FROM "node_status"')),
            30,
            "the planned stop's status stored",
        )
        rows = influx.rows('SELECT "seq" FROM "reading"')
        status_rows = influx.rows('SELECT * FROM "node_status"')
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(15) == 0
        listener.close()
    assert taken_offline >= 3
    assert sorted(r["seq"] for r in rows) == list(range(1, last + 1)), "each reading once, none missing"
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)  # time order is seq order
    first_arrivals = list(dict.fromkeys(p["seq"] for p in listener.payloads()))
    assert first_arrivals == sorted(first_arrivals), "readings reach the broker in seq order"
    online = [r for r in status_rows if r["state"] == "online"]
    assert online and all(r["sensor_simulated-pm_ok"] is True for r in online)
    assert max(r["outbox_depth"] for r in online) >= 1  # a status after the outage showed the backlog
    assert all(r["outbox_dropped"] == 0 for r in online)
    assert status_rows[-1]["state"] == "stopped"


def _fill(path: Path, cfg_path: Path, count: int) -> None:
    """`count` readings of the node's own format, as if it had been offline for a long time."""
    cfg = load(cfg_path)
    box = Outbox(path, durable=False)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    metrics = {Metric.PM2_5: MetricReading(value=12.0, raw=12.0, n=60)}
    for i in range(count):
        reading = Reading(ts=start + timedelta(minutes=i), period_s=60, metrics=metrics, flags=frozenset())
        box.append(format_ts(reading.ts), lambda seq, r=reading: to_payload(cfg, seq, r).to_wire())  # type: ignore[misc]
    box.close()


def test_kill_9_in_the_middle_of_a_replay_loses_nothing_and_reuses_no_seq(
    mosquitto: devservices.Service, workdir: Path, prefix: str
) -> None:
    backlog = 8_000
    cfg = node_toml(workdir / "node.toml", site="s", node="n", port=mosquitto.port, prefix=prefix)
    outbox = load(cfg).buffer.path
    _fill(outbox, cfg, backlog)
    listener = Listener(mosquitto.port, f"{prefix}/v1/s/n/reading")
    kills = 0
    for round_ in range(4):
        node = spawn(["node.cli", "run", "--config", str(cfg)], workdir / "node.log")
        if round_ < 3:
            target = len(listener.messages) + 1500
            wait_for(lambda t=target: len(listener.messages) >= t, 60, "part of the backlog sent")  # type: ignore[misc]
            node.kill()  # SIGKILL: no flush, no goodbye
            node.wait(10)
            if _outbox(outbox)[0] > 0:
                kills += 1
        else:
            wait_for(lambda: _outbox(outbox)[0] == 0, 60, "the backlog to drain")
            node.send_signal(signal.SIGTERM)
            assert node.wait(15) == 0
    _, last = _outbox(outbox)
    payloads: dict[int, set[bytes]] = {}
    seen = [0]

    def received() -> bool:
        messages = listener.messages[seen[0] :]
        seen[0] += len(messages)
        for _topic, payload, _ in messages:
            payloads.setdefault(json.loads(payload)["seq"], set()).add(payload)
        return len(payloads) >= last

    wait_for(received, 20, "the broker to deliver the last readings")
    listener.close()
    assert kills == 3, "every kill landed mid-replay"
    assert set(payloads) == set(range(1, last + 1)), "every reading arrived"
    assert all(len(copies) == 1 for copies in payloads.values()), "a seq always means the same reading"
    assert last > backlog  # fresh readings continued the numbering
    assert "(session resumed)" in (workdir / "node.log").read_text()  # the broker kept our session
    db = sqlite3.connect(outbox)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()


def test_a_full_outbox_drops_exactly_the_counted_oldest_and_says_so(
    mosquitto: devservices.Service, workdir: Path, prefix: str
) -> None:
    dead = node_toml(
        workdir / "node.toml",
        site="s",
        node="n",
        port=devservices.free_port(),
        prefix=prefix,
        buffer="max_readings = 3\n",
    )
    outbox = load(dead).buffer.path
    node = spawn(["node.cli", "run", "--config", str(dead)], workdir / "offline.log")
    wait_for(lambda: _outbox(outbox)[1] >= 6, 40, "more readings than the outbox holds")
    node.send_signal(signal.SIGTERM)
    assert node.wait(15) == 0
    depth, last = _outbox(outbox)
    dropped = last - depth
    assert depth == 3 and dropped >= 3
    assert "outbox full (max_readings)" in (workdir / "offline.log").read_text()

    listener = Listener(mosquitto.port, f"{prefix}/v1/s/n/#")
    # Room to spare now, so nothing more is dropped while the kept readings go out.
    live = node_toml(
        workdir / "node.toml",
        site="s",
        node="n",
        port=mosquitto.port,
        prefix=prefix,
        buffer="max_readings = 1000\n",
    )
    node = spawn(["node.cli", "run", "--config", str(live)], workdir / "online.log")
    try:
        wait_for(lambda: len(listener.payloads()) >= 3, 30, "the kept readings")
        wait_for(lambda: _statuses(listener), 30, "a status")
    finally:
        node.send_signal(signal.SIGTERM)
        assert node.wait(15) == 0
        listener.close()
    seqs = [p["seq"] for p in listener.payloads()]
    assert seqs[:3] == list(range(dropped + 1, last + 1)), "exactly the oldest were dropped"
    assert min(seqs) == dropped + 1
    status = NodeStatus.model_validate(_statuses(listener)[0])
    assert status.outbox is not None and status.outbox.dropped == dropped


def test_last_will_on_kill_9_then_online_again_and_sigterm_under_systemd(
    mosquitto: devservices.Service, workdir: Path, prefix: str
) -> None:
    status_topic = f"{prefix}/v1/s/will/status"
    cfg = node_toml(workdir / "node.toml", site="s", node="will", port=mosquitto.port, prefix=prefix)

    def retained() -> dict[str, Any] | None:
        """What a newcomer sees: the retained status, if any arrives within a few seconds."""
        probe = Listener(mosquitto.port, status_topic)
        try:
            found = wait_for(lambda: [json.loads(p) for _, p, r in probe.messages if r], 5, "retained")
        except AssertionError:
            return None
        finally:
            probe.close()
        return found[-1]  # type: ignore[no-any-return]

    listener = Listener(mosquitto.port, status_topic)
    node = spawn(["node.cli", "run", "--config", str(cfg)], workdir / "node.log")
    wait_for(lambda: any(s["state"] == "online" for s in _statuses(listener)), 30, "online")
    node.kill()
    node.wait(10)
    wait_for(lambda: _statuses(listener)[-1] == {"state": "offline"}, 30, "the last will")
    assert retained() == {"state": "offline"}

    notify_path = workdir / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(30)
    env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "1000000"}
    node = spawn(["node.cli", "run", "--config", str(cfg)], workdir / "node.log", env=env)
    try:
        assert notify.recv(100) == b"READY=1"
        assert notify.recv(100) == b"WATCHDOG=1"  # from the main loop, every 0.5 s
        wait_for(lambda: (retained() or {}).get("state") == "online", 30, "online again")
    finally:
        node.send_signal(signal.SIGTERM)
        code = node.wait(10)
    messages = []
    notify.settimeout(1)
    try:
        while True:
            messages.append(notify.recv(100))
    except TimeoutError:
        pass
    notify.close()
    listener.close()
    assert code == 0
    assert b"STOPPING=1" in messages
    assert retained() == {"state": "stopped"}  # SIGTERM: a planned stop, not the last will
    status = NodeStatus.model_validate(next(s for s in _statuses(listener) if s["state"] == "online"))
    assert status.version and status.started and status.outbox is not None
    assert set(status.sensors) == {"simulated-pm"}
    assert status.clock_synced is not None


def test_readings_are_flagged_while_the_clock_is_unsynced_or_goes_backwards(
    mosquitto: devservices.Service, workdir: Path, prefix: str
) -> None:
    import threading

    from node.service import NodeService

    cfg = load(node_toml(workdir / "node.toml", site="s", node="clk", port=mosquitto.port, prefix=prefix))
    listener = Listener(mosquitto.port, f"{prefix}/v1/s/clk/#")

    def run(synced: bool, shift: timedelta, readings: int) -> int:
        """Run the node until it took `readings`; how many it published in all (with its last)."""
        service = NodeService(cfg, clock=lambda: datetime.now(UTC) + shift, clock_probe=lambda: synced)
        taken: list[int] = []
        service.on_reading = lambda seq, r: taken.append(seq)
        thread = threading.Thread(target=service.run)
        thread.start()
        try:
            wait_for(lambda: len(taken) >= readings, 20, f"{readings} readings")
        finally:
            service.stop_event.set()
            thread.join(15)
        return len(taken)

    # what the first run published must all have arrived before the second begins to count
    first = run(synced=False, shift=timedelta(0), readings=2)
    wait_for(lambda: len(listener.payloads()) >= first, 20, "the first run's readings")
    n_unsynced = len(listener.payloads())
    assert n_unsynced >= 2
    run(synced=True, shift=timedelta(seconds=5), readings=2)  # clear of the last run's final window
    n_synced = len(listener.payloads())
    run(synced=True, shift=timedelta(hours=-1), readings=2)  # NTP set the clock back an hour
    wait_for(lambda: len(listener.payloads()) >= n_synced + 2, 20, "the last readings")
    listener.close()
    readings = listener.payloads()
    flagged = [Flag.CLOCK_UNSYNCED.value in r["flags"] for r in readings]
    assert all(flagged[:n_unsynced])
    assert not any(flagged[n_unsynced:n_synced])
    assert all(flagged[n_synced:]), "a ts earlier than the previous reading's is flagged"
    assert readings[n_synced]["ts"] < readings[n_synced - 1]["ts"]
    assert [r["seq"] for r in readings] == list(range(1, len(readings) + 1))
    states = [s.get("clock_synced") for s in _statuses(listener) if s["state"] == "online"]
    assert states[0] is False and states[-1] is True


def test_the_node_publishes_over_tls_and_refuses_a_broker_it_cannot_verify(
    workdir: Path, prefix: str
) -> None:
    import threading

    import trustme

    from node.service import NodeService

    ca, stranger = trustme.CA(), trustme.CA()
    certs = Path(tempfile.mkdtemp(prefix="mw-tls-"))
    certs.chmod(0o755)  # Mosquitto started as root reads them as its own user
    server = ca.issue_cert("127.0.0.1")
    server.private_key_and_cert_chain_pem.write_to_path(str(certs / "server.pem"))
    ca.cert_pem.write_to_path(str(certs / "ca.pem"))
    stranger.cert_pem.write_to_path(str(certs / "stranger.pem"))
    for f in certs.iterdir():
        f.chmod(0o644)
    tls_port = devservices.free_port()
    broker = devservices.mosquitto(
        certs,
        extra=f"listener {tls_port} 127.0.0.1\ncertfile {certs}/server.pem\nkeyfile {certs}/server.pem\n",
    )
    broker.start()
    listener = Listener(broker.port, f"{prefix}/v1/#")
    services = {}
    for name, ca_file in (("trusting", "ca.pem"), ("wary", "stranger.pem")):
        cfg = load(
            node_toml(
                workdir / f"{name}.toml",
                site="s",
                node=name,
                port=tls_port,
                prefix=prefix,
                mqtt=f'tls = true\nca_file = "{certs / ca_file}"\n',
            )
        )
        services[name] = NodeService(cfg, clock_probe=lambda: True)
    threads = [threading.Thread(target=s.run) for s in services.values()]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(listener.payloads()) >= 2, 30, "readings over TLS")
        wait_for(
            lambda: _outbox(workdir / "wary-outbox.sqlite")[0] >= 2, 30, "readings kept by the wary node"
        )
    finally:
        for s in services.values():
            s.stop_event.set()
        for t in threads:
            t.join(15)
        listener.close()
        broker.stop()
        shutil.rmtree(certs, ignore_errors=True)
    assert {p["node"] for p in listener.payloads()} == {"trusting"}
    assert _outbox(workdir / "trusting-outbox.sqlite")[0] == 0
    assert _outbox(workdir / "wary-outbox.sqlite")[0] >= 2  # never sent to a broker it cannot verify


def test_a_hung_sensor_read_stops_the_watchdog_pings(
    mosquitto: devservices.Service, workdir: Path, prefix: str
) -> None:
    """The pings come from the main loop itself, so a read that never returns starves systemd's
    watchdog, which then kills and restarts the node. Here a PMS5003 on a pty that sends nothing,
    with the longest frame timeout, holds the loop in its first read."""
    master, slave = os.openpty()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(workdir / "notify.sock"))
    notify.settimeout(30)
    cfg = node_toml(
        workdir / "node.toml",
        site="s",
        node="hung",
        port=mosquitto.port,
        prefix=prefix,
        sensors=f'[[sensors]]\ntype = "pms5003"\nport = "{os.ttyname(slave)}"\nframe_timeout_s = 60\n',
    )
    env = {"NOTIFY_SOCKET": str(workdir / "notify.sock"), "WATCHDOG_USEC": "400000"}
    node = spawn(["node.cli", "run", "--config", str(cfg)], workdir / "node.log", env=env)
    try:
        assert notify.recv(100) == b"READY=1"
        notify.settimeout(3)  # 15 watchdog periods of 0.2 s
        with pytest.raises(TimeoutError):
            notify.recv(100)
        assert node.poll() is None  # alive but stuck: exactly what WatchdogSec is for
    finally:
        node.kill()
        node.wait(10)
        notify.close()
        os.close(master)
        os.close(slave)
