"""The hub's PostgreSQL store: partitions by month, one row per (site, node, seq), and row-level
security deciding what each jurisdiction's role reads — checked by connecting as that role."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from contract.signing import Signer, public_b64
from gateway.stores.postgres_hub import HubInputError, HubStore, Verdicted
from tests.alert_helpers import reading
from tests.helpers import ROOT

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def hub(pg: str) -> Iterator[HubStore]:
    store = HubStore(pg)
    store.prepare()
    yield store
    store.close()


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
