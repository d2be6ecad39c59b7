"""Two ways a site's record could miss the hub, each closed and run with real processes (the site's
Mosquitto and influxd, `run` with `[forward]`, the hub's Mosquitto over TLS, `hub run`, PostgreSQL):

- an alert raised in the instant the site gateway is killed (SIGKILL): the kill lands after the
  site recorded the alert and before the forwarder's outbox has it, held open by a write lock
  the test takes on forward.sqlite; after the restart the hub has the event exactly once;
- a site whose InfluxDB holds unsigned readings from before it kept their `period_s` joins a hub:
  each of them, and every other reading, arrives once, the old ones kept without a period.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from gateway import devservices
from gateway.points import to_line
from tests.alert_helpers import reading
from tests.gateway.hub.test_forward_e2e import (
    HUB_PREFIX,
    HubBroker,
    _hub_rows,
    _join,
    _site_count,
    hub_broker,  # noqa: F401  (the fixture)
)
from tests.helpers import Influx, gateway_toml, publish_many, spawn, wait_for, wait_gateway_ready

NOW = datetime.now(UTC).replace(microsecond=0)


def _gateway(tmp_path: Path, broker: HubBroker, mqtt_port: int, influx: Influx, prefix: str,
             extra: str = "") -> Path:  # fmt: skip
    return gateway_toml(
        tmp_path / "gateway.toml", mqtt_port=mqtt_port, influx_url=influx.url, db=influx.db,
        prefix=prefix,
        extra=f'[forward]\nsite = "tsagaan"\ntopic_prefix = "{HUB_PREFIX}"\n'
        f'identity_file = "{tmp_path / "site-identity.pem"}"\nbatch_size = 25\nack_timeout_s = 5\n'
        f'[forward.mqtt]\nhost = "127.0.0.1"\nport = {broker.tls_port}\nclient_id = "site-{prefix}"\n'
        f'username = "tsagaan"\npassword_file = "{broker.password("tsagaan")}"\n'
        f'tls = true\nca_file = "{broker.dir / "ca" / "ca.crt"}"\n{extra}',
    )  # fmt: skip


def _send(port: int, prefix: str, readings: list[object]) -> None:
    publish_many(port, [
        (f"{prefix}/v1/tsagaan/a/reading", r.model_dump_json(by_alias=True).encode())  # type: ignore[attr-defined]
        for r in readings
    ])  # fmt: skip


def _sqlite(path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


def _hub_alerts(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT id, state FROM alert_event ORDER BY id, state").fetchall()


@contextmanager
def _running(*commands: tuple[list[str], Path]) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [spawn(argv, log) for argv, log in commands]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_an_alert_raised_as_the_gateway_is_killed_reaches_the_hub_once(
    tmp_path: Path, mosquitto: devservices.Service, hub_broker: HubBroker, influx: Influx,  # noqa: F811
    pg: str, prefix: str,
) -> None:  # fmt: skip
    hub_cfg = _join(tmp_path, hub_broker, pg, prefix)
    gw_cfg = _gateway(tmp_path, hub_broker, mosquitto.port, influx, prefix,
                      '[[alerts.rules]]\nname = "pm25-instant"\ntype = "threshold"\nmetric = "pm2_5"\n'
                      "limit = 25.0\n")  # fmt: skip
    data = tmp_path / "gateway-data"
    outbox, alerts = data / "forward.sqlite", data / "alerts.sqlite"
    hub_log, gw_log = tmp_path / "hub.log", tmp_path / "gateway.log"
    live = [reading("a", NOW - timedelta(minutes=10 - i), 10.0 + i) for i in range(6)]
    live[5] = reading("a", live[5].ts, 30.0)  # over the limit: raises
    gw_run = (["gateway.cli", "run", "--config", str(gw_cfg)], gw_log)
    with _running((["gateway.cli", "hub", "run", "--config", str(hub_cfg)], hub_log), gw_run) as procs:
        gateway = procs[1]
        wait_gateway_ready(mosquitto.port, prefix, influx)
        _send(mosquitto.port, prefix, live[:5])
        wait_for(lambda: len(_hub_rows(pg, "tsagaan")) == 5, 60, "the first readings at the hub")
        wait_for(lambda: _sqlite(outbox, "SELECT count(*) FROM item") == [(0,)], 30, "every ack back")

        # Hold the outbox's write lock: the alert is recorded at the site, and cannot enter the
        # outbox until the lock goes, so the kill lands exactly in the window.
        lock = sqlite3.connect(outbox, isolation_level=None, timeout=30)
        lock.execute("BEGIN IMMEDIATE")
        try:
            _send(mosquitto.port, prefix, live[5:])
            raised = "SELECT alert_id FROM events WHERE state = 'raised'"
            (alert_id,) = wait_for(lambda: _sqlite(alerts, raised), 30, "the alert recorded at the site")[0]
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(10)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert _sqlite(outbox, "SELECT count(*) FROM item WHERE kind = 'alert'") == [(0,)]  # not there
        assert _hub_alerts(pg) == []

        procs[1] = spawn(*gw_run)  # the restart: it does not raise the alert again (its record holds it)
        wait_for(lambda: _hub_alerts(pg), 60, "the alert event at the hub")
        wait_for(lambda: len(_hub_rows(pg, "tsagaan")) == 6, 60, "the reading that raised it at the hub")
        wait_for(lambda: _sqlite(outbox, "SELECT count(*) FROM item") == [(0,)], 30, "every ack back")
        wait_for(lambda: _sqlite(alerts, "SELECT count(*) FROM outbox") == [(0,)], 30, "every delivery done")
        assert _hub_alerts(pg) == [(alert_id, "raised")]  # once
        assert _sqlite(alerts, "SELECT alert_id, state FROM events") == [(alert_id, "raised")]
        assert _hub_rows(pg, "tsagaan") == sorted(("a", r.seq, "unsigned") for r in live)
    print(gw_log.read_text()[-3000:], hub_log.read_text()[-3000:])


def _as_earlier_version(line: str) -> str:
    """The line protocol an earlier version wrote for an unsigned reading: no `period_s`."""
    assert ",period_s=60i" in line
    return line.replace(",period_s=60i", "")


def test_a_site_with_unsigned_history_joins_and_every_reading_arrives_once(
    tmp_path: Path, mosquitto: devservices.Service, hub_broker: HubBroker, influx: Influx,  # noqa: F811
    pg: str, prefix: str,
) -> None:  # fmt: skip
    hub_cfg = _join(tmp_path, hub_broker, pg, prefix)
    # two days ago, by an earlier version (no period_s, two readings missing in between), and
    # yesterday, by this one; all unsigned and stored before the site joined
    old = [reading("a", NOW - timedelta(days=2, minutes=-i), float(i)) for i in range(40) if i not in (7, 8)]
    recent = [reading("a", NOW - timedelta(days=1, minutes=-i), float(i)) for i in range(30)]
    influx.write([_as_earlier_version(to_line(r)) for r in old] + [to_line(r) for r in recent])
    assert influx.rows('SELECT count("period_s") FROM "reading"')[0]["count"] == len(recent)

    gw_cfg = _gateway(tmp_path, hub_broker, mosquitto.port, influx, prefix)
    gw_log, hub_log = tmp_path / "gateway.log", tmp_path / "hub.log"
    live = [reading("a", NOW - timedelta(minutes=20 - i), 50.0 + i) for i in range(20)]
    with _running((["gateway.cli", "hub", "run", "--config", str(hub_cfg)], hub_log),
                  (["gateway.cli", "run", "--config", str(gw_cfg)], gw_log)):  # fmt: skip
        wait_gateway_ready(mosquitto.port, prefix, influx)
        _send(mosquitto.port, prefix, live)
        everything = old + recent + live
        wait_for(lambda: len(_hub_rows(pg, "tsagaan")) >= len(everything), 90, "every reading at the hub")
        wait_for(lambda: _sqlite(tmp_path / "gateway-data" / "forward.sqlite", "SELECT count(*) FROM item")
                 == [(0,)], 30, "every ack back")  # fmt: skip
        assert _hub_rows(pg, "tsagaan") == sorted(("a", r.seq, "unsigned") for r in everything)  # each once
        assert _site_count(influx) == len(everything) == 88
        with psycopg.connect(pg) as conn:
            rows = conn.execute("SELECT seq, payload FROM reading WHERE site = 'tsagaan'").fetchall()
        periods = {int(seq): payload.get("period_s") for seq, payload in rows}
        assert {periods[r.seq] for r in old} == {None}  # kept as the site holds them: without a period
        assert {periods[r.seq] for r in recent + live} == {60}
        doc = next(json.loads(json.dumps(p)) for s, p in rows if s == old[0].seq)
        assert doc["metrics"] == {"pm2_5": {"value": 0.0, "n": 60}} and doc["flags"] == []
    assert "not a stored reading" not in gw_log.read_text()
