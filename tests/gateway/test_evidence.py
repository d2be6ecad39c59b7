"""`minewatch-gateway evidence` and `verify --bundle` through the real CLI, a real influxd and a
local RFC 3161 time-stamping authority (`openssl ts -reply` behind a small HTTP server on
127.0.0.1): the bundle verifies, offline and with the one-file checker alone, and each tampering
is named."""

from __future__ import annotations

import csv
import hashlib
import http.server
import io
import json
import subprocess
import sys
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from calibration.presets import load_preset
from contract.signing import Signer, public_b64
from contract.wire import ReadingPayload
from gateway import devservices
from gateway.cli import main
from gateway.config import InfluxConfig
from gateway.maintenance import Visit
from gateway.observations.records import PHOTOS_DIR, FieldRecords, Observation
from gateway.points import to_line
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from gateway.trust.provision import register
from tests import regdata
from tests.helpers import Influx

OPENSSL_TSA = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = {dir}/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
START, END = "2026-11-01", "2026-11-01T03:00Z"


class _Tsa(http.server.BaseHTTPRequestHandler):
    """POST a TimeStampReq, get the TimeStampResp `openssl ts -reply` makes."""

    directory: ClassVar[Path]

    def do_POST(self) -> None:
        query = self.directory / f"{uuid.uuid4().hex}.tsq"
        query.write_bytes(self.rfile.read(int(self.headers["Content-Length"])))
        answer = query.with_suffix(".tsr")
        d = self.directory
        subprocess.run(
            ["openssl", "ts", "-reply", "-config", str(d / "tsa.cnf"), "-queryfile", str(query),
             "-signer", str(d / "tsa.crt"), "-inkey", str(d / "tsa.key"), "-out", str(answer)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        body = answer.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    d = tmp_path_factory.mktemp("tsa")
    (d / "tsa.cnf").write_text(OPENSSL_TSA.format(dir=d))
    (d / "serial").write_text("01\n")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "tsa.key"),
         "-out", str(d / "tsa.crt"), "-subj", "/CN=Test TSA", "-days", "2",
         "-addext", "extendedKeyUsage=critical,timeStamping"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    handler = type("Tsa", (_Tsa,), {"directory": d})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", devservices.free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa", d / "tsa.crt"
    server.shutdown()
    server.server_close()


SIGNER = Signer.from_seed(bytes(range(32)))
THIEF = Signer.from_seed(b"\x07" * 32)


def _reading(node: str, seq: int, minute: int) -> ReadingPayload:
    cal = load_preset("epa-us-2021")
    raw = 10.0 + minute / 7
    pm = {"value": cal.apply(raw, rh=40.0).value, "raw": raw, "n": 60, "cal": cal.id}
    return SIGNER.sign(
        ReadingPayload.model_validate(
            {"schema": 1, "site": regdata.SITE, "node": node, "seq": seq,
             "ts": regdata.DAY0 + timedelta(minutes=minute), "period_s": 60,
             "metrics": {"pm2_5": pm, "rh": {"value": 40.0, "raw": 40.0, "n": 60}}}
        )
    )  # fmt: skip


@pytest.fixture(scope="module")
def made(
    influxd: devservices.Service, tsa: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One signed node over three hours, with a real gap (seq 50 to 60: never stored), an alert,
    and the bundle made with a time-stamp: built once, copied and tampered by each test."""
    d = tmp_path_factory.mktemp("evidence")
    db = Influx(f"http://127.0.0.1:{influxd.port}", f"e_{uuid.uuid4().hex[:12]}")
    db.create()
    lines = []
    for minute in range(1, 181):
        seq = minute if minute < 50 else minute + 10
        if 50 <= minute < 60:
            continue
        lines.append(
            to_line(
                _reading("haul-road", seq, minute),
                received=regdata.DAY0 + timedelta(minutes=minute, seconds=2),
            )
        )
    lines.append(
        regdata.alert_line(
            "haul-road", "pm25-1h", "pm2_5", "raised", regdata.DAY0 + timedelta(hours=1), 60.5, 50.0
        )
    )
    db.write(lines)
    _field_records(db, d / "data")
    keys = d / "data" / "keys"
    register(keys, regdata.SITE, "haul-road", SIGNER, now=regdata.DAY0 - timedelta(days=30))
    config = d / "gateway.toml"
    config.write_text(
        f'data_dir = "{d / "data"}"\n[influxdb]\nurl = "{db.url}"\napi = "v1"\ndatabase = "{db.db}"\n'
    )
    out = d / "bundle.zip"
    args = ["evidence", "--config", str(config), "--site", regdata.SITE, "--start", START, "--end", END]
    assert main([*args, "--out", str(out), "--tsa", tsa[0]]) == 0
    yield {"bundle": out, "tsa_cert": tsa[1], "config": config, "dir": d}
    db.drop()


PHOTO = b"\xff\xd8 a re-encoded photo \xff\xd9"
PHOTOS = [PHOTO, b"\xff\xd8 the bank \xff\xd9", b"\xff\xd8 the pit \xff\xd9"]  # one observation's three


def _field_records(db: Influx, data: Path) -> None:
    """A maintenance visit, two made after the period (END, 03:00), one of them marking readings
    in it, an accepted observation with its three photos and a rejected one, through the same
    write seam the dashboard uses."""
    at = regdata.DAY0 + timedelta(hours=3, minutes=10)
    db.write([
        Visit(regdata.SITE, "haul-road", "cleaned", regdata.DAY0 + timedelta(hours=2), "Bold", "inlet",
              None, None, regdata.DAY0 + timedelta(hours=2)).to_line(),
        Visit(regdata.SITE, "haul-road", "moved", at, "Bold", "marks 02:58-03:05",
              at - timedelta(minutes=12), at - timedelta(minutes=5), at).to_line(),
        Visit(regdata.SITE, "haul-road", "inspected", at, "Bold", "marks 03:01-03:05",
              at - timedelta(minutes=9), at - timedelta(minutes=5), at).to_line(),
    ])  # fmt: skip
    store = InfluxV1(InfluxConfig(url=db.url, database=db.db))  # type: ignore[arg-type]
    field = FieldRecords(store, InfluxReader(store, owned=False), data / PHOTOS_DIR)
    for i, kind in enumerate(("dust", "trucks")):
        obs = Observation(
            id=f"00000000-0000-4000-8000-00000000000{i}", observer="code:1", kind=kind, text=f"seen {i}",
            at=regdata.DAY0 + timedelta(hours=1, minutes=i), site=regdata.SITE, node="haul-road",
            lat=None, lon=None, received=regdata.DAY0 + timedelta(hours=4),
            photo_received_sha256=None, photo_sha256=None,
            photos_received_sha256=("cd" * 32, "ce" * 32, "cf" * 32) if i == 0 else (),
            photos_sha256=tuple(hashlib.sha256(p).hexdigest() for p in PHOTOS) if i == 0 else (),
        )  # fmt: skip
        assert field.add(obs, PHOTOS if i == 0 else None)
        decision = "accepted" if i == 0 else "rejected"
        field.decide(obs.id, decision, "Saraa", "checked", regdata.DAY0 + timedelta(hours=5))
    field.close()


def _members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _rezip(members: dict[str, bytes], out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def _rehash(members: dict[str, bytes], *names: str, drop_stamp: bool = True) -> None:
    """What a careful forger does: fix the manifest's hashes of the files they changed (and drop the
    time-stamp that no longer fits)."""
    manifest = json.loads(members["manifest.json"])
    for entry in manifest["files"]:
        if entry["path"] in names:
            entry["sha256"] = hashlib.sha256(members[entry["path"]]).hexdigest()
    members["manifest.json"] = json.dumps(manifest, indent=2).encode()
    if drop_stamp:
        members.pop("manifest.json.tsr", None)
        manifest["tsa"] = None
        members["manifest.json"] = json.dumps(manifest, indent=2).encode()


def _verify(bundle: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", "--bundle", str(bundle), *extra])
    return code, capsys.readouterr().out


def _rows(members: dict[str, bytes]) -> list[str]:
    return members["readings.csv"].decode().splitlines(keepends=True)


def test_the_bundle_holds_everything_and_verifies_offline(
    made: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    members = _members(made["bundle"])
    assert {"manifest.json", "manifest.json.tsr", "readings.csv", "readings.csv.columns.json", "keys.json",
            "alerts.jsonl", "report.html", "report.pdf", "verify_offline.py", "README.txt",
            "calibrations/epa-us-2021.toml"} <= set(members)  # fmt: skip
    assert members["report.pdf"].startswith(b"%PDF")
    manifest = json.loads(members["manifest.json"])
    assert manifest["seq"]["tsagaan/haul-road"] == {"rows": 170, "first": 1, "last": 190, "jumps": [[49, 70]]}
    assert {f["path"] for f in manifest["files"]} == set(members) - {"manifest.json", "manifest.json.tsr"}
    (key,) = json.loads(members["keys.json"])
    assert key["kid"] == SIGNER.kid and key["valid_until"] is None
    assert json.loads(members["alerts.jsonl"].decode().splitlines()[0])["state"] == "raised"
    code, out = _verify(made["bundle"], capsys, "--tsa-cert", str(made["tsa_cert"]))
    assert code == 0, out
    assert "time-stamped" in out and "CN=Test TSA" in out and "170 rows: 170 verified" in out
    assert "tsagaan/haul-road: seq 49 to 70: 20 readings never stored" in out
    # the checker the bundle carries, run alone in an isolated interpreter (no minewatch on the path)
    (tmp_path / "verify_offline.py").write_bytes(members["verify_offline.py"])
    alone = subprocess.run(
        [sys.executable, "-I", "verify_offline.py", "--bundle", str(made["bundle"])],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert alone.returncode == 0 and "bundle verified" in alone.stdout, alone.stdout + alone.stderr


def test_the_bundle_holds_the_field_records_with_the_photos(made: dict[str, Any]) -> None:
    members = _members(made["bundle"])
    visits = [json.loads(x) for x in members["maintenance.jsonl"].decode().splitlines()]
    # the one made in the period, and the one made after it whose window marks readings in it (those
    # stamped 02:59 and 03:00, marked `moved` in readings.csv); not the one marking only after it
    assert [(v["node"], v["kind"], v["at"]) for v in visits] == [
        ("haul-road", "cleaned", "2026-11-01T02:00:00Z"),
        ("haul-road", "moved", "2026-11-01T03:10:00Z"),
    ]
    marked = [
        r["time"] for r in csv.DictReader(io.StringIO(members["readings.csv"].decode())) if r["maintenance"]
    ]
    assert marked == ["2026-11-01T02:59:00Z", "2026-11-01T03:00:00Z"]
    (seen,) = [json.loads(x) for x in members["observations.jsonl"].decode().splitlines()]  # the accepted
    assert (seen["kind"], seen["state"], seen["decided_by"], seen["why"]) == (
        "dust",
        "accepted",
        "Saraa",
        "checked",
    )
    assert [d["decision"] for d in seen["decisions"]] == ["accepted"] and "observer" not in seen
    assert seen["photo_sha256"] == seen["photos_sha256"][0] and len(seen["photos_sha256"]) == 3
    assert seen["photos_received_sha256"] == ["cd" * 32, "ce" * 32, "cf" * 32]
    hashed = {f["path"]: f["sha256"] for f in json.loads(members["manifest.json"])["files"]}
    for sha, data in zip(seen["photos_sha256"], PHOTOS, strict=True):  # every photo, each in the manifest
        photo = f"photos/{sha}.jpg"
        assert members[photo] == data and hashed[photo] == hashlib.sha256(data).hexdigest()
    assert sorted(n for n in members if n.startswith("photos/")) == sorted(
        f"photos/{sha}.jpg" for sha in seen["photos_sha256"]
    )
    assert "observations.jsonl" in hashed and "maintenance.jsonl" in hashed


Tamper = Callable[[dict[str, bytes]], None]


def _edit_value(m: dict[str, bytes]) -> None:
    rows = _rows(m)
    cells = next(csv.reader(io.StringIO(rows[5])))
    header = next(csv.reader(io.StringIO(rows[0])))
    cells[header.index("pm2_5")] = str(float(cells[header.index("pm2_5")]) - 5)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    rows[5] = buf.getvalue()
    m["readings.csv"] = "".join(rows).encode()
    _rehash(m, "readings.csv")


def _delete_row(m: dict[str, bytes]) -> None:
    rows = _rows(m)
    del rows[100]
    m["readings.csv"] = "".join(rows).encode()
    _rehash(m, "readings.csv")


def _insert_row(m: dict[str, bytes], *, as_the_node: bool) -> None:
    """A reading the node never made, signed by someone else's key: under its own key id (no key
    of the node signed it) or under the node's (the signature does not match)."""
    forged = THIEF.sign(_reading("haul-road", 55, 55))
    rows = _rows(m)
    header = next(csv.reader(io.StringIO(rows[0])))
    cells = next(csv.reader(io.StringIO(rows[49])))
    values = dict(zip(header, cells, strict=True))
    kid = SIGNER.kid if as_the_node else THIEF.kid
    values.update(seq="55", time="2026-11-01T00:55:00Z", sig=forged.sig or "", kid=kid)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([values[h] for h in header])
    rows.insert(50, buf.getvalue())
    m["readings.csv"] = "".join(rows).encode()
    _rehash(m, "readings.csv")


def _copy_row(m: dict[str, bytes]) -> None:
    """A genuine signed row repeated further down: every signature verifies, the seq does not."""
    rows = _rows(m)
    rows.insert(120, rows[10])
    m["readings.csv"] = "".join(rows).encode()
    _rehash(m, "readings.csv")


def _swap_key(m: dict[str, bytes]) -> None:
    keys = json.loads(m["keys.json"])
    keys[0]["public_key"] = public_b64(THIEF.private.public_key())
    m["keys.json"] = json.dumps(keys).encode()
    _rehash(m, "keys.json")


def _change_report(m: dict[str, bytes]) -> None:
    m["report.html"] = m["report.html"].replace(b"haul-road", b"haul-r0ad", 1)


def _unmatched_manifest(m: dict[str, bytes]) -> None:
    manifest = json.loads(m["manifest.json"])
    manifest["files"] = [f for f in manifest["files"] if f["path"] != "alerts.jsonl"]
    m["manifest.json"] = json.dumps(manifest).encode()  # the time-stamp is kept


def _broken_stamp(m: dict[str, bytes]) -> None:
    token = bytearray(m["manifest.json.tsr"])
    token[-10] ^= 0x01  # inside the TSA's signature
    m["manifest.json.tsr"] = bytes(token)


@pytest.mark.parametrize(
    ("tamper", "codes"),
    [
        (_edit_value, {"bad_signature"}),
        (_delete_row, {"seq_gap", "row_count"}),
        (lambda m: _insert_row(m, as_the_node=False), {"unknown_key", "seq_gap", "row_count"}),
        (lambda m: _insert_row(m, as_the_node=True), {"bad_signature", "seq_gap", "row_count"}),
        (_copy_row, {"seq_repeat", "row_count"}),
        (_swap_key, {"key_mismatch", "unknown_key"}),
        (_change_report, {"file_changed"}),
        (_unmatched_manifest, {"file_unlisted", "timestamp_invalid"}),
        (_broken_stamp, {"timestamp_invalid"}),
    ],
    ids=["edited-value", "deleted-row", "inserted-row-unknown-key", "inserted-row-node-kid", "copied-row",
         "swapped-key", "changed-report", "manifest-mismatch", "bad-timestamp"],
)  # fmt: skip
def test_each_tampering_is_named(
    made: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tamper: Tamper,
    codes: set[str],
) -> None:
    members = _members(made["bundle"])
    tamper(members)
    bundle = _rezip(members, tmp_path / "tampered.zip")
    code, out = _verify(bundle, capsys)
    found = {line.split(" ", 1)[0] for line in out.splitlines() if "(" in line and ":" in line}
    assert code == 1, out
    assert codes <= found, out
    assert "bundle NOT verified" in out
    assert len(out.splitlines()) < 30  # named once or a few times, not once per row


def test_a_stamp_from_another_tsa_than_the_trusted_one_is_refused(
    made: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "o.key"),
         "-out", str(other), "-subj", "/CN=Other TSA", "-days", "2"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    code, out = _verify(made["bundle"], capsys, "--tsa-cert", str(other))
    assert code == 1 and "timestamp_invalid" in out and "not the trusted TSA" in out


def test_an_unreachable_tsa_fails_and_writes_no_bundle(made: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "b.zip"
    args = [
        "evidence",
        "--config",
        str(made["config"]),
        "--site",
        regdata.SITE,
        "--start",
        START,
        "--end",
        END,
    ]
    port = devservices.free_port()
    assert main([*args, "--out", str(out), "--tsa", f"http://127.0.0.1:{port}/"]) == 1
    assert not out.exists()
    assert main([*args, "--out", str(out), "--tsa", "ftp://x"]) == 2
