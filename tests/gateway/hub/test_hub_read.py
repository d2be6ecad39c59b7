"""The read seam on the hub: a PostgresReader reads as one jurisdiction's role, so what each sees
is decided by row-level security — its own sites, what is shared with it once the delay has
passed, and nothing else — and an export from the hub verifies as one from the site."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from contract import verify_offline as vo
from contract.metrics import Metric
from gateway import export
from gateway.stores.postgres_base import HubReadError, from_ms
from gateway.stores.postgres_reader import PostgresReader
from gateway.stores.reader import Span
from gateway.trust.registry import KeyRecord
from tests.gateway.hub.hubdata import DELAY, NOW, Hub, build


@pytest.fixture
def hub(pg: str) -> Hub:
    return build(pg)


def test_each_role_reads_its_own_and_what_is_shared_and_nothing_else(hub: Hub) -> None:
    seen = {}
    for jid, role in hub.roles.items():
        reader = PostgresReader(hub.dsn, role)
        seen[jid] = (reader.nodes(), {(x.site, x.node) for x in reader.latest(NOW)})
        reader.close()
    assert seen["soum"] == ([("tsagaan", "a")], {("tsagaan", "a")})
    assert seen["aimag"] == ([("tsagaan", "a"), ("ulaan", "b")], {("tsagaan", "a"), ("ulaan", "b")})
    assert seen["other"] == ([], set())


def test_the_delay_is_respected(hub: Hub) -> None:
    soum, aimag = PostgresReader(hub.dsn, hub.roles["soum"]), PostgresReader(hub.dsn, hub.roles["aimag"])
    span = Span("tsagaan", [], NOW - timedelta(days=1), NOW)
    own = [from_ms(r["time"]) for r in soum.readings(span, ["seq"])]
    shared = [from_ms(r["time"]) for r in aimag.readings(span, ["seq"])]
    assert len(own) == 36 and max(own) == NOW  # the owner sees up to now
    assert len(shared) == 36 - 12 and max(shared) <= NOW - DELAY  # the last two hours are not shared yet
    assert aimag.latest(NOW, site="tsagaan")[0].time <= NOW - DELAY
    assert [e.rule for e in aimag.alerts(NOW - timedelta(days=1), NOW)] == ["pm-high"]  # 3 h old: shared
    soum.close()
    aimag.close()


def test_a_role_that_is_not_given_is_refused(hub: Hub) -> None:
    reader = PostgresReader(hub.dsn, "j_nobody_at_all")
    with pytest.raises(HubReadError):
        reader.nodes()


def test_an_export_of_a_shared_site_verifies_with_the_hubs_keys(hub: Hub, tmp_path: Path) -> None:
    reader = PostgresReader(hub.dsn, hub.roles["aimag"])
    req = export.ExportRequest(site="tsagaan", nodes=[], start=NOW - timedelta(days=1), end=NOW,
                               metrics=[Metric.PM2_5])  # fmt: skip
    out = io.StringIO()
    rows = export.write(reader, req, out, "csv")
    assert rows == 24
    path = tmp_path / "tsagaan.csv"
    path.write_text(out.getvalue())
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps([KeyRecord.model_validate(r).public_doc() for r in reader.key_records()]))
    keys, problems = vo.load_keys(keys_file)
    report = vo.check_rows(vo.read_rows_file(path), keys)
    assert not problems and report.rows == 24 and report.exit_status() == 0, report.problems
    reader.close()


def test_in_sql_each_role_sees_its_own_alerts_and_keys_and_no_token(hub: Hub) -> None:
    import psycopg

    def as_role(role: str, query: str) -> list[tuple[object, ...]]:
        with psycopg.connect(hub.dsn) as conn:
            conn.execute(f'SET ROLE "{role}"')
            return conn.execute(query).fetchall()

    keys = "SELECT site, node FROM node_key ORDER BY 1"
    assert as_role(hub.roles["soum"], keys) == [("tsagaan", "a")]
    assert as_role(hub.roles["aimag"], keys) == [("tsagaan", "a"), ("ulaan", "b")]
    assert as_role(hub.roles["other"], keys) == []
    alerts = "SELECT site, id FROM alert_event"
    assert as_role(hub.roles["aimag"], alerts) == [("tsagaan", "al-1")]
    assert as_role(hub.roles["other"], alerts) == []
    for role in hub.roles.values():  # the tokens' hashes are the hub's alone
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_role(role, "SELECT * FROM api_token")


def test_a_login_that_may_not_take_the_role_reads_nothing(hub: Hub) -> None:
    import uuid

    import psycopg

    login = f"web_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(hub.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{login}" LOGIN')
    dsn = hub.dsn.replace("user=minewatch", f"user={login}")
    reader = PostgresReader(dsn, hub.roles["aimag"])
    with pytest.raises(HubReadError, match="cannot read as"):
        reader.nodes()
    reader.close()
    with psycopg.connect(hub.dsn, autocommit=True) as conn:  # granted the role, it reads as the role
        conn.execute(f'GRANT "{hub.roles["soum"]}" TO "{login}"')
    reader = PostgresReader(dsn, hub.roles["soum"])
    assert reader.nodes() == [("tsagaan", "a")]
    reader.close()


def test_a_noinherit_login_for_the_web_server_reads_nothing_until_it_takes_a_role(hub: Hub) -> None:
    import uuid

    import psycopg

    login = f"web_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(hub.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{login}" LOGIN NOINHERIT')
        for role in hub.roles.values():
            conn.execute(f'GRANT "{role}" TO "{login}"')
    dsn = hub.dsn.replace("user=minewatch", f"user={login}")
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT count(*) FROM reading")
    for jid, sites in (("soum", [("tsagaan", "a")]), ("other", [])):
        reader = PostgresReader(dsn, hub.roles[jid])
        assert reader.nodes() == sites
        reader.close()
