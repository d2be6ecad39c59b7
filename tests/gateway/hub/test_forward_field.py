"""A site's field records reach its hub, every part real: the site's Mosquitto and influxd, the
gateway (`run` with `[forward]`), the hub's Mosquitto, `hub run` and PostgreSQL.

A visit recorded with `maintenance add` and observations accepted with `observations accept` before
forwarding began are backfilled; a visit and a decision made while it runs follow; the outbox is
then lost (the site sends everything again) and each record is still at the hub once. A jurisdiction
without an agreement for the site sees none of them, and the hub's export (`hub export --as`) marks
the readings in the visit's window in its `maintenance` column.
"""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from contract.signing import Signer
from gateway import devservices, maintenance
from gateway.config import load
from gateway.forward import field as forward_field
from gateway.forward.forwarder import Forwarder
from gateway.forward.outbox import Outbox
from gateway.observations import records
from gateway.observations.records import PHOTOS_DIR, DecisionRecord, FieldRecords, Observation
from gateway.points import to_line
from gateway.stores import open_store, reader_for
from gateway.stores.base import API_FILE
from gateway.stores.postgres_reader import PostgresReader
from gateway.trust.provision import register
from gateway.trust.registry import KeyRegistry
from tests.alert_helpers import reading
from tests.gateway.hub.test_forward_e2e import HUB_PREFIX, HubBroker, _cli, _join, hub_broker
from tests.helpers import Influx, gateway_toml, spawn, wait_for, wait_gateway_ready

__all__ = ["hub_broker"]  # the fixture, used by name
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
CLEANED = NOW - timedelta(hours=2, minutes=-30)


def _z(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


FISH_IN = ("a1" * 32, "a2" * 32, "a3" * 32)  # the dead fish's three photos as received, and kept
FISH_KEPT = ("b1" * 32, "b2" * 32, "b3" * 32)


def _observe(
    cfg_path: Path,
    kind: str,
    at: datetime,
    *,
    node: str | None,
    photos: tuple[tuple[str, ...], ...] = (),
    near: str | None = None,
) -> str:
    """A resident's observation as the dashboard's form stores it (FieldRecords.add); `photos` the
    hashes (received, kept) of several photos, else one photo's received hash as earlier versions
    stored it; `near` a position's nearest node, as near.attach finds it."""
    cfg = load(cfg_path)
    store = open_store(cfg.influxdb, remember=cfg.data_dir / API_FILE)
    field = FieldRecords(store, reader_for(store, cfg.influxdb), cfg.data_dir / PHOTOS_DIR)
    oid = str(uuid.uuid4())
    obs = Observation(
        id=oid, observer="code:1", kind=kind, text=f"{kind} seen", at=at,
        site="tsagaan" if node or near else None,
        node=node, lat=None if node else 43.11, lon=None if node else 106.85, received=at,
        photo_received_sha256=None if photos else "ab" * 32, photo_sha256=None,
        photos_received_sha256=photos[0] if photos else (), photos_sha256=photos[1] if photos else (),
        place="node" if node else "position", near_node=near,
    )  # fmt: skip
    assert field.add(obs, None)
    field.close()
    return oid


def _hub_field(dsn: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(dsn) as conn:  # the owner: every row
        return {
            "visits": conn.execute(
                "SELECT node, kind, at, done_by FROM maintenance_visit ORDER BY at"
            ).fetchall(),
            "observations": conn.execute(
                "SELECT id, node, text, near_node FROM observation ORDER BY at"
            ).fetchall(),
            "photos": conn.execute(
                "SELECT id, photo_received_sha256, photo_sha256, photos_received_sha256, photos_sha256"
                " FROM observation ORDER BY at"
            ).fetchall(),
            "decisions": conn.execute(
                "SELECT observation, decision, decided_by FROM observation_decision ORDER BY at"
            ).fetchall(),
            "conflicts": conn.execute("SELECT detail FROM reject WHERE reason = 'field_conflict'").fetchall(),
        }


def _outbox(data_dir: Path) -> tuple[int, int]:
    """(field records queued so far, items not acknowledged yet); (0, -1) before the gateway made it."""
    path = data_dir / "forward.sqlite"
    if not path.exists():
        return 0, -1
    with sqlite3.connect(path) as conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'field_seen'").fetchone() is None:
            return 0, -1
        seen = int(conn.execute("SELECT count(*) FROM field_seen").fetchone()[0])
        waiting = int(conn.execute("SELECT count(*) FROM item").fetchone()[0])
    return seen, waiting


def test_visits_and_accepted_observations_reach_the_hub_once(
    tmp_path: Path, mosquitto: devservices.Service, hub_broker: HubBroker, influx: Influx,
    pg: str, prefix: str,
) -> None:  # fmt: skip
    hub_cfg = _join(tmp_path, hub_broker, pg, prefix)
    _cli("hub", "jurisdiction", "--config", str(hub_cfg), "--id", "other", "--name", "Other",
         "--role", f"j_other_{prefix}")  # fmt: skip
    signer = Signer.generate()
    keys = tmp_path / "keys"
    register(keys, "tsagaan", "a", signer, now=NOW - timedelta(days=30))
    # readings every minute for an hour, two hours ago; the window was cleaned half-way through
    old = [signer.sign(reading("a", NOW - timedelta(hours=2, minutes=-i), float(i))) for i in range(60)]
    influx.write([to_line(r) for r in old])
    gw_cfg = gateway_toml(
        tmp_path / "gateway.toml", mqtt_port=mosquitto.port, influx_url=influx.url, db=influx.db,
        prefix=prefix,
        extra=f'[trust]\nkeys_dir = "{keys}"\n'
        f'[forward]\nsite = "tsagaan"\ntopic_prefix = "{HUB_PREFIX}"\n'
        f'identity_file = "{tmp_path / "site-identity.pem"}"\nack_timeout_s = 5\nfield_scan_s = 1\n'
        f'[forward.mqtt]\nhost = "127.0.0.1"\nport = {hub_broker.tls_port}\nclient_id = "site-{prefix}"\n'
        f'username = "tsagaan"\npassword_file = "{hub_broker.password("tsagaan")}"\n'
        f'tls = true\nca_file = "{hub_broker.dir / "ca" / "ca.crt"}"\n',
    )  # fmt: skip
    # before forwarding begins: a visit marking ten minutes, two observations accepted, one rejected
    window = (
        "--flag-from",
        _z(CLEANED - timedelta(minutes=5)),
        "--flag-to",
        _z(CLEANED + timedelta(minutes=5)),
    )
    _cli("maintenance", "add", "--config", str(gw_cfg), "--node", "a", "--site", "tsagaan", "--kind",
         "cleaned", "--at", _z(CLEANED), "--by", "D. Dorj", "--note", "window wiped", *window)  # fmt: skip
    dust = _observe(gw_cfg, "dust", NOW - timedelta(hours=1), node="a")
    fish = _observe(
        gw_cfg, "dead_fish", NOW - timedelta(minutes=50), node=None, photos=(FISH_IN, FISH_KEPT), near="a"
    )  # a position only, within 2 km of node a
    noise = _observe(gw_cfg, "noise", NOW - timedelta(minutes=40), node="a")
    for oid, verb in ((dust, "accept"), (fish, "accept"), (noise, "reject")):
        _cli("observations", verb, oid, "--config", str(gw_cfg), "--by", "monitor B", "--why", "checked")

    hub_log, gw_log = tmp_path / "hub.log", tmp_path / "gateway.log"
    hub = spawn(["gateway.cli", "hub", "run", "--config", str(hub_cfg)], hub_log)
    gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], gw_log)
    try:
        wait_gateway_ready(mosquitto.port, prefix, influx)
        wait_for(lambda: len(_hub_field(pg)["observations"]) == 2, 60, "the backfilled field records")
        # while it runs: another visit, and a second decision on the dust (a retraction)
        _cli("maintenance", "add", "--config", str(gw_cfg), "--node", "a", "--site", "tsagaan",
             "--kind", "inspected", "--at", _z(NOW - timedelta(minutes=10)), "--by", "D. Dorj")  # fmt: skip
        _cli("observations", "reject", dust, "--config", str(gw_cfg), "--by", "monitor C", "--why", "a cloud")
        wait_for(lambda: len(_hub_field(pg)["decisions"]) == 3, 60, "the live field records")
        wait_for(lambda: _outbox(tmp_path / "gateway-data") == (4, 0), 60, "every field record acknowledged")

        # the outbox is lost: the site sends all it has again (readings and field records)
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / "gateway-data" / f"forward.sqlite{suffix}").unlink(missing_ok=True)
        gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], gw_log)
        wait_for(lambda: _outbox(tmp_path / "gateway-data") == (4, 0), 60, "everything sent again and acked")

        got = _hub_field(pg)
        assert got["visits"] == [
            ("a", "cleaned", CLEANED, "D. Dorj"), ("a", "inspected", NOW - timedelta(minutes=10), "D. Dorj"),
        ]  # fmt: skip
        assert got["observations"] == [
            (dust, "a", "dust seen", None), (fish, None, "dead_fish seen", "a"),
        ]  # not the noise; the position report keeps its nearest node  # fmt: skip
        assert sorted(got["decisions"], key=str) == sorted([
            (dust, "accepted", "monitor B"), (fish, "accepted", "monitor B"), (dust, "rejected", "monitor C"),
        ], key=str)  # fmt: skip
        assert got["conflicts"] == []  # the resend was the same, so nothing was refused
        # every photo's hashes of the fish; the dust's one photo as earlier sites send it (no lists)
        assert got["photos"] == [
            (dust, "ab" * 32, None, None, None),
            (fish, FISH_IN[0], FISH_KEPT[0], list(FISH_IN), list(FISH_KEPT)),
        ]
        owner = PostgresReader(pg, f"j_{prefix}")
        (seen,) = records.listed(owner, site="tsagaan")  # the dust was retracted: the fish alone shows
        owner.close()
        assert (seen.id, seen.photos_received_sha256, seen.photos_sha256) == (fish, FISH_IN, FISH_KEPT)
        assert seen.near_node == "a"
        # a hub report limited to node a lists the position report near it
        report = tmp_path / "hub-report.html"
        _cli("hub", "report", "--config", str(hub_cfg), "--as", "soum", "--site", "tsagaan", "--node", "a",
             "--start", _z(NOW - timedelta(hours=3)), "--end", _z(NOW), "--out", str(report))  # fmt: skip
        assert "dead_fish seen" in report.read_text()

        # the site's owner sees them, through the hub's reader; a jurisdiction with no agreement does not
        for role, expected in ((f"j_{prefix}", 2), (f"j_other_{prefix}", 0)):
            reader = PostgresReader(pg, role)
            found = maintenance.visits(reader, "tsagaan", NOW - timedelta(days=1), NOW)
            reader.close()
            assert len(found) == expected, role
        # the hub's export marks the readings stamped in the cleaning's window
        out = tmp_path / "hub-export.csv"
        _cli("hub", "export", "--config", str(hub_cfg), "--as", "soum", "--site", "tsagaan",
             "--start", _z(NOW - timedelta(hours=3)), "--end", _z(NOW), "--out", str(out))  # fmt: skip
        rows = list(csv.DictReader(out.open()))
        marked = [r["time"] for r in rows if r["maintenance"]]
        assert len(rows) == 60
        assert marked == [_z(CLEANED + timedelta(minutes=m)) for m in range(-4, 6)]  # (at-5, at+5]
        assert {r["maintenance"] for r in rows if r["maintenance"]} == {"cleaned"}
    finally:
        for proc in (gateway, hub):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(gw_log.read_text()[-3000:], hub_log.read_text()[-3000:])


def _forwarder(tmp_path: Path, influx: Influx, *, backfill: bool) -> tuple[Forwarder, Path, list[float]]:
    """The site's forwarder over its real InfluxDB, never started: its ticks scan and queue."""
    Signer.generate().write(tmp_path / "site-identity.pem")
    gw_cfg = gateway_toml(
        tmp_path / "gateway.toml", mqtt_port=1, influx_url=influx.url, db=influx.db, prefix="scan",
        extra=f'[forward]\nsite = "tsagaan"\nidentity_file = "{tmp_path / "site-identity.pem"}"\n'
        f"backfill = {str(backfill).lower()}\nfield_scan_s = 60\n[forward.mqtt]\nport = 1\n",
    )  # fmt: skip
    cfg = load(gw_cfg)
    assert cfg.forward is not None
    store = open_store(cfg.influxdb, remember=cfg.data_dir / API_FILE)
    now = [1_000_000.0]
    fwd = Forwarder(cfg.forward, Outbox(tmp_path / "forward.sqlite"), reader_for(store, cfg.influxdb),
                    KeyRegistry(tmp_path / "keys"), clock=lambda: now[0])  # fmt: skip
    return fwd, gw_cfg, now


def _queued(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT kind, body FROM item ORDER BY id").fetchall()
    return [(str(k), json.loads(b).get("id") or json.loads(b)["kind"]) for k, b in rows]


def test_the_scan_queues_each_field_record_once_and_again_when_it_changes(
    tmp_path: Path, influx: Influx
) -> None:
    fwd, gw_cfg, now = _forwarder(tmp_path, influx, backfill=True)
    _cli("maintenance", "add", "--config", str(gw_cfg), "--node", "a", "--site", "tsagaan", "--kind",
         "moved", "--at", _z(NOW - timedelta(days=40)), "--by", "D. Dorj")  # fmt: skip  # long ago
    dust = _observe(gw_cfg, "dust", NOW - timedelta(hours=1), node="a")
    pending = _observe(gw_cfg, "smell", NOW - timedelta(hours=1), node="a")  # nobody decided: stays
    _cli("observations", "accept", dust, "--config", str(gw_cfg), "--by", "monitor B", "--why", "seen")
    fwd.tick()  # the first scan: the backfill
    assert _queued(tmp_path / "forward.sqlite") == [("visit", "moved"), ("observation", dust)]
    now[0] += 30
    fwd.tick()  # not due yet
    now[0] += 30
    fwd.tick()  # due, and nothing new
    assert len(_queued(tmp_path / "forward.sqlite")) == 2
    _cli("observations", "reject", dust, "--config", str(gw_cfg), "--by", "monitor C", "--why", "a cloud")
    now[0] += 60
    fwd.tick()
    queued = _queued(tmp_path / "forward.sqlite")
    assert queued[2:] == [("observation", dust)] and pending not in {q[1] for q in queued}
    with sqlite3.connect(tmp_path / "forward.sqlite") as conn:
        body = json.loads(conn.execute("SELECT body FROM item ORDER BY id DESC LIMIT 1").fetchone()[0])
    assert [d["decision"] for d in body["decisions"]] == ["accepted", "rejected"] and "observer" not in body
    fwd.stop()


def test_without_backfill_the_field_records_there_at_first_stay(tmp_path: Path, influx: Influx) -> None:
    fwd, gw_cfg, now = _forwarder(tmp_path, influx, backfill=False)
    _cli("maintenance", "add", "--config", str(gw_cfg), "--node", "a", "--site", "tsagaan", "--kind",
         "moved", "--at", _z(NOW - timedelta(days=2)), "--by", "D. Dorj")  # fmt: skip
    fwd.tick()
    assert _queued(tmp_path / "forward.sqlite") == []
    _cli("maintenance", "add", "--config", str(gw_cfg), "--node", "a", "--site", "tsagaan", "--kind",
         "cleaned", "--at", _z(NOW - timedelta(days=2)), "--by", "D. Dorj")  # fmt: skip
    now[0] += 60
    fwd.tick()
    assert _queued(tmp_path / "forward.sqlite") == [("visit", "cleaned")]
    fwd.stop()


def test_an_observation_of_one_photo_is_queued_as_earlier_sites_send_it() -> None:
    """Its document (and digest) has no photos_* keys, so an earlier hub takes it and a site that
    upgrades queues nothing again."""
    one = Observation(id="3f6c2b1e-0000-4000-8000-000000000001", observer="code:1", kind="dust", text="",
                      at=NOW, site="tsagaan", node="a", lat=None, lon=None, received=NOW,
                      photo_received_sha256="a1" * 32, photo_sha256="b1" * 32)  # fmt: skip
    decided = [DecisionRecord(one.id, "accepted", "monitor B", NOW, "seen")]
    queued = forward_field._queued("observation", one.id, forward_field.observation_of(one, decided))
    assert b"photos_" not in queued.body and b'"photo_sha256":"' + b"b1" * 32 + b'"' in queued.body
    several = Observation(**{**{k: getattr(one, k) for k in one.__slots__}, "photo_received_sha256": None,
                             "photo_sha256": None, "photos_received_sha256": ("a1" * 32, "a2" * 32),
                             "photos_sha256": ("b1" * 32, "b2" * 32)})  # fmt: skip
    body = forward_field._queued("observation", one.id, forward_field.observation_of(several, decided)).body
    assert b'"photos_sha256":["' + b"b1" * 32 + b'","' + b"b2" * 32 + b'"]' in body


def test_near_node_is_sent_only_when_a_node_is_near() -> None:
    """A position report near no node (and a node's own report) is the document earlier sites send,
    so an earlier hub takes it and its digest is unchanged; one near a node names it."""
    far = Observation(id="3f6c2b1e-0000-4000-8000-000000000002", observer="code:1", kind="dust", text="",
                      at=NOW, site="tsagaan", node=None, lat=43.1, lon=106.8, received=NOW,
                      photo_received_sha256=None, photo_sha256=None, place="position")  # fmt: skip
    decided = [DecisionRecord(far.id, "accepted", "monitor B", NOW, "seen")]
    body = forward_field._queued("observation", far.id, forward_field.observation_of(far, decided)).body
    assert b"near_node" not in body
    near = Observation(**{**{k: getattr(far, k) for k in far.__slots__}, "near_node": "a"})
    body = forward_field._queued("observation", far.id, forward_field.observation_of(near, decided)).body
    assert b'"near_node":"a"' in body
