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
