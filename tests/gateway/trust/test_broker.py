"""The generated Mosquitto configuration, run by a real Mosquitto: who may publish and read what,
TLS with the site CA, and provisioning (idempotent; revocation makes the broker reload)."""

from __future__ import annotations

import getpass
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.cli import main as gateway_cli
from gateway.devservices import Service, find_binary, free_port
from gateway.trust import ca
from gateway.trust.broker import QueueSizing
from gateway.trust.registry import KeyStatus, load_dir
from node.cli import main as node_cli
from tests.helpers import wait_for

PREFIX = "minewatch"


@dataclass
class Site:
    root: Path
    broker: Service
    broker_dir: Path
    gw_cfg: Path
    port: int
    tls_port: int

    def password(self, path: Path) -> str:
        return path.read_text().strip()

    @property
    def gateway_password(self) -> str:
        return self.password(self.broker_dir / "minewatch-gateway.password")

    def node_password(self, node: str) -> str:
        return self.password(self.root / node / "mqtt.password")


def provision(site: Site | Path, *args: str) -> int:
    cfg = site.gw_cfg if isinstance(site, Site) else site
    return gateway_cli(["provision", "--config", str(cfg), "--mqtt-host", "127.0.0.1", *args])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    gw_cfg = root / "gateway.toml"
    gw_cfg.write_text(f'data_dir = "{root / "gw"}"\n[mqtt]\nusername = "minewatch-gateway"\n')
    port, tls_port = free_port(), free_port()
    code = gateway_cli(
        [
            "broker-config", "--config", str(gw_cfg), "--port", str(port), "--tls-port", str(tls_port),
            "--tls-bind", "127.0.0.1", "--hostname", "127.0.0.1", "--hostname", "localhost",
            "--run-as", getpass.getuser(), "--require-client-certs",
        ]
    )  # fmt: skip
    assert code == 0
    broker_dir = root / "gw" / "broker"
    for node in ("haul-road", "river-up"):
        assert provision(gw_cfg, "--site", "tsagaan", "--node", node, "--out", str(root / node)) == 0
    assert provision(gw_cfg, "--monitor", "alice", "--out", str(root / "alice")) == 0
    broker = Service(
        "mosquitto", [find_binary("mosquitto"), "-c", str(broker_dir / "mosquitto.conf")], port, root, "tcp"
    )
    broker.start()
    yield Site(root, broker, broker_dir, gw_cfg, port, tls_port)
    broker.stop()


class Client:
    """A real paho client recording its CONNACK and the messages it receives."""

    def __init__(
        self,
        port: int,
        username: str | None = None,
        password: str | None = None,
        *,
        ca_file: Path | None = None,
        cert_dir: Path | None = None,
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.connack: int | None = None
        self.error: Exception | None = None
        self._lock = threading.Lock()
        self._acked = threading.Event()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{time.time_ns()}")
        if username:
            self.client.username_pw_set(username, password)
        if ca_file:
            cert = (str(cert_dir / "client.crt"), str(cert_dir / "client.key")) if cert_dir else (None, None)
            self.client.tls_set(
                ca_certs=str(ca_file), certfile=cert[0], keyfile=cert[1], cert_reqs=ssl.CERT_REQUIRED
            )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *args: self._acked.set()  # refused after the TLS handshake
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        try:
            self.client.connect("127.0.0.1", port)
        except (OSError, ssl.SSLError) as exc:
            self.error = exc
            return
        self.client.loop_start()
        self._acked.wait(10)

    def _on_connect(self, c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        self.connack = int(getattr(rc, "value", 0))
        self._acked.set()

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    @property
    def accepted(self) -> bool:
        return self.error is None and self.connack == 0

    def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(10)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def got(self, payload: bytes) -> bool:
        with self._lock:
            return any(p == payload for _, p in self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def topic(node: str, kind: str) -> str:
    return f"{PREFIX}/v1/tsagaan/{node}/{kind}"


def test_anonymous_and_wrong_passwords_are_refused(site: Site) -> None:
    anonymous = Client(site.port)
    assert not anonymous.accepted and anonymous.connack not in (None, 0)
    wrong = Client(site.port, "tsagaan/haul-road", "not-the-password")
    assert not wrong.accepted
    anonymous.close()
    wrong.close()


def test_a_node_cannot_speak_for_another_or_listen(site: Site) -> None:
    gateway = Client(site.port, "minewatch-gateway", site.gateway_password)
    haul = Client(site.port, "tsagaan/haul-road", site.node_password("haul-road"))
    river = Client(site.port, "tsagaan/river-up", site.node_password("river-up"))
    assert gateway.accepted and haul.accepted and river.accepted
    gateway.subscribe(f"{PREFIX}/v1/+/+/reading")
    haul.subscribe(f"{PREFIX}/#")  # allowed to ask, never given anything
    haul.publish(topic("river-up", "reading"), b"forged by haul-road")
    haul.publish(topic("haul-road", "reading"), b"haul-road's own")
    river.publish(topic("river-up", "reading"), b"river-up's own")
    wait_for(lambda: gateway.got(b"haul-road's own") and gateway.got(b"river-up's own"), 20, "own readings")
    assert not gateway.got(b"forged by haul-road")
    assert haul.messages == []
    for c in (gateway, haul, river):
        c.close()


def test_monitors_read_alerts_only(site: Site) -> None:
    gateway = Client(site.port, "minewatch-gateway", site.gateway_password)
    monitor = Client(site.port, "alice", site.password(site.root / "alice" / "alice.password"))
    river = Client(site.port, "tsagaan/river-up", site.node_password("river-up"))
    monitor.subscribe(f"{PREFIX}/#")
    river.publish(topic("river-up", "reading"), b"a reading")
    river.publish(topic("river-up", "status"), b"a status")
    monitor.publish(topic("river-up", "alert"), b"an alert forged by a monitor")
    gateway.publish(topic("river-up", "alert"), b"a real alert")
    wait_for(lambda: monitor.got(b"a real alert"), 20, "the alert")
    assert [p for _, p in monitor.messages] == [b"a real alert"]
    for c in (gateway, monitor, river):
        c.close()


def test_tls_with_the_site_ca_and_not_with_another(site: Site, tmp_path: Path) -> None:
    node_dir = site.root / "haul-road"
    password = site.node_password("haul-road")
    good = Client(
        site.tls_port, "tsagaan/haul-road", password, ca_file=node_dir / "ca.crt", cert_dir=node_dir
    )
    assert good.accepted
    good.close()
    ca.ensure_ca(tmp_path, "elsewhere")
    wrong = Client(
        site.tls_port, "tsagaan/haul-road", password, ca_file=tmp_path / "ca.crt", cert_dir=node_dir
    )
    assert not wrong.accepted
    assert isinstance(wrong.error, ssl.SSLError)
    # this broker was configured with --require-client-certs: the site CA alone is not enough
    no_cert = Client(site.tls_port, "tsagaan/haul-road", password, ca_file=node_dir / "ca.crt")
    assert not no_cert.accepted
    plain = Client(site.tls_port, "tsagaan/haul-road", password)
    assert not plain.accepted  # plain MQTT on the TLS port


def _snapshot(site: Site) -> dict[str, bytes]:
    files = [*site.root.glob("haul-road/*"), *(site.root / "gw" / "keys").glob("*.json")]
    snap = {str(p): p.read_bytes() for p in files}
    line = [
        x for x in (site.broker_dir / "passwd").read_text().splitlines() if x.startswith("tsagaan/haul-road:")
    ]
    snap["passwd"] = "\n".join(line).encode()
    snap["acl"] = (site.broker_dir / "acl").read_bytes()
    return snap


def test_provisioning_twice_changes_nothing(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(site)
    capsys.readouterr()
    assert (
        provision(site, "--site", "tsagaan", "--node", "haul-road", "--out", str(site.root / "haul-road"))
        == 0
    )
    assert "nothing to do" in capsys.readouterr().out
    assert _snapshot(site) == before
    # a new directory for a node that has a key is refused rather than silently issuing a second key
    assert (
        provision(site, "--site", "tsagaan", "--node", "haul-road", "--out", str(site.root / "elsewhere"))
        == 2
    )


def test_revoking_reloads_the_broker(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert provision(site, "--site", "tsagaan", "--node", "late", "--out", str(site.root / "late")) == 0
    pid = site.broker.proc.pid if site.broker.proc else None
    assert f"told Mosquitto (pid {pid}) to reload" in capsys.readouterr().out
    late = lambda: Client(site.port, "tsagaan/late", site.node_password("late"))  # noqa: E731
    first = wait_for(lambda: (c := late()).accepted and c, 20, "the new account to work")  # reload took it in
    first.close()
    keys = site.root / "gw" / "keys"
    first_key = [r for r in load_dir(keys).values() if r.node == "late"]
    assert [r.status for r in first_key] == [KeyStatus.ACTIVE]
    # --rotate: a new key; the old one retired from now, so what it signed before still verifies
    assert (
        provision(site, "--site", "tsagaan", "--node", "late", "--out", str(site.root / "late"), "--rotate")
        == 0
    )
    both = {r.kid: r for r in load_dir(keys).values() if r.node == "late"}
    old = both.pop(first_key[0].kid)
    assert old.status is KeyStatus.RETIRED and old.since is not None
    assert [r.status for r in both.values()] == [KeyStatus.ACTIVE]
    assert provision(site, "--site", "tsagaan", "--node", "late", "--revoke") == 0
    wait_for(lambda: not late().accepted, 20, "the revoked account to be refused")
    assert site.broker.is_running  # reloaded, not restarted
    revoked = [r for r in load_dir(keys).values() if r.node == "late"]
    assert len(revoked) == 2 and all(r.status is KeyStatus.REVOKED and r.since for r in revoked)


def test_decommissioning_retires_and_a_compromise_is_revoked_from_a_time(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert provision(site, "--site", "tsagaan", "--node", "gone", "--out", str(site.root / "gone")) == 0
    gone = lambda: Client(site.port, "tsagaan/gone", site.node_password("gone"))  # noqa: E731
    wait_for(lambda: (c := gone()).accepted and (c.close() or True), 20, "the new account to work")
    keys = site.root / "gw" / "keys"
    assert provision(site, "--site", "tsagaan", "--node", "gone", "--retire") == 0
    wait_for(lambda: not gone().accepted, 20, "the decommissioned account to be refused")
    (record,) = [r for r in load_dir(keys).values() if r.node == "gone"]
    assert record.status is KeyStatus.RETIRED and record.since is not None  # past readings stay valid
    capsys.readouterr()
    assert provision(site, "--site", "tsagaan", "--node", "gone", "--revoke", "--since", "2999-01-01") == 2
    assert "is in the future" in capsys.readouterr().err
    assert provision(site, "--site", "tsagaan", "--node", "gone", "--since", "2026-11-01") == 2
    assert "--since goes with --revoke" in capsys.readouterr().err
    assert (
        provision(site, "--site", "tsagaan", "--node", "gone", "--revoke", "--since", "2026-11-01T06:00Z")
        == 0
    )
    (record,) = [r for r in load_dir(keys).values() if r.node == "gone"]
    assert record.status is KeyStatus.REVOKED and record.since == datetime(2026, 11, 1, 6, tzinfo=UTC)


def test_queue_limits_hold_a_week_of_backlog(site: Site) -> None:
    conf = (site.broker_dir / "mosquitto.conf").read_text()
    sizing = QueueSizing(nodes=50, interval_s=60)
    assert sizing.max_messages >= 50 * 7 * 24 * 60
    assert f"max_queued_messages {sizing.max_messages}\n" in conf
    assert f"max_queued_bytes {sizing.max_bytes}\n" in conf
    assert "allow_anonymous false" in conf and "persistence true" in conf


def test_broker_config_twice_keeps_the_ca_the_accounts_and_the_broker(site: Site) -> None:
    files = ["mosquitto.conf", "acl", "ca/ca.crt", "ca/server.crt", "minewatch-gateway.password"]
    before = {f: (site.broker_dir / f).read_bytes() for f in files}
    passwd = (site.broker_dir / "passwd").read_text()
    code = gateway_cli(
        [
            "broker-config", "--config", str(site.gw_cfg), "--port", str(site.port),
            "--tls-port", str(site.tls_port), "--tls-bind", "127.0.0.1", "--hostname", "127.0.0.1",
            "--hostname", "localhost", "--run-as", getpass.getuser(), "--require-client-certs",
        ]
    )  # fmt: skip
    assert code == 0
    assert {f: (site.broker_dir / f).read_bytes() for f in files} == before
    assert (site.broker_dir / "passwd").read_text() == passwd
    assert site.broker.is_running
    node = Client(site.port, "tsagaan/river-up", site.node_password("river-up"))
    assert node.accepted  # the reloaded broker still knows every account
    node.close()


def test_node_check_connects_with_the_provisioned_tls_credentials(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """`minewatch-node check` tries the broker exactly as the node would: TLS, site CA, client
    certificate, username and password from the provisioned directory."""
    node_dir = site.root / "river-up"
    provisioned = (node_dir / "node.toml").read_text()
    assert "cert_file" in provisioned
    local = node_dir / "node-local.toml"  # beside the original: its relative paths still hold
    local.write_text(provisioned.replace("port = 8883", f"port = {site.tls_port}"))
    capsys.readouterr()
    assert node_cli(["check", "--config", str(local), "--seconds", "0.2"]) == 0
    assert f"ok — 127.0.0.1:{site.tls_port} accepted the node's credentials" in capsys.readouterr().out
    (node_dir / "wrong.password").write_text("not-it\n")
    (node_dir / "wrong.password").chmod(0o600)
    local.write_text(local.read_text().replace('"mqtt.password"', '"wrong.password"'))
    assert node_cli(["check", "--config", str(local), "--seconds", "0.2"]) == 1
    assert "refused us" in capsys.readouterr().out
