"""The field records' stores against the real thing: observations and decisions in a real influxd
(nothing overwritten, a resubmission stored once), the SQLite of a gateway that kept them before
migrated without losing any (and run twice, nothing doubled), and monitor accounts in SQLite
(scrypt hashes, sessions by hash only, a lockout that ends with its window by the clock given)."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import InfluxConfig, load
from gateway.observations import records
from gateway.observations.accounts import (
    LOCK_WINDOW,
    MAX_FAILURES,
    AccountError,
    Accounts,
    BadLogin,
    LockedOut,
)
from gateway.observations.migrate import MARKER_FILE
from gateway.observations.records import AlreadyDecided, FieldRecords, Observation
from gateway.observations.store import STORE_FILE, ObservationStore
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from gateway.web.server import app_for
from gateway.web.status import StatusBoard
from tests import regdata
from tests.helpers import Influx

T0 = regdata.DAY0


def _field(influx: Influx, tmp_path: Path) -> FieldRecords:
    store = InfluxV1(InfluxConfig(url=influx.url, database=influx.db))  # type: ignore[arg-type]
    return FieldRecords(store, InfluxReader(store, owned=False), tmp_path / "photos")


def _obs(i: int, **changes: object) -> Observation:
    doc: dict[str, object] = {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "observer": "code:1",
        "kind": "dust",
        "text": f'line one\nline two, "quoted" {i}',
        "at": T0 + timedelta(hours=1),
        "site": regdata.SITE,
        "node": "river-down",
        "lat": None,
        "lon": None,
        "received": T0 + timedelta(hours=2),
        "photo_received_sha256": None,
        "photo_sha256": None,
        **changes,
    }
    return Observation(**doc)  # type: ignore[arg-type]


def test_the_list_shows_times_in_the_sites_zone_and_json_keeps_utc(
    influx: Influx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    field = _field(influx, tmp_path)
    seen = _obs(1, text="dust over the road")
    assert field.add(seen, None)
    config = regdata.gateway_config(tmp_path / "gateway.toml", influx)
    config.write_text(
        f'data_dir = "{tmp_path}"\n' + config.read_text() + '[site]\ntimezone = "Asia/Ulaanbaatar"\n'
    )
    capsys.readouterr()
    assert main(["observations", "list", "--config", str(config)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    shown = "2026-11-01 09:00 UTC+08  dust  at river-down  pending  by code:1  'dust over the road'"
    assert line == f"{seen.id}  {shown}"
    assert main(["observations", "list", "--config", str(config), "--json"]) == 0
    (doc,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (doc["at"], doc["received"]) == ("2026-11-01T01:00:00Z", "2026-11-01T02:00:00Z")
    assert (
        main(["observations", "accept", seen.id, "--config", str(config), "--by", "Saraa", "--why", "seen"])
        == 0
    )
    assert f"{seen.id}: accepted by Saraa at " in (out := capsys.readouterr().out) and "UTC+08" in out


def test_observations_at_the_same_time_and_decisions_are_all_kept(influx: Influx, tmp_path: Path) -> None:
    field = _field(influx, tmp_path)
    a, b = _obs(1), _obs(2, kind="dust")  # the same kind, node and millisecond: two points all the same
    assert field.add(a, None) and field.add(b, None)
    assert not field.add(a, None)  # the phone's queue sent it again: stored once
    where = _obs(3, site=None, node=None, lat=43.1, lon=106.8, place="map")
    assert field.add(where, None)
    got = records.listed(field.reader, site=regdata.SITE)
    assert [o.id for o in got] == [a.id, b.id, where.id]
    assert got[0].text == a.text and got[2].place == "map" and got[2].lat == 43.1
    field.decide(a.id, "accepted", "Saraa", "seen", T0 + timedelta(hours=3))
    field.decide(a.id, "rejected", "Bold", "another day's photo", T0 + timedelta(hours=4))
    with pytest.raises(AlreadyDecided):
        field.decide(a.id, "rejected", "Bold", "again", T0 + timedelta(hours=4))
    with pytest.raises(KeyError):
        field.decide("00000000-0000-4000-8000-999999999999", "accepted", "Saraa", "x", T0)
    history = records.decisions_of(field.reader)[a.id]
    assert [(d.decision, d.by, d.why) for d in history] == [
        ("accepted", "Saraa", "seen"),
        ("rejected", "Bold", "another day's photo"),
    ]
    found = records.find(field.reader, a.id)
    assert found is not None and found.state == "rejected"
    assert [o.id for o in records.listed(field.reader, "pending")] == [b.id, where.id]
    assert len(influx.rows('SELECT * FROM "observation_decision"')) == 2
    field.close()


LEGACY_SCHEMA = """
CREATE TABLE observers (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
  code_sha256 TEXT NOT NULL UNIQUE, created TEXT NOT NULL, revoked TEXT, revoked_by TEXT);
CREATE TABLE observations (id TEXT PRIMARY KEY, observer INTEGER NOT NULL,
  kind TEXT NOT NULL, text TEXT NOT NULL, at TEXT NOT NULL, site TEXT, node TEXT, lat REAL, lon REAL,
  received TEXT NOT NULL, photo_received_sha256 TEXT, photo_sha256 TEXT);
CREATE TABLE decisions (id INTEGER PRIMARY KEY, observation TEXT NOT NULL,
  decision TEXT NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL, why TEXT NOT NULL);
INSERT INTO observers VALUES (1, 'Dorj', 'ab', '2026-10-30T00:00:00.000Z', NULL, NULL);
INSERT INTO observations VALUES
 ('00000000-0000-4000-8000-000000000001', 1, 'dust', 'plume', '2026-11-01T10:00:00.000Z', 'tsagaan',
  'river-down', NULL, NULL, '2026-11-01T10:05:00.000Z', 'aa', 'bb'),
 ('00000000-0000-4000-8000-000000000002', 1, 'smell', 'sulphur', '2026-11-01T11:00:00.000Z', NULL,
  NULL, 43.1, 106.9, '2026-11-01T11:05:00.000Z', NULL, NULL),
 ('00000000-0000-4000-8000-000000000003', 1, 'trucks', 'night', '2026-11-01T12:00:00.000Z', 'tsagaan',
  'river-down', NULL, NULL, '2026-11-01T12:05:00.000Z', NULL, NULL);
INSERT INTO decisions (observation, decision, by, at, why) VALUES
 ('00000000-0000-4000-8000-000000000001', 'rejected', 'Saraa', '2026-11-01T13:00:00.000Z', 'unclear'),
 ('00000000-0000-4000-8000-000000000001', 'accepted', 'Bold', '2026-11-01T14:00:00.000Z', 'on the chart'),
 ('00000000-0000-4000-8000-000000000002', 'rejected', 'Saraa', '2026-11-01T13:00:00.000Z', 'no place');
"""


def test_migrate_copies_every_observation_and_decision_once(
    influx: Influx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / STORE_FILE)
    db.executescript(LEGACY_SCHEMA)
    db.close()
    before = (data / STORE_FILE).read_bytes()
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{data}"\n' + regdata.gateway_config(tmp_path / "x.toml", influx).read_text()
    )
    assert main(["observations", "migrate", "--config", str(config)]) == 0
    assert "migrated 3 observations and 3 decisions" in capsys.readouterr().out
    assert main(["observations", "migrate", "--config", str(config)]) == 0  # again: nothing doubled
    assert "migrated 0 observations and 0 decisions" in capsys.readouterr().out
    reader = InfluxReader(InfluxV1(InfluxConfig(url=influx.url, database=influx.db)))  # type: ignore[arg-type]
    got = {o.id[-1]: o for o in records.listed(reader)}
    assert {k: (o.kind, o.state, o.decided_by) for k, o in got.items()} == {
        "1": ("dust", "accepted", "Bold"),
        "2": ("smell", "rejected", "Saraa"),
        "3": ("trucks", "pending", None),
    }
    assert (got["1"].photo_received_sha256, got["1"].photo_sha256, got["1"].observer) == (
        "aa",
        "bb",
        "code:1",
    )
    assert (got["2"].lat, got["2"].lon, got["2"].place, got["2"].node) == (43.1, 106.9, "position", None)
    assert len(influx.rows('SELECT * FROM "observation_decision"')) == 3
    reader.close()
    # the old file opens as the codes' store and its rows are still there
    store = ObservationStore(data / STORE_FILE)
    assert len(store.legacy()) == 3 and [o.name for o in store.observers()] == ["Dorj"]
    store.close()
    assert len(before) > 0


def test_accounts_keep_hashes_and_lock_out_by_the_clock(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "monitors.sqlite")
    accounts.add("saraa", "correct horse battery", T0)
    with pytest.raises(AccountError, match="exists"):
        accounts.add("saraa", "another pass phrase", T0)
    with pytest.raises(AccountError, match="10 to"):
        accounts.add("bold", "short", T0)
    with pytest.raises(AccountError, match="name"):
        accounts.add("../root", "correct horse battery", T0)
    session = accounts.login("saraa", "correct horse battery", "10.0.0.5", T0)
    assert accounts.session(session.token, T0 + timedelta(hours=1)) == session
    assert accounts.session(session.token, session.expires) is None  # expired
    raw = (tmp_path / "monitors.sqlite").read_bytes()
    assert b"correct horse" not in raw and session.token.encode() not in raw
    for i in range(MAX_FAILURES):
        with pytest.raises(BadLogin):
            accounts.login("saraa", "wrong", "10.0.0.9", T0 + timedelta(minutes=1 + i))
    with pytest.raises(LockedOut) as locked:
        accounts.login("saraa", "correct horse battery", "10.0.0.9", T0 + timedelta(minutes=7))
    assert locked.value.retry_after == T0 + timedelta(minutes=1) + LOCK_WINDOW
    later = accounts.login(
        "saraa", "correct horse battery", "10.0.0.9", locked.value.retry_after + timedelta(seconds=1)
    )
    assert later.monitor == "saraa"
    accounts.logout(later.token, T0 + timedelta(hours=1))
    assert accounts.session(later.token, T0 + timedelta(hours=1)) is None
    accounts.close()


def test_monitors_cli_refuses_a_bad_password_and_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[influxdb]\nurl = "http://127.0.0.1:9"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["monitors", "add", "--config", str(config), "--name", "saraa", "--password-stdin"]) == 2
    assert "10 to 256" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a long pass phrase\n"))
    assert main(["monitors", "add", "--config", str(config), "--name", "saraa", "--password-stdin"]) == 0
    assert main(["monitors", "list", "--config", str(config)]) == 0
    assert "saraa  since" in capsys.readouterr().out


def test_the_dashboard_migrates_once_when_it_starts(influx: Influx, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / STORE_FILE)
    db.executescript(LEGACY_SCHEMA)
    db.close()
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{data}"\n' + regdata.gateway_config(tmp_path / "x.toml", influx).read_text()
    )
    app_for(load(config), StatusBoard())
    deadline = time.monotonic() + 30
    while not (data / MARKER_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert json.loads((data / MARKER_FILE).read_text())["observations"] == 3
    assert len(influx.rows('SELECT * FROM "observation"')) == 3
    assert len(influx.rows('SELECT * FROM "observation_decision"')) == 3


def test_photos_one_as_earlier_versions_wrote_it_and_several_read_back(
    influx: Influx, tmp_path: Path
) -> None:
    """Additive: a point of one photo stored by an earlier version reads as one photo, a new one of
    one photo is the very line an earlier version writes, and several come back in their order."""
    field = _field(influx, tmp_path)
    one_in, one = "c1" * 32, "d1" * 32
    old = _obs(1, photo_received_sha256=one_in, photo_sha256=one)
    line = old.to_line()
    assert "photos_" not in line  # what every version writes for one photo
    field.store.write([line])
    three = _obs(
        2,
        photos_received_sha256=("e1" * 32, "e2" * 32, "e3" * 32),
        photos_sha256=("f1" * 32, "f2" * 32, "f3" * 32),
    )
    assert three.photo_received_sha256 == "e1" * 32 and three.photo_sha256 == "f1" * 32
    assert f'photos_sha256="{"f1" * 32},{"f2" * 32},{"f3" * 32}"' in three.to_line()
    assert field.add(three, None)
    a, b = records.listed(field.reader)
    assert (a.photos_received_sha256, a.photos_sha256, a.photo_sha256) == ((one_in,), (one,), one)
    assert b.photos_received_sha256 == three.photos_received_sha256 and b.photos_sha256 == three.photos_sha256
    assert field.photo(a) == tmp_path / "photos" / f"{one}.jpg" and field.photo(a, 2) is None
    assert field.photo(b, 3) == tmp_path / "photos" / f"{'f3' * 32}.jpg"
    with pytest.raises(ValueError, match="first"):
        _obs(3, photo_sha256="aa" * 32, photos_sha256=("bb" * 32,))
