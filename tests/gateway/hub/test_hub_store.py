"""The hub's PostgreSQL store: partitions by month, one row per (site, node, seq), and row-level
security deciding what each jurisdiction's role reads — checked by connecting as that role."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from contract.signing import Signer, public_b64
from gateway.stores.postgres_hub import HubInputError, HubStore, Verdicted
from tests.alert_helpers import reading
from tests.helpers import ROOT

NOW = datetime.now(UTC).replace(microsecond=0)


def _roles(store: HubStore) -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:8]
    roles = (f"j_soum_{tag}", f"j_aimag_{tag}", f"j_other_{tag}")
    for jid, role in zip(("soum", "aimag", "other"), roles, strict=True):
        store.add_jurisdiction(jid, jid.title(), role)
    return roles


def _as(dsn: str, role: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        conn.execute(f'SET ROLE "{role}"')
        return conn.execute(query).fetchall()


def _identity() -> str:
    return public_b64(Signer.generate().private.public_key())


def test_readings_are_stored_once_in_monthly_partitions(hub: HubStore, pg: str) -> None:
    _roles(hub)
    hub.add_site("tsagaan", "soum", _identity())
    old = [reading("a", datetime(2025, 1, 31, 23, 59, tzinfo=UTC), 10.0)]
    new = [reading("a", NOW - timedelta(minutes=i), float(i)) for i in range(3)]
    first = hub.write_readings([Verdicted(r, "unsigned") for r in old + new])
    again = hub.write_readings([Verdicted(r, "unsigned") for r in new])
    assert (first.stored, first.duplicate) == (4, 0)
    assert (again.stored, again.duplicate) == (0, 3)
    with psycopg.connect(pg) as conn:
        parts = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'reading'::regclass").fetchall()}  # fmt: skip
    assert "reading_2025_01" in parts and f"reading_{NOW:%Y_%m}" in parts


def test_each_jurisdiction_reads_its_own_and_what_is_shared_with_it(hub: HubStore, pg: str) -> None:
    soum, aimag, other = _roles(hub)
    hub.add_site("tsagaan", "soum", _identity())
    hub.add_site("ulaan", "aimag", _identity())
    rows = [reading("a", NOW - timedelta(hours=h), 1.0, site="tsagaan") for h in range(1, 5)]
    rows += [reading("b", NOW - timedelta(hours=1), 2.0, site="ulaan")]
    hub.write_readings([Verdicted(r, "unsigned") for r in rows])
    # the soum shares tsagaan with the aimag, two hours late
    hub.add_agreement(
        name="tsagaan-to-aimag", grantor="soum", grantee="aimag", sites=["tsagaan"],
        licence="CC-BY-4.0", valid_from=NOW - timedelta(days=1), valid_to=None, delay_s=7200,
        recorded_by="test",
    )  # fmt: skip
    query = "SELECT site, count(*) FROM reading GROUP BY site ORDER BY site"
    assert _as(pg, soum, query) == [("tsagaan", 4)]
    assert _as(pg, aimag, query) == [("tsagaan", 3), ("ulaan", 1)]  # the last hour is delayed
    assert _as(pg, other, query) == []
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _as(pg, other, f"SELECT count(*) FROM reading_{NOW:%Y_%m}")  # a partition is no way round
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _as(pg, soum, "DELETE FROM reading")


def test_a_new_version_of_an_agreement_replaces_the_old(hub: HubStore, pg: str) -> None:
    _, aimag, _ = _roles(hub)
    hub.add_site("tsagaan", "soum", _identity())
    hub.write_readings([Verdicted(reading("a", NOW - timedelta(hours=1), 1.0), "unsigned")])
    common = dict(name="t", grantor="soum", grantee="aimag", sites=["tsagaan"], licence="CC-BY-4.0",
                  valid_from=NOW - timedelta(days=1), delay_s=0, recorded_by="test")  # fmt: skip
    assert hub.add_agreement(valid_to=None, **common) == 1  # type: ignore[arg-type]
    assert _as(pg, aimag, "SELECT count(*) FROM reading") == [(1,)]
    assert hub.add_agreement(valid_to=NOW - timedelta(hours=2), **common) == 2  # type: ignore[arg-type]
    assert _as(pg, aimag, "SELECT count(*) FROM reading") == [(0,)]


def _two_metrics(node: str, ts: datetime, pm: float, turbidity: float, site: str = "tsagaan") -> Verdicted:
    from contract.metrics import Metric
    from contract.wire import MetricValue

    r = reading(node, ts, pm, site=site)
    metrics = {**r.metrics, Metric("turbidity"): MetricValue(value=turbidity, n=60)}
    return Verdicted(r.model_copy(update={"metrics": metrics}), "unsigned")


def test_an_agreement_may_share_only_some_metrics_raw_or_only_their_hourly_means(
    hub: HubStore, pg: str
) -> None:
    soum, aimag, other = _roles(hub)
    hub.add_site("tsagaan", "soum", _identity())
    hour = NOW.replace(minute=0, second=0) - timedelta(hours=3)  # three whole hours ago
    rows = [_two_metrics("a", hour + timedelta(minutes=m), float(m), 100.0 + m) for m in range(0, 120, 10)]
    assert hub.write_readings(rows).stored == 12
    assert hub.write_readings(rows[:3]).stored == 0  # a redelivery adds nothing to the aggregates
    common = dict(grantor="soum", sites=["tsagaan"], licence="CC-BY-4.0", valid_from=NOW - timedelta(days=1),
                  valid_to=None, delay_s=0, recorded_by="test")  # fmt: skip
    # the aimag sees turbidity raw, the other jurisdiction only hourly PM2.5 means
    turb = {"name": "turb", "grantee": "aimag", "metrics": ["turbidity"], "form": "raw"}
    hub.add_agreement(**turb, **common)  # type: ignore[arg-type]
    hub.add_agreement(name="pm", grantee="other", metrics=["pm2_5"], form="hourly", **common)  # type: ignore[arg-type]

    whole = "SELECT count(*) FROM reading"
    values = "SELECT metric, count(*), sum(value) FROM reading_value GROUP BY metric ORDER BY metric"
    hourly = "SELECT metric, hour, n, total / n FROM reading_hourly ORDER BY metric, hour"
    assert _as(pg, soum, whole) == [(12,)]
    assert _as(pg, soum, values) == [("pm2_5", 12, 660.0), ("turbidity", 12, 1860.0)]
    # the aimag: no whole (signed) reading, the turbidity values, and turbidity's hourly means
    assert _as(pg, aimag, whole) == [(0,)]
    assert _as(pg, aimag, values) == [("turbidity", 12, 1860.0)]
    assert _as(pg, aimag, hourly) == [
        ("turbidity", hour, 6, 125.0), ("turbidity", hour + timedelta(hours=1), 6, 185.0)
    ]  # fmt: skip
    # the other: PM2.5 hourly means only; no raw value at all
    assert _as(pg, other, whole) == [(0,)] and _as(pg, other, values) == []
    assert _as(pg, other, hourly) == [
        ("pm2_5", hour, 6, 25.0), ("pm2_5", hour + timedelta(hours=1), 6, 85.0)
    ]  # fmt: skip
    assert _as(pg, other, "SELECT site, id FROM node") == [("tsagaan", "a")]  # where the means come from
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _as(pg, other, "INSERT INTO reading_hourly VALUES ('tsagaan', 'a', 'pm2_5', now(), 1, 1, 1, 1)")


def test_a_share_of_some_metrics_shows_their_raw_values_calibration_and_the_readings_flags(
    hub: HubStore, pg: str
) -> None:
    """What a role granted turbidity alone reads through SQL: turbidity's value, raw value, samples
    and calibration id, and the reading's seq, flags and period — never a field of PM2.5."""
    from contract.flags import Flag
    from contract.metrics import Metric
    from contract.wire import MetricValue

    soum, aimag, _ = _roles(hub)
    hub.add_site("tsagaan", "soum", _identity())
    start = NOW.replace(second=0) - timedelta(hours=2)
    rows = []
    for i in range(6):
        r = reading("a", start + timedelta(minutes=10 * i), None, site="tsagaan",
                    flags=(Flag.HIGH_HUMIDITY,) if i % 2 else ())  # fmt: skip
        metrics = {
            Metric.PM2_5: MetricValue(value=10.0 + i, n=60, raw=90.0 + i, cal="pms-secret"),
            Metric.TURBIDITY: MetricValue(value=100.0 + i, n=30, raw=0.5 + i, cal="turb-7"),
        }
        rows.append(Verdicted(r.model_copy(update={"metrics": metrics}), "unsigned"))
    assert hub.write_readings(rows).stored == 6
    hub.add_agreement(name="turb", grantor="soum", grantee="aimag", sites=["tsagaan"], licence="CC-BY-4.0",
                      valid_from=NOW - timedelta(days=1), valid_to=None, delay_s=0, recorded_by="test",
                      metrics=["turbidity"])  # fmt: skip
    seqs = [r.reading.seq for r in rows]

    values = _as(pg, aimag, "SELECT seq, metric, value, raw, n, cal FROM reading_value ORDER BY seq")
    assert values == [(q, "turbidity", 100.0 + i, 0.5 + i, 30, "turb-7") for i, q in enumerate(seqs)]
    part = _as(pg, aimag, "SELECT seq, metrics, parts, flags, period_s, verdict, received IS NOT NULL"
                          " FROM reading_part ORDER BY ts")  # fmt: skip
    entry = [{"value": 100.0 + i, "raw": 0.5 + i, "n": 30, "cal": "turb-7"} for i in range(6)]
    assert part == [
        (q, {"turbidity": 100.0 + i}, {"turbidity": entry[i]}, ["high_humidity"] if i % 2 else [], 60,
         "unsigned", True)
        for i, q in enumerate(seqs)
    ]  # fmt: skip
    views = ("reading_part", "reading_value", "reading_part_newest")
    everything = _as(pg, aimag, " UNION ALL ".join(f"SELECT v::text FROM {v} v" for v in views))
    assert len(everything) == 18 and not any("pm" in t or "90." in t for (t,) in everything)
    # the same rows, each node's newest first: a LIMIT alone takes the node's latest
    newest = "SELECT seq FROM reading_part_newest WHERE site = 'tsagaan' AND node = 'a' AND ts <= {} LIMIT 1"
    assert _as(pg, aimag, newest.format("now()")) == [(seqs[-1],)]
    assert _as(pg, aimag, newest.format(f"'{start + timedelta(minutes=25)}'")) == [(seqs[2],)]
    # the owner reads whole readings; no part of them is offered as a part
    assert _as(pg, soum, "SELECT count(*) FROM reading_part") == [(0,)]
    assert _as(pg, soum, "SELECT count(*) FROM reading") == [(6,)]


def test_an_hour_is_shared_as_a_mean_only_once_it_is_over_and_the_delay_has_passed(
    hub: HubStore, pg: str
) -> None:
    _, aimag, _ = _roles(hub)
    hub.add_site("tsagaan", "soum", _identity())
    # the policy judges "over" by the database's clock, now: take the hour at the test's start (not
    # the module's NOW, taken minutes earlier), and never straddle an hour's end
    now = datetime.now(UTC)
    if now.minute == 59 and now.second >= 30:
        time.sleep(61 - now.second)
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hub.write_readings([_two_metrics("a", this_hour - timedelta(hours=h), 1.0, 2.0) for h in range(4)])
    common = dict(name="pm", grantor="soum", grantee="aimag", sites=["tsagaan"], licence="CC-BY-4.0",
                  valid_from=NOW - timedelta(days=1), valid_to=None, recorded_by="test",
                  metrics=["pm2_5"], form="hourly")  # fmt: skip
    query = "SELECT hour FROM reading_hourly ORDER BY hour"
    hub.add_agreement(delay_s=7200, **common)  # type: ignore[arg-type]
    # only an hour that ended two hours ago or more: the one three hours back
    assert _as(pg, aimag, query) == [(this_hour - timedelta(hours=3),)]
    hub.add_agreement(delay_s=0, **common)  # type: ignore[arg-type]
    # without a delay, every hour that is over; this hour's mean is not a mean yet
    assert _as(pg, aimag, query) == [(this_hour - timedelta(hours=h),) for h in (3, 2, 1)]
    with pytest.raises(HubInputError):
        hub.add_agreement(
            name="bad", grantor="soum", grantee="aimag", sites=["tsagaan"], licence="x",
            valid_from=NOW, valid_to=None, delay_s=0, recorded_by="test", form="daily",
        )  # fmt: skip


def test_the_agreement_command_records_its_metrics_and_form(hub: HubStore, pg: str, tmp_path: Path) -> None:
    _roles(hub)
    hub.add_site("tsagaan", "soum", _identity())
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f'[database]\ndsn = "{pg}"\n')
    base = [sys.executable, "-m", "gateway.cli", "hub", "agreement", "--config", str(cfg), "--name", "t",
            "--grantor", "soum", "--grantee", "aimag", "--sites", "tsagaan", "--licence", "CC-BY-4.0",
            "--from", "2026-01-01", "--by", "B. Bat"]  # fmt: skip
    ok = subprocess.run([*base, "--metrics", "turbidity, pm10", "--form", "hourly"], capture_output=True,
                        text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [*base, "--metrics", "turbidty"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert bad.returncode == 2 and "turbidty" in bad.stderr
    with psycopg.connect(pg) as conn:
        rows = conn.execute("SELECT version, metrics, form FROM agreement WHERE name = 't'").fetchall()
    assert rows == [(1, ["turbidity", "pm10"], "hourly")]
