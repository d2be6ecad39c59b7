"""A site gateway forwarding to a hub, every part real: the site's Mosquitto and influxd, the
gateway (`run` with `[forward]`), the hub's own persistent Mosquitto, `hub run` and PostgreSQL.

What was stored before forwarding began is backfilled; live readings follow; the hub's broker is
stopped for a while (the link cut) and started again (restarted), the hub is killed with SIGKILL
mid-stream, and the site gateway is killed with SIGKILL while it forwards; at the end every reading
stored at the site is at the hub exactly once, verified with the key the site vouched for, and the
counts at the site and the hub are the same.
"""

from __future__ import annotations

import getpass
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from contract.hub import ForwardBatch, ForwardedKey, forward_topic
from contract.signing import Signer
from gateway import devservices
from gateway.points import to_line
from gateway.trust.provision import register
from tests.alert_helpers import reading
from tests.helpers import (
    ROOT,
    Influx,
    gateway_toml,
    publish,
    publish_many,
    spawn,
    wait_for,
    wait_gateway_ready,
)

HUB_PREFIX = "hubtest"
NOW = datetime.now(UTC).replace(microsecond=0)


def _cli(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@dataclass
class HubBroker:
    """The hub's Mosquitto from `hub broker-config`: TLS for the sites, loopback for the hub."""

    service: devservices.Service
    dir: Path
    tls_port: int

    @property
    def port(self) -> int:
        return self.service.port

    def password(self, name: str) -> Path:
        return self.dir / f"{name}.password"


@pytest.fixture
def hub_broker(tmp_path: Path) -> Iterator[HubBroker]:
    port, tls_port = devservices.free_port(), devservices.free_port()
    broker_dir = tmp_path / "hub-broker"
    hub_cfg = _hub_toml(tmp_path / "hub.toml", port, "dbname=unused")
    _cli("hub", "broker-config", "--config", str(hub_cfg), "--out", str(broker_dir), "--port", str(port),
         "--tls-port", str(tls_port), "--hostname", "127.0.0.1", "--run-as", getpass.getuser())  # fmt: skip
    conf = broker_dir / "mosquitto.conf"
    conf.write_text(conf.read_text().replace(f"listener {tls_port}\n", f"listener {tls_port} 127.0.0.1\n"))
    for site in ("tsagaan", "ulaan"):
        _cli("hub", "site-account", "--config", str(hub_cfg), "--broker", str(broker_dir), "--site", site)
    argv = [devservices.find_binary("mosquitto"), "-c", str(conf)]
    broker = devservices.Service("mosquitto", argv, port, broker_dir, "tcp")
    broker.start()
    yield HubBroker(broker, broker_dir, tls_port)
    broker.stop()


def _hub_toml(path: Path, port: int, dsn: str) -> Path:
    path.write_text(
        f'topic_prefix = "{HUB_PREFIX}"\n[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
        f'client_id = "hub-{path.parent.name[-12:]}"\nusername = "minewatch-hub"\n'
        f'password_file = "{path.parent / "hub-broker" / "minewatch-hub.password"}"\n'
        f'[database]\ndsn = "{dsn}"\n'
    )
    return path


def _publish_as(broker: HubBroker, site: str, topic: str, payload: bytes) -> None:
    publish(broker.port, topic, payload, username=site, password=broker.password(site).read_text().strip())


def _site_count(influx: Influx) -> int:
    rows = influx.rows('SELECT count("seq") FROM "reading" WHERE "site" = \'tsagaan\'')
    return int(rows[0]["count"]) if rows else 0


def _in_flight(data_dir: Path) -> int:
    """Readings the forwarder has sent in a batch whose ack has not come (docs/region.md)."""
    import sqlite3

    with sqlite3.connect(data_dir / "forward.sqlite") as conn:
        query = "SELECT count(*) FROM item WHERE batch IS NOT NULL AND kind = 'stored'"
        return int(conn.execute(query).fetchone()[0])


def _hub_rows(dsn: str, site: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT node, seq, verdict FROM reading WHERE site = %s ORDER BY node, seq", [site]
        ).fetchall()


def _join(tmp_path: Path, broker: HubBroker, pg: str, prefix: str) -> Path:
    """A hub with one jurisdiction and the site tsagaan joined; returns hub.toml."""
    hub_cfg = _hub_toml(tmp_path / "hub.toml", broker.port, pg)
    _cli("hub", "init", "--config", str(hub_cfg))
    _cli("hub", "jurisdiction", "--config", str(hub_cfg), "--id", "soum", "--name", "Soum",
         "--role", f"j_{prefix}")  # fmt: skip
    identity = _cli("hub", "identity", "--out", str(tmp_path / "site-identity.pem")).strip()
    _cli("hub", "site", "--config", str(hub_cfg), "--id", "tsagaan", "--jurisdiction", "soum",
         "--identity-key", identity)  # fmt: skip
    return hub_cfg


def test_every_stored_reading_reaches_the_hub_once(
    tmp_path: Path, mosquitto: devservices.Service, hub_broker: HubBroker, influx: Influx,
    pg: str, prefix: str,
) -> None:  # fmt: skip
    hub_cfg = _join(tmp_path, hub_broker, pg, prefix)

    signer = Signer.generate()
    keys = tmp_path / "keys"
    register(keys, "tsagaan", "a", signer, now=NOW - timedelta(days=30))
    # stored before forwarding began: three days ago, to be backfilled
    old = [signer.sign(reading("a", NOW - timedelta(days=3, minutes=-i), float(i))) for i in range(60)]
    influx.write([to_line(r) for r in old])

    gw_cfg = gateway_toml(
        tmp_path / "gateway.toml", mqtt_port=mosquitto.port, influx_url=influx.url, db=influx.db,
        prefix=prefix,
        extra=f'[trust]\nkeys_dir = "{keys}"\n'
        f'[forward]\nsite = "tsagaan"\ntopic_prefix = "{HUB_PREFIX}"\n'
        f'identity_file = "{tmp_path / "site-identity.pem"}"\n'
        f"batch_size = 25\nack_timeout_s = 5\n"
        f'[forward.mqtt]\nhost = "127.0.0.1"\nport = {hub_broker.tls_port}\nclient_id = "site-{prefix}"\n'
        f'username = "tsagaan"\npassword_file = "{hub_broker.password("tsagaan")}"\n'
        f'tls = true\nca_file = "{hub_broker.dir / "ca" / "ca.crt"}"\n'
        # raised by live[26]; one raised in the very instant of a SIGKILL: test_forward_gaps.py
        '[[alerts.rules]]\nname = "pm25-instant"\ntype = "threshold"\nmetric = "pm2_5"\nlimit = 25.0\n',
    )  # fmt: skip
    hub_log, gw_log = tmp_path / "hub.log", tmp_path / "gateway.log"
    hub = spawn(["gateway.cli", "hub", "run", "--config", str(hub_cfg)], hub_log)
    gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], gw_log)
    try:
        wait_gateway_ready(mosquitto.port, prefix, influx)
        live = [signer.sign(reading("a", NOW - timedelta(minutes=80 - i), float(i))) for i in range(80)]

        def send(batch: list[object]) -> None:
            publish_many(mosquitto.port, [
                (f"{prefix}/v1/tsagaan/a/reading", r.model_dump_json(by_alias=True).encode())  # type: ignore[attr-defined]
                for r in batch
            ])  # fmt: skip

        status = {"state": "online", "version": "0.1.0", "lat": 43.1105, "lon": 106.8503}
        publish(mosquitto.port, f"{prefix}/v1/tsagaan/a/status", json.dumps(status).encode())
        send(live[:20])
        wait_for(
            lambda: len(_hub_rows(pg, "tsagaan")) >= 80, 60, "backfill and first live readings at the hub"
        )

        hub_broker.service.stop()  # the link is cut
        send(live[20:40])
        wait_for(lambda: _site_count(influx) >= 100, 30, "readings stored at the site meanwhile")
        hub_broker.service.start()

        send(live[40:60])
        hub.send_signal(signal.SIGKILL)  # mid-stream
        hub.wait(10)
        # the site gateway killed while forwarding: the hub is down, so what it forwarded since is
        # unacknowledged in its outbox (and some of it waits at the hub's broker, to be stored once)
        wait_for(lambda: _site_count(influx) >= 120, 30, "those readings stored at the site")
        wait_for(lambda: _in_flight(tmp_path / "gateway-data") > 0, 30, "batches sent, not acknowledged")
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        send(live[60:])  # the site's broker keeps them for the gateway's session
        gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], gw_log)
        hub = spawn(["gateway.cli", "hub", "run", "--config", str(hub_cfg)], hub_log)

        expected = sorted(("a", r.seq, "verified") for r in old + live)
        wait_for(lambda: len(_hub_rows(pg, "tsagaan")) >= len(expected), 90, "every reading at the hub")
        assert _hub_rows(pg, "tsagaan") == expected  # each once, each verified
        assert _site_count(influx) == len(_hub_rows(pg, "tsagaan")) == 140  # the counts compared
        assert _hub_rows(pg, "probe") == []  # another site's readings stay at the site
        # the node's status (and its position) and the alert raised at the site came along
        with psycopg.connect(pg) as conn:
            wait_for(lambda: conn.execute("SELECT count(*) FROM alert_event").fetchone() == (1,), 30, "alert")
            alert = conn.execute("SELECT id, state, payload->>'value' FROM alert_event").fetchone()
            at = "SELECT ST_Y(location::geometry), ST_X(location::geometry) FROM node"
            where = conn.execute(at).fetchone()
            states = conn.execute("SELECT state FROM node_status WHERE node = 'a'").fetchall()
        assert alert is not None and alert[0].startswith("tsagaan.a.pm25-instant.") and alert[1] == "raised"
        assert float(alert[2]) == 26.0
        assert where == pytest.approx((43.1105, 106.8503)) and states == [("online",)]
    finally:
        for proc in (gateway, hub):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(gw_log.read_text()[-3000:], hub_log.read_text()[-3000:])


def test_the_hub_refuses_what_a_site_may_not_send(
    tmp_path: Path, hub_broker: HubBroker, pg: str, prefix: str
) -> None:
    hub_cfg = _hub_toml(tmp_path / "hub.toml", hub_broker.port, pg)
    _cli("hub", "init", "--config", str(hub_cfg))
    _cli("hub", "jurisdiction", "--config", str(hub_cfg), "--id", "soum", "--name", "Soum",
         "--role", f"j_{prefix}")  # fmt: skip
    site_id = Signer.generate()
    from contract.signing import public_b64

    _cli("hub", "site", "--config", str(hub_cfg), "--id", "tsagaan", "--jurisdiction", "soum",
         "--identity-key", public_b64(site_id.private.public_key()))  # fmt: skip
    node, intruder = Signer.generate(), Signer.generate()
    good_key, stray = _record(node, "a"), _record(intruder, "b")
    hub = spawn(["gateway.cli", "hub", "run", "--config", str(hub_cfg)], tmp_path / "hub.log")
    try:
        topic = forward_topic(HUB_PREFIX, "tsagaan")
        edited = node.sign(reading("a", NOW - timedelta(minutes=1), 4.0)).model_copy(update={"seq": 999})
        batches = [
            # a key vouched by the site's identity, then one by nobody the hub knows
            ForwardBatch(site="tsagaan", batch=1, keys=[ForwardedKey.vouched(good_key, site_id.private)]),
            ForwardBatch(site="tsagaan", batch=2, keys=[ForwardedKey.vouched(stray, intruder.private)]),
            ForwardBatch(site="tsagaan", batch=3, readings=[
                node.sign(reading("a", NOW, 1.0)),                  # stored
                intruder.sign(reading("b", NOW, 2.0)),              # its key was not vouched
                node.sign(reading("a", NOW, 3.0, site="ulaan")),    # another site's reading
                edited,                                             # changed after signing
            ]),
            ForwardBatch(site="tsagaan", batch=4, readings=[node.sign(reading("a", NOW, 1.0))]),  # a replay
        ]  # fmt: skip
        # the hub must be subscribed before anything is published: its session starts at first connect
        wait_for(lambda: "taking batches" in (tmp_path / "hub.log").read_text(), 30, "hub")
        time.sleep(0.5)  # its subscription, after the log line
        for b in batches:
            _publish_as(hub_broker, "tsagaan", topic, b.model_dump_json(by_alias=True).encode())
        # ulaan's account sends tsagaan's batch on its own topic; tsagaan may not use ulaan's topic at
        # all (the broker's ACL drops it: the hub never sees it)
        replay = batches[3].model_dump_json().encode()
        _publish_as(hub_broker, "ulaan", forward_topic(HUB_PREFIX, "ulaan"), replay)
        _publish_as(hub_broker, "tsagaan", forward_topic(HUB_PREFIX, "ulaan"), replay)
        _publish_as(hub_broker, "tsagaan", topic, b"{not json")

        def rejects() -> dict[str, int]:
            with psycopg.connect(pg) as conn:
                rows = conn.execute("SELECT reason, count(*) FROM reject GROUP BY reason").fetchall()
            return {str(r[0]): int(r[1]) for r in rows}

        wait_for(lambda: sum(rejects().values()) >= 6, 30, "every refusal kept")
        assert rejects() == {
            "key_not_vouched": 1, "unknown_key": 1, "wrong_site": 2, "bad_signature": 1, "malformed": 1,
        }  # fmt: skip
        assert _hub_rows(pg, "tsagaan") == [("a", reading("a", NOW, 1.0).seq, "verified")]
        assert _hub_rows(pg, "ulaan") == []
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(20)


def _record(signer: Signer, node: str) -> dict[str, object]:
    from contract.signing import public_b64

    return json.loads(json.dumps({
        "kid": signer.kid, "site": "tsagaan", "node": node,
        "public_key": public_b64(signer.private.public_key()), "created": "2026-01-01T00:00:00Z",
        "status": "active", "since": None,
    }))  # fmt: skip
