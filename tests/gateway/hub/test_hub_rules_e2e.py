"""A difference rule on the hub whose upstream reference is at another site, of another
jurisdiction: two site gateways (each with its own Mosquitto and InfluxDB database) forward to the
hub over TLS; the hub's rule compares the downstream node at one site with the reference at the
other, raises, and its alert becomes a warning to the neighbouring jurisdiction, then ends."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from gateway import devservices
from tests.alert_helpers import reading
from tests.gateway.hub.test_forward_e2e import HUB_PREFIX, HubBroker, _cli, _hub_toml, hub_broker  # noqa: F401
from tests.helpers import Influx, gateway_toml, publish_many, spawn, wait_for, wait_gateway_ready
from tests.receivers import HttpReceiver

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
RULE = """
[[rules]]
name = "border-turbidity"
type = "difference"
metric = "turbidity"
node = "w-down"
sites = ["ulaan"]
reference = "w-up"
reference_site = "tsagaan"
limit = 5.0
average = "instant"
clear_after = "0"
severity = "critical"
"""


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


def _site_gateway(
    tmp: Path, site: str, broker_port: int, influx: Influx, hub: HubBroker, prefix: str
) -> tuple[Path, str]:
    """The site gateway's config, and its identity's public key (base64: a `Path` of it would fold
    a "//" the key may hold into "/", about one key in a hundred)."""
    (tmp / site).mkdir()
    identity = _cli("hub", "identity", "--out", str(tmp / site / "identity.pem")).strip()
    cfg = gateway_toml(
        tmp / site / "gateway.toml", mqtt_port=broker_port, influx_url=influx.url, db=influx.db,
        prefix=prefix,
        extra=f'[forward]\nsite = "{site}"\ntopic_prefix = "{HUB_PREFIX}"\n'
        f'identity_file = "{tmp / site / "identity.pem"}"\nbatch_size = 25\nack_timeout_s = 5\n'
        f'[forward.mqtt]\nhost = "127.0.0.1"\nport = {hub.tls_port}\nclient_id = "site-{site}-{prefix}"\n'
        f'username = "{site}"\npassword_file = "{hub.password(site)}"\n'
        f'tls = true\nca_file = "{hub.dir / "ca" / "ca.crt"}"\n',
    )  # fmt: skip
    return cfg, identity


def test_a_rule_across_two_sites_warns_the_neighbour(
    tmp_path: Path, mosquitto: devservices.Service, influxd: devservices.Service, hub_broker: HubBroker,  # noqa: F811
    pg: str, prefix: str, receiver: HttpReceiver,
) -> None:  # fmt: skip
    hub_cfg = _hub_toml(tmp_path / "hub.toml", hub_broker.port, pg)
    hub_cfg.write_text(hub_cfg.read_text() + RULE)
    _cli("hub", "init", "--config", str(hub_cfg))
    for jid in ("soum", "aimag"):
        _cli("hub", "jurisdiction", "--config", str(hub_cfg), "--id", jid, "--name", jid.title(),
             "--role", f"j_{jid}_{prefix}")  # fmt: skip
    second = devservices.mosquitto(tmp_path / "ulaan-broker")  # the downstream site's own broker
    second.start()
    dbs = [Influx(f"http://127.0.0.1:{influxd.port}", f"t_{prefix}_{s}") for s in ("tsagaan", "ulaan")]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sites = {}
        for (site, port, db, jid) in (("tsagaan", mosquitto.port, dbs[0], "soum"),
                                      ("ulaan", second.port, dbs[1], "aimag")):  # fmt: skip
            db.create()
            cfg, identity = _site_gateway(tmp_path, site, port, db, hub_broker, prefix)
            _cli("hub", "site", "--config", str(hub_cfg), "--id", site, "--jurisdiction", jid,
                 "--identity-key", identity)  # fmt: skip
            sites[site] = (cfg, port, db)
        # the upstream site's soum hears of it when the border station reads over the reference
        channel = f'{{"type": "webhook", "url": "{receiver.url}/w", "language": "en", "retries": 0}}'
        _cli("hub", "contact", "--config", str(hub_cfg), "--jurisdiction", "soum", "--rank", "1",
             "--name", "Duty officer", "--channel", channel)  # fmt: skip
        _cli("hub", "warn-rule", "--config", str(hub_cfg), "--site", "ulaan", "--rule", "border-turbidity",
             "--neighbour", "soum")  # fmt: skip
        hub_log = tmp_path / "hub.log"
        procs.append(spawn(["gateway.cli", "hub", "run", "--config", str(hub_cfg)], hub_log))
        for site, (cfg, port, db) in sites.items():
            procs.append(spawn(["gateway.cli", "run", "--config", str(cfg)], tmp_path / f"{site}.log"))
            wait_gateway_ready(port, prefix, db)

        def send(site: str, node: str, values: list[float], start: datetime) -> None:
            _, port, _ = sites[site]
            publish_many(port, [
                (f"{prefix}/v1/{site}/{node}/reading",
                 reading(node, start + timedelta(minutes=i), v, metric="turbidity", site=site)
                 .model_dump_json(by_alias=True).encode())
                for i, v in enumerate(values)
            ])  # fmt: skip

        def at_hub(site: str) -> int:
            with psycopg.connect(pg) as conn:
                row = conn.execute("SELECT count(*) FROM reading WHERE site = %s", [site]).fetchone()
            return int(row[0]) if row else 0

        start = NOW - timedelta(minutes=30)
        send("tsagaan", "w-up", [10.0] * 20, start)  # upstream, at the soum's site
        wait_for(lambda: at_hub("tsagaan") == 20, 60, "the reference's readings at the hub")
        send("ulaan", "w-down", [12.0] * 10 + [30.0] * 5, start)  # at the aimag's border station
        wait_for(lambda: at_hub("ulaan") == 15, 60, "the downstream readings at the hub")

        def events() -> list[tuple[object, ...]]:
            with psycopg.connect(pg) as conn:
                return conn.execute(
                    "SELECT site, node, state, payload->>'value', payload->>'message' FROM alert_event"
                    " WHERE payload->>'rule' = 'border-turbidity' ORDER BY at"
                ).fetchall()

        wait_for(lambda: len(events()) == 1, 30, "the hub's rule raised")
        [(site, node, raised, value, message)] = events()
        assert (site, node, raised) == ("ulaan", "w-down", "raised")
        assert float(str(value)) == 20.0 and "above tsagaan/w-up" in str(message)
        wait_for(lambda: receiver.json_bodies(), 30, "the warning at the soum")
        [warned] = receiver.json_bodies()
        assert warned["action"] == "warning" and warned["neighbour"] == "soum"
        assert warned["alert"]["site"] == "ulaan" and warned["alert"]["rule"] == "border-turbidity"
        assert warned["contact"] == "Duty officer" and "ulaan" in warned["subject"]

        send("ulaan", "w-down", [11.0] * 5, start + timedelta(minutes=15))  # back under the reference + 5
        wait_for(lambda: len(events()) == 2, 30, "the hub's rule cleared")
        assert events()[1][2] == "cleared"
        wait_for(lambda: len(receiver.json_bodies()) == 2, 30, "the end of the warning at the soum")
        assert receiver.json_bodies()[1]["action"] == "end"
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        second.stop()
        for db in dbs:
            db.drop()
