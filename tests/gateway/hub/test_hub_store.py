"""The hub's PostgreSQL store: partitions by month, one row per (site, node, seq), and row-level
security deciding what each jurisdiction's role reads — checked by connecting as that role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from contract.signing import Signer, public_b64
from gateway.stores.postgres_hub import HubStore, Verdicted
from tests.alert_helpers import reading

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
