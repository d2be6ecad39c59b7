"""The TLS listener as `minewatch-gateway broker-config --require-client-certs` writes it, run by a real
Mosquitto, with the real gateway storing into a real influxd behind it: a client that trusts another
CA, an expired server certificate, an expired client certificate, a client certificate from another
CA, and one node's certificate used to speak as another node. Each is refused — by the TLS handshake,
by the broker's password check or ACL, or by the gateway's signature check — and nothing of it is
stored. The certificates are made here with `cryptography` and the project's own CA code."""

from __future__ import annotations

import getpass
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion

from contract.i18n import Texts
from contract.signing import Signer
from contract.wire import ReadingPayload
from gateway.cli import main as gateway_cli
from gateway.config import load
from gateway.devservices import Service, find_binary, free_port
from gateway.service import GatewayService
from gateway.trust import ca
from gateway.wiring import build
from node.publisher import probe_broker
from tests.helpers import Influx, wait_for

SITE = "tsagaan"


@dataclass
class Site:
    root: Path
    broker_dir: Path
    port: int
    tls_port: int
    influx: Influx
    gateway: GatewayService

    @property
    def ca_dir(self) -> Path:
        return self.broker_dir / "ca"

    def node_dir(self, node: str) -> Path:
        return self.root / node

    def password(self, node: str) -> str:
        return (self.root / node / "mqtt.password").read_text().strip()

    def stored_seqs(self) -> set[int]:
        return {int(r["seq"]) for r in self.influx.rows('SELECT "seq" FROM "reading"')}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, influxd: Service) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("tls")
    influx = Influx(f"http://127.0.0.1:{influxd.port}", f"t_tls_{time.time_ns()}")
    influx.create()
    port, tls_port = free_port(), free_port()
    broker_dir = root / "gw" / "broker"
    cfg = root / "gateway.toml"
    cfg.write_text(
        f'data_dir = "{root / "gw"}"\n'
        f'[mqtt]\nport = {port}\nusername = "minewatch-gateway"\nclient_id = "gw-{influx.db}"\n'
        f'password_file = "{broker_dir / "minewatch-gateway.password"}"\n'
        f'[influxdb]\nurl = "{influx.url}"\ndatabase = "{influx.db}"\n[batch]\nmax_delay_s = 0.2\n'
    )
    assert gateway_cli(
        ["broker-config", "--config", str(cfg), "--port", str(port), "--tls-port", str(tls_port),
         "--tls-bind", "127.0.0.1", "--hostname", "127.0.0.1", "--run-as", getpass.getuser(),
         "--require-client-certs"]
    ) == 0  # fmt: skip
    for node in ("haul-road", "river-up"):
        assert gateway_cli(
            ["provision", "--config", str(cfg), "--site", SITE, "--node", node, "--out", str(root / node),
             "--mqtt-host", "127.0.0.1", "--mqtt-port", str(tls_port)]
        ) == 0  # fmt: skip
    broker = Service(
        "mosquitto", [find_binary("mosquitto"), "-c", str(broker_dir / "mosquitto.conf")], port, root, "tcp"
    )
    broker.start()
    gateway = build(load(cfg))
    thread = threading.Thread(target=gateway.run)
    thread.start()
    s = Site(root, broker_dir, port, tls_port, influx, gateway)
    try:
        # the gateway's session is new: what arrives before it subscribed would not be kept for it
        wait_for(lambda: gateway.subscriber and gateway.subscriber.connected.is_set(), 30, "gateway up")
        assert _good(s, 1) == "published"
        wait_for(lambda: 1 in s.stored_seqs(), 30, "the first good reading stored")
        yield s
    finally:
        gateway.stop_event.set()
        thread.join(20)
        broker.stop()
        influx.drop()


def _reading(node: str, seq: int, signer_node: str | None = None, root: Path | None = None) -> bytes:
    doc = {
        "schema": 1, "site": SITE, "node": node, "seq": seq, "ts": datetime.now(UTC), "period_s": 60,
        "metrics": {"pm2_5": {"value": 800.0, "n": 60}}, "flags": [],
    }  # fmt: skip
    reading = ReadingPayload.model_validate(doc)
    if root is None:
        return reading.to_wire()
    return Signer.from_file(root / (signer_node or node) / "node.key").sign(reading).to_wire()


def attempt(
    port: int,
    *,
    ca_file: Path,
    cert: tuple[Path, Path] | None,
    username: str,
    password: str,
    topic: str,
    payload: bytes,
) -> str:
    """Connect over TLS as told and publish one reading at QoS 1: "published" when the broker took
    it (PUBACK; an ACL denial also gets one under MQTT 3.1.1), else why it was refused."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"attempt-{time.time_ns()}")
    client.username_pw_set(username, password)
    client.tls_set(
        ca_certs=str(ca_file),
        certfile=str(cert[0]) if cert else None,
        keyfile=str(cert[1]) if cert else None,
        cert_reqs=ssl.CERT_REQUIRED,
    )
    answered = threading.Event()
    reasons: list[str] = []

    def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        reasons.append(str(rc))
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = lambda *args: answered.set()  # the broker closed the TLS session
    try:
        client.connect("127.0.0.1", port)
    except (OSError, ssl.SSLError) as exc:
        return f"tls: {exc}"
    client.loop_start()
    try:
        if not answered.wait(10) or reasons != ["Success"]:
            return f"refused: {reasons or 'disconnected'}"
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        return "published" if info.is_published() else "not acknowledged"
    finally:
        client.disconnect()
        client.loop_stop()


def _topic(node: str) -> str:
    return f"minewatch/v1/{SITE}/{node}/reading"


def _good(s: Site, seq: int) -> str:
    """haul-road as provisioned: its own certificate, account, topic and key."""
    d = s.node_dir("haul-road")
    return attempt(
        s.tls_port,
        ca_file=d / "ca.crt",
        cert=(d / "client.crt", d / "client.key"),
        username=f"{SITE}/haul-road",
        password=s.password("haul-road"),
        topic=_topic("haul-road"),
        payload=_reading("haul-road", seq, root=s.root),
    )


def _settled(s: Site, control_seq: int, refused: list[int]) -> None:
    """A good reading published after the attempts, once stored, shows the gateway has handled
    everything before it (one broker, one subscriber: in order); none of the attempts is there."""
    assert _good(s, control_seq) == "published"
    wait_for(lambda: control_seq in s.stored_seqs(), 30, f"control reading {control_seq}")
    assert not set(refused) & s.stored_seqs()


def _leaf(
    ca_dir: Path, out: Path, common_name: str, *, server: bool, not_before: datetime, not_after: datetime
) -> tuple[Path, Path]:
    """A certificate signed by the CA in `ca_dir` with the validity asked for (ca.issue makes only
    valid ones); its (cert, key) paths."""
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False).sign(ca_key, hashes.SHA256())
    out.mkdir(parents=True, exist_ok=True)
    stem = common_name.replace("/", "_")
    cert_path, key_path = out / f"{stem}.crt", out / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _expired() -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {"not_before": now - timedelta(days=30), "not_after": now - timedelta(days=1)}


def _as_haul_road(s: Site, seq: int, *, ca_file: Path, cert: tuple[Path, Path], port: int = 0) -> str:
    """haul-road's own account, topic and signed reading, with the TLS material given."""
    return attempt(
        port or s.tls_port,
        ca_file=ca_file,
        cert=cert,
        username=f"{SITE}/haul-road",
        password=s.password("haul-road"),
        topic=_topic("haul-road"),
        payload=_reading("haul-road", seq, root=s.root),
    )


def _node_check(s: Site, *, ca_file: Path, cert: tuple[Path, Path], port: int = 0) -> str | None:
    """What `minewatch-node check` says (in English) with this TLS material (the node's own client code)."""
    problem = probe_broker(
        "127.0.0.1",
        port or s.tls_port,
        f"check-{time.time_ns()}",
        username=f"{SITE}/haul-road",
        password=s.password("haul-road"),
        tls=True,
        ca_file=str(ca_file),
        client_cert=(str(cert[0]), str(cert[1])),
    )
    return None if problem is None else Texts("en")(f"check.{problem.kind}", **problem.params)


def _own_cert(s: Site, node: str = "haul-road") -> tuple[Path, Path]:
    return s.node_dir(node) / "client.crt", s.node_dir(node) / "client.key"


def test_a_client_that_trusts_another_ca_does_not_connect(site: Site, tmp_path: Path) -> None:
    ca.ensure_ca(tmp_path, "elsewhere")
    got = _as_haul_road(site, 101, ca_file=tmp_path / "ca.crt", cert=_own_cert(site))
    assert got.startswith("tls:") and "certificate verify failed" in got
    problem = _node_check(site, ca_file=tmp_path / "ca.crt", cert=_own_cert(site))
    assert problem is not None and "CERTIFICATE_VERIFY_FAILED" in problem
    _settled(site, 102, [101])


def test_a_client_certificate_of_another_ca_is_refused(site: Site, tmp_path: Path) -> None:
    """Another CA's certificate, even for the right name, with the node's real password."""
    ca.ensure_ca(tmp_path, "elsewhere")
    forged = (tmp_path / "client.crt", tmp_path / "client.key")
    assert ca.issue(tmp_path, *forged, f"{SITE}/haul-road")
    site_ca = site.node_dir("haul-road") / "ca.crt"
    assert _as_haul_road(site, 201, ca_file=site_ca, cert=forged) == "refused: disconnected"
    problem = _node_check(site, ca_file=site_ca, cert=forged)
    assert problem is not None and "did not accept our client certificate" in problem
    _settled(site, 202, [201])


def test_an_expired_client_certificate_is_refused(site: Site, tmp_path: Path) -> None:
    """Signed by the site CA, for the right node, past its date."""
    expired = _leaf(site.ca_dir, tmp_path, f"{SITE}/haul-road", server=False, **_expired())
    site_ca = site.node_dir("haul-road") / "ca.crt"
    assert _as_haul_road(site, 301, ca_file=site_ca, cert=expired) == "refused: disconnected"
    problem = _node_check(site, ca_file=site_ca, cert=expired)
    assert problem is not None and "did not accept our client certificate" in problem
    _settled(site, 302, [301])


def test_a_broker_with_an_expired_server_certificate_gets_nothing(site: Site, tmp_path: Path) -> None:
    """The same configuration on other ports, its server certificate (site CA) past its date: the
    node does not connect, so it never hands over a reading or its password."""
    cert, key = _leaf(site.ca_dir, tmp_path, "127.0.0.1", server=True, **_expired())
    port, tls_port = free_port(), free_port()
    conf = (site.broker_dir / "mosquitto.conf").read_text()
    conf = conf.replace(f"listener {site.port} ", f"listener {port} ")
    conf = conf.replace(f"listener {site.tls_port} ", f"listener {tls_port} ")
    conf = conf.replace(str((site.ca_dir / "server.crt").resolve()), str(cert))
    conf = conf.replace(str((site.ca_dir / "server.key").resolve()), str(key))
    conf = conf.replace(str((site.broker_dir / "mosquitto.pid").resolve()), str(tmp_path / "m.pid"))
    conf = conf.replace(str(site.broker_dir.resolve() / "persist"), str(tmp_path / "persist"))
    assert str(cert) in conf and str(tmp_path / "persist") in conf
    (tmp_path / "mosquitto.conf").write_text(conf)
    broker = Service(
        "mosquitto", [find_binary("mosquitto"), "-c", str(tmp_path / "mosquitto.conf")], port, tmp_path, "tcp"
    )
    broker.start()
    try:
        site_ca = site.node_dir("haul-road") / "ca.crt"
        got = _as_haul_road(site, 401, ca_file=site_ca, cert=_own_cert(site), port=tls_port)
        assert got.startswith("tls:") and "certificate has expired" in got
        problem = _node_check(site, ca_file=site_ca, cert=_own_cert(site), port=tls_port)
        assert problem is not None and "certificate has expired" in problem
    finally:
        broker.stop()
    _settled(site, 402, [401])


def test_another_nodes_certificate_cannot_speak_for_this_node(site: Site) -> None:
    """river-up's certificate in a client that wants to publish haul-road's readings."""
    site_ca, river_cert = site.node_dir("river-up") / "ca.crt", _own_cert(site, "river-up")
    forged = _reading("haul-road", 501, signer_node="river-up", root=site.root)
    # with river-up's own account: the broker's ACL drops it (an MQTT 3.1.1 client still gets a PUBACK)
    got = attempt(
        site.tls_port, ca_file=site_ca, cert=river_cert, username=f"{SITE}/river-up",
        password=site.password("river-up"), topic=_topic("haul-road"), payload=forged,
    )  # fmt: skip
    assert got == "published"
    # as haul-road, without haul-road's password: the broker refuses the connection
    got = attempt(
        site.tls_port, ca_file=site_ca, cert=river_cert, username=f"{SITE}/haul-road",
        password=site.password("river-up"), topic=_topic("haul-road"), payload=forged,
    )  # fmt: skip
    assert got.startswith("refused") and "Not authorized" in got
    # with haul-road's password too (stolen): the broker takes any site certificate beside the right
    # password (docs/trust.md), its reading is signed with river-up's key: the gateway refuses it
    refused_before = site.gateway.ingest.stats.rejected["unknown_key"]
    got = attempt(
        site.tls_port, ca_file=site_ca, cert=river_cert, username=f"{SITE}/haul-road",
        password=site.password("haul-road"), topic=_topic("haul-road"),
        payload=_reading("haul-road", 502, signer_node="river-up", root=site.root),
    )  # fmt: skip
    assert got == "published"
    _settled(site, 503, [501, 502])
    # one refusal: 502; 501 never reached the gateway (the ACL dropped it)
    assert site.gateway.ingest.stats.rejected["unknown_key"] == refused_before + 1
