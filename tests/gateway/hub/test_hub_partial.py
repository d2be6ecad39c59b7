"""What an agreement of some metrics, or of hourly means only, shares, through `minewatch-gateway hub
serve` with each grantee's API token: the basin authority granted turbidity raw sees the turbidity
values of gol and nothing else (no PM2.5, no other site, no signature, so `verify` finds no row
verified); the neighbour granted hourly PM2.5 means sees those means and nothing else. The owner
still sees the whole readings, signed."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contract import verify_offline as vo
from contract.flags import Flag
from contract.metrics import Metric
from contract.signing import Signer, public_b64
from contract.wire import MetricValue
from gateway.devservices import free_port
from gateway.stores.postgres_access import HubAccess
from gateway.stores.postgres_hub import HubStore, Verdicted
from gateway.stores.postgres_reader import PostgresReader
from gateway.stores.reader import Span
from tests.alert_helpers import reading
from tests.gateway.hub.hubdata import Hub, build, key_record

ROOT = Path(__file__).resolve().parents[3]
HOUR0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
READINGS = 24  # every 10 minutes for the four whole hours from HOUR0


@dataclass
class Shared:
    url: str
    hub: Hub
    roles: dict[str, str]
    tokens: dict[str, str]

    def get(self, path: str, who: str, **params: str) -> tuple[int, Any, bytes]:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        req = urllib.request.Request(self.url + path + query,
                                     headers={"Authorization": f"Bearer {self.tokens[who]}"})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, body, kind = resp.status, resp.read(), resp.headers.get("content-type", "")
        except urllib.error.HTTPError as exc:
            status, body, kind = exc.code, exc.read(), exc.headers.get("content-type", "")
        if kind.startswith("application/json"):
            return status, json.loads(body), body
        return status, body.decode("utf-8", "replace"), body


def _flags(i: int) -> tuple[Flag, ...]:
    return (Flag.HIGH_HUMIDITY,) if i % 4 == 3 else ()


def _gol(pg: str, hub: Hub) -> dict[str, str]:
    """Site gol of the soum, node g measuring PM2.5 (i, raw 500 + i) and turbidity (100 + i, raw
    i / 4), each with its calibration id, every fourth reading flagged high_humidity, signed; the basin
    authority is granted its turbidity raw, the neighbour its PM2.5 hourly means."""
    store = HubStore(pg)
    tag = hub.roles["soum"][-8:]
    roles = {"basin": f"j_basin_{tag}", "neighbour": f"j_neighbour_{tag}"}
    for jid, role in roles.items():
        store.add_jurisdiction(jid, jid.title(), role)
    store.add_site("gol", "soum", public_b64(Signer.generate().private.public_key()))
    key = Signer.generate()
    store.put_key(key_record(key, "gol", "g"), "vouch")
    rows = []
    for i in range(READINGS):
        r = reading("g", HOUR0 + timedelta(minutes=10 * i), float(i), site="gol", flags=_flags(i))
        metrics = {
            Metric.PM2_5: MetricValue(value=float(i), n=60, raw=500.0 + i, cal="pms-a12"),
            Metric.TURBIDITY: MetricValue(value=100.0 + i, n=60, raw=0.25 * i, cal="turb-b7"),
        }
        rows.append(Verdicted(key.sign(r.model_copy(update={"metrics": metrics})), "verified"))
    assert store.write_readings(rows).stored == READINGS
    for name, grantee, metric, form in (("gol-turbidity", "basin", "turbidity", "raw"),
                                        ("gol-pm-hourly", "neighbour", "pm2_5", "hourly")):  # fmt: skip
        store.add_agreement(name=name, grantor="soum", grantee=grantee, sites=["gol"], licence="CC-BY-4.0",
                            valid_from=HOUR0 - timedelta(days=1), valid_to=None, delay_s=0,
                            recorded_by="test", metrics=[metric], form=form)  # fmt: skip
    store.close()
    return roles


@pytest.fixture
def shared(pg: str, tmp_path: Path) -> Iterator[Shared]:
    hub = build(pg)
    roles = {**hub.roles, **_gol(pg, hub)}
    access = HubAccess(pg)
    tokens = {j: access.make_token(j, f"{j} office", "test", datetime.now(UTC)) for j in roles}
    access.close()
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\ndsn = "{pg}"\n[web]\nport = {port}\n')
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "hub", "serve", "--config", str(config)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/agreements.json", timeout=5).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "hub serve did not start"
            time.sleep(0.1)
    try:
        yield Shared(url, hub, roles, tokens)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, server.stderr.read() if server.stderr else ""


def _period() -> dict[str, str]:
    return {"site": "gol", "start": (HOUR0 - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ"),
            "end": (HOUR0 + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%MZ")}  # fmt: skip


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_turbidity_only_grantee_sees_the_turbidity_values_unsigned_and_nothing_else(
    shared: Shared, tmp_path: Path
) -> None:
    status, latest, _ = shared.get("/api/v1/latest", "basin")
    assert status == 200 and [(x["site"], x["node"]) for x in latest] == [("gol", "g")]
    assert set(latest[0]["values"]) == {"turbidity"}
    assert latest[0]["values"]["turbidity"]["value"] == 100.0 + READINGS - 1
    assert latest[0]["flags"] == ["high_humidity"]  # the last reading's, as the node signed them
    start = (HOUR0 - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    status, series, _ = shared.get("/api/v1/nodes/gol/g/series", "basin", start=start)
    assert status == 200 and set(series["series"]) == {"turbidity"}
    status, series, _ = shared.get("/api/v1/nodes/tsagaan/a/series", "basin", start=start)
    assert series["series"] == {}  # nobody shares tsagaan with the basin authority

    status, text, raw = shared.get("/api/v1/export.csv", "basin", **_period())
    assert status == 200, text
    rows = _csv(text)
    assert len(rows) == READINGS and not any(k.startswith("pm") for k in rows[0])
    assert sorted(float(r["turbidity"]) for r in rows) == [100.0 + i for i in range(READINGS)]
    # of the metric shared, all that the node signed of it; of the reading, what is not a metric's
    by_time = sorted(rows, key=lambda r: r["time"])
    assert [(r["turbidity_raw"], r["turbidity_n"], r["turbidity_cal"]) for r in by_time] == [
        (str(0.25 * i).removesuffix(".0"), "60", "turb-b7") for i in range(READINGS)
    ]
    assert [(r["flags"], r["period_s"]) for r in by_time] == [
        (",".join(_flags(i)), "60") for i in range(READINGS)
    ]
    seqs = [int(r["seq"]) for r in by_time]
    assert seqs == sorted(seqs) and len(set(seqs)) == READINGS and all(r["received"] for r in rows)
    # and nothing of PM2.5: no column, no raw value, no calibration id anywhere in the file
    assert "pms-a12" not in text and "pm2_5" not in text
    assert not any(c.startswith("50") for r in rows for c in r.values())
    # a part of a signed reading does not verify, and the row says so: never passed off as verified
    assert {(r["signed"], r["sig"], r["kid"], r["gateway_flags"]) for r in rows} == {
        ("false", "", "", "hub_partial")
    }
    status, keys, raw_keys = shared.get("/api/v1/keys", "basin", site="gol")
    assert status == 200 and keys == []
    (tmp_path / "gol.csv").write_bytes(raw)
    (tmp_path / "keys.json").write_bytes(raw_keys)
    loaded, _ = vo.load_keys(tmp_path / "keys.json")
    report = vo.check_rows(vo.read_rows_file(tmp_path / "gol.csv"), loaded)
    assert report.outcomes == {"unsigned": READINGS} and report.exit_status() != 0
    # another site it is not granted is unknown to it
    status, body, _ = shared.get("/api/v1/export.csv", "basin", **{**_period(), "site": "tsagaan"})
    assert status == 400 and "tsagaan" in body["error"]


def test_an_hourly_only_grantee_sees_the_hourly_means_and_nothing_else(shared: Shared) -> None:
    means = [6 * k + 2.5 for k in range(4)]  # PM2.5 of hour k is 6k .. 6k + 5
    status, latest, _ = shared.get("/api/v1/latest", "neighbour")
    assert status == 200 and [(x["site"], x["node"]) for x in latest] == [("gol", "g")]
    assert set(latest[0]["values"]) == {"pm2_5"} and latest[0]["values"]["pm2_5"]["value"] == means[-1]
    assert latest[0]["time"] == (HOUR0 + timedelta(hours=3, minutes=30)).isoformat().replace("+00:00", "Z")
    start = HOUR0.isoformat().replace("+00:00", "Z")
    end = (HOUR0 + timedelta(hours=4)).isoformat().replace("+00:00", "Z")
    status, series, _ = shared.get("/api/v1/nodes/gol/g/series", "neighbour", start=start, end=end)
    assert status == 200 and set(series["series"]) == {"pm2_5"}
    assert [v for v in series["series"]["pm2_5"] if v is not None] == means
    status, text, _ = shared.get("/api/v1/export.csv", "neighbour", **_period())
    assert status == 200, text
    rows = _csv(text)
    assert [float(r["pm2_5"]) for r in rows] == means and not any(k.startswith("turbidity") for k in rows[0])
    assert {(r["signed"], r["sig"], r["seq"], r["gateway_flags"], r["pm2_5_n"]) for r in rows} == {
        ("false", "", "", "hub_hourly_mean", "6")
    }
    # nothing of the other sites, no alert, no status, no key
    assert shared.get("/api/v1/alerts", "neighbour")[1] == []
    assert shared.get("/api/v1/keys", "neighbour", site="gol")[1] == []


def test_the_owner_still_sees_whole_signed_readings(shared: Shared) -> None:
    status, text, _ = shared.get("/api/v1/export.csv", "soum", **_period())
    rows = _csv(text)
    assert status == 200 and len(rows) == READINGS
    assert {(r["signed"], r["gateway_flags"]) for r in rows} == {("true", "")}
    assert all(r["pm2_5"] and r["turbidity"] and r["sig"] for r in rows)


def test_the_reports_means_come_from_what_the_role_may_see(shared: Shared) -> None:
    span = Span("gol", [], HOUR0 - timedelta(hours=1), HOUR0 + timedelta(hours=5))

    def mean(jid: str, metric: str) -> list[Any]:
        reader = PostgresReader(shared.hub.dsn, shared.roles[jid])
        try:
            return [r["mean"] for r in reader.aggregate(span, metric, ["mean"], per_node=True)]
        finally:
            reader.close()

    assert mean("soum", "pm2_5") == [11.5] and mean("soum", "turbidity") == [111.5]
    assert mean("basin", "turbidity") == [111.5] and mean("basin", "pm2_5") in ([], [None])
    assert mean("neighbour", "pm2_5") == [11.5] and mean("neighbour", "turbidity") in ([], [None])
    assert mean("other", "turbidity") == []
    status, html, _ = shared.get("/api/v1/report.html", "basin", site="gol",
                                 start=f"{HOUR0 - timedelta(days=1):%Y-%m-%d}",
                                 end=f"{HOUR0 + timedelta(days=1):%Y-%m-%d}")  # fmt: skip
    assert status == 200 and "<table" in html and "reading_part" in html


def test_a_metric_limited_roles_latest_is_the_newest_part_at_the_time_asked(shared: Shared) -> None:
    """The latest for a role granted turbidity alone, at several times, as the role (SQL through the
    read seam): the newest reading at or before that time, its turbidity and flags only."""
    reader = PostgresReader(shared.hub.dsn, shared.roles["basin"])
    try:
        for i in (0, 6, 11, READINGS - 1):
            at = HOUR0 + timedelta(minutes=10 * i, seconds=30)
            (got,) = reader.latest(at)
            assert (got.site, got.node, got.time) == ("gol", "g", HOUR0 + timedelta(minutes=10 * i))
            assert got.values == {"turbidity": 100.0 + i} and got.flags == list(_flags(i))
        assert reader.latest(HOUR0 - timedelta(minutes=1)) == []
        assert reader.latest(HOUR0 + timedelta(hours=1), site="tsagaan") == []
        assert reader.nodes() == [("gol", "g")] and reader.nodes("tsagaan") == []
    finally:
        reader.close()
    hourly = PostgresReader(shared.hub.dsn, shared.roles["neighbour"])
    try:
        assert hourly.nodes() == [("gol", "g")]
        # a mean is stamped at the middle of its hour: at 2:15 the latest is hour 1's, at 2:45 hour 2's
        for at, stamp, mean in ((135, 90, 8.5), (165, 150, 14.5)):
            (got,) = hourly.latest(HOUR0 + timedelta(minutes=at))
            assert (got.time, got.values) == (HOUR0 + timedelta(minutes=stamp), {"pm2_5": mean})
    finally:
        hourly.close()
