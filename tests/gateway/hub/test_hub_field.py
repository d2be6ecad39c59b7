"""Field records at the hub: maintenance visits and accepted observations (with their decisions)
come in forwarded batches, are stored once under the site's names for them (a resend adds nothing,
a differing one is refused and kept), and are read as readings are: each jurisdiction's role sees
those of the sites it may see whole, so the hub's export marks the readings in a visit's window
and the hub's report and evidence bundle carry them."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from contract.hub import ForwardBatch, ForwardedDecision, ForwardedObservation, ForwardedVisit, HubAck
from contract.metrics import Metric
from gateway import export, maintenance
from gateway.hub import outputs
from gateway.hub.ingest import HubIngest
from gateway.observations import records
from gateway.stores.postgres_hub import HubStore
from gateway.stores.postgres_reader import PostgresReader
from tests.gateway.hub.hubdata import NOW, Hub, as_message, build

CLEANED_AT = NOW - timedelta(hours=4)
VISIT = ForwardedVisit(
    node="a", kind="cleaned", at=CLEANED_AT, by="D. Dorj", note="window wiped",
    flag_from=CLEANED_AT - timedelta(minutes=25), flag_to=CLEANED_AT + timedelta(minutes=5),
    recorded=CLEANED_AT + timedelta(hours=1),
)  # fmt: skip
SHA = "ab" * 32
DUST = ForwardedObservation(
    id="3f6c2b1e-0000-4000-8000-000000000001", kind="dust", text="plume from the pit", node="a",
    at=NOW - timedelta(hours=3), received=NOW - timedelta(hours=3), photo_received_sha256=SHA,
    photo_sha256="cd" * 32,
    decisions=[ForwardedDecision(decision="accepted", by="monitor B", at=NOW - timedelta(hours=3) +
                                 timedelta(minutes=10), why="seen from the road too")],
)  # fmt: skip
# accepted, then retracted at the site: the hub keeps both decisions and shows the latest
FISH = ForwardedObservation(
    id="3f6c2b1e-0000-4000-8000-000000000002", kind="dead_fish", text="by the ford", place="position",
    lat=43.11, lon=106.85, at=NOW - timedelta(hours=5), received=NOW - timedelta(hours=5),
    decisions=[
        ForwardedDecision(decision="accepted", by="monitor B", at=NOW - timedelta(hours=5), why="photo"),
        ForwardedDecision(decision="rejected", by="monitor C", at=NOW - timedelta(hours=4), why="old photo"),
    ],
)  # fmt: skip


@pytest.fixture
def hub(pg: str) -> Hub:
    return build(pg)


def _ingest(hub: Hub, batch: ForwardBatch) -> HubAck:
    ingest = HubIngest(HubStore(hub.dsn), "hub")
    try:
        answer = ingest.handle(as_message(batch))
    finally:
        ingest.close()
    assert answer is not None
    return HubAck.model_validate_json(answer[1])


def _forwarded(hub: Hub) -> HubAck:
    return _ingest(hub, ForwardBatch(site="tsagaan", batch=7, visits=[VISIT], observations=[DUST, FISH]))


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # the owner: no row-level security
    return int(row[0]) if row else 0


def test_field_records_are_stored_once_and_a_differing_one_is_refused_and_kept(hub: Hub) -> None:
    first = _forwarded(hub)
    # a visit, two observations, three decisions
    assert (first.stored, first.duplicate, first.refused) == (6, 0, 0)
    # the site resends (its ack was lost): under a new batch id, nothing is stored twice
    again = _ingest(hub, ForwardBatch(site="tsagaan", batch=8, visits=[VISIT], observations=[DUST, FISH]))
    assert (again.stored, again.duplicate, again.refused) == (0, 6, 0)
    # a visit of the same name (node, kind, time) that differs, and an observation whose text does
    changed_visit = VISIT.model_copy(update={"note": "a different note"})
    changed_obs = DUST.model_copy(update={"text": "edited"})
    refused = _ingest(hub, ForwardBatch(site="tsagaan", batch=9, visits=[changed_visit],
                                        observations=[changed_obs]))  # fmt: skip
    assert (refused.stored, refused.duplicate, refused.refused) == (0, 0, 2)
    assert {t: _count(hub.dsn, t) for t in ("maintenance_visit", "observation", "observation_decision")} == {
        "maintenance_visit": 1, "observation": 2, "observation_decision": 3,
    }  # fmt: skip
    with psycopg.connect(hub.dsn) as conn:
        note = conn.execute("SELECT note FROM maintenance_visit").fetchone()
        text = conn.execute("SELECT text FROM observation WHERE id = %s", [DUST.id]).fetchone()
        kept = conn.execute("SELECT reason, payload FROM reject ORDER BY id").fetchall()
    assert note == ("window wiped",) and text == ("plume from the pit",)  # nothing replaced
    assert [r[0] for r in kept] == ["field_conflict", "field_conflict"]
    assert json.loads(bytes(kept[0][1]))["note"] == "a different note"  # what came is kept for review
    # a later decision on a stored observation is stored beside the first
    later = DUST.model_copy(update={"decisions": [*DUST.decisions, ForwardedDecision(
        decision="rejected", by="monitor C", at=NOW - timedelta(hours=1), why="duplicate")]})  # fmt: skip
    more = _ingest(hub, ForwardBatch(site="tsagaan", batch=10, observations=[later]))
    assert (more.stored, more.duplicate, more.refused) == (1, 2, 0)


def test_each_role_sees_the_field_records_of_the_sites_it_may_see_whole(hub: Hub) -> None:
    _forwarded(hub)
    seen = {}
    for jid, role in hub.roles.items():
        reader = PostgresReader(hub.dsn, role)
        try:
            visits = maintenance.visits(reader, "tsagaan", NOW - timedelta(days=1), NOW)
            accepted = records.listed(reader, "accepted", NOW - timedelta(days=1), NOW, site="tsagaan")
            present = reader.measurements()
        finally:
            reader.close()
        seen[jid] = ([(v.kind, v.at, v.by, v.flag_to) for v in visits], [o.id for o in accepted],
                     {"maintenance", "observation"} & present)  # fmt: skip
    visit = ("cleaned", CLEANED_AT, "D. Dorj", CLEANED_AT + timedelta(minutes=5))
    assert seen["soum"] == ([visit], [DUST.id], {"maintenance", "observation"})
    # the aimag's agreement shares tsagaan two hours late: the visit (4 h) and the dust (3 h) are
    # older than that; the fish was retracted, so nobody sees it
    assert seen["aimag"] == ([visit], [DUST.id], {"maintenance", "observation"})
    assert seen["other"] == ([], [], set())  # no agreement for tsagaan: nothing
    # in SQL as well, as a regulator would read it: the retracted observation's row is not shown
    with psycopg.connect(hub.dsn) as conn:
        conn.execute(f"SET ROLE {hub.roles['soum']}")
        ids = conn.execute("SELECT id FROM observation").fetchall()
        decided = conn.execute("SELECT count(*) FROM observation_decision").fetchone()
        conn.execute(f"SET ROLE {hub.roles['other']}")
        nothing = conn.execute(
            "SELECT (SELECT count(*) FROM maintenance_visit) + (SELECT count(*) FROM observation)"
            " + (SELECT count(*) FROM observation_decision)"
        ).fetchone()
    assert ids == [(DUST.id,)] and decided == (3,) and nothing == (0,)


def test_a_visit_within_the_delay_is_not_shared_yet(hub: Hub) -> None:
    recent = VISIT.model_copy(update={"at": NOW - timedelta(hours=1), "flag_from": None, "flag_to": None})
    _ingest(hub, ForwardBatch(site="tsagaan", batch=1, visits=[recent]))
    for jid, expected in (("soum", 1), ("aimag", 0)):
        reader = PostgresReader(hub.dsn, hub.roles[jid])
        assert len(maintenance.visits(reader, "tsagaan", NOW - timedelta(days=1), NOW)) == expected, jid
        reader.close()


def test_the_hubs_export_report_and_evidence_carry_the_field_records(hub: Hub, tmp_path: Path) -> None:
    _forwarded(hub)
    reader = PostgresReader(hub.dsn, hub.roles["aimag"])
    req = export.ExportRequest(site="tsagaan", nodes=[], start=NOW - timedelta(days=1), end=NOW,
                               metrics=[Metric.PM2_5])  # fmt: skip
    out = io.StringIO()
    export.write(reader, req, out, "csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    marked = sorted(r["time"] for r in rows if r["maintenance"])
    # readings every 10 minutes: those stamped in (at - 25 min, at + 5 min] are marked, no other
    expected = [CLEANED_AT - timedelta(minutes=m) for m in (20, 10, 0)]
    assert len(marked) == 3 and {r["maintenance"] for r in rows if r["maintenance"]} == {"cleaned"}
    assert marked == sorted(t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in expected)

    report = tmp_path / "report.html"
    outputs.report_file(reader, req, report, NOW)
    html = report.read_text()
    assert 'id="maintenance-table"' in html and "window wiped" in html
    assert 'id="observations-table"' in html and "plume from the pit" in html and "by the ford" not in html
    assert "FROM maintenance_visit" in html  # the query behind the section, for psql

    bundle = tmp_path / "bundle.zip"
    outputs.evidence_file(reader, req, bundle, NOW)
    reader.close()
    with zipfile.ZipFile(bundle) as z:
        visits = [json.loads(line) for line in z.read("maintenance.jsonl").decode().splitlines()]
        observed = [json.loads(line) for line in z.read("observations.jsonl").decode().splitlines()]
    assert [(v["kind"], v["by"]) for v in visits] == [("cleaned", "D. Dorj")]
    assert [o["id"] for o in observed] == [DUST.id]
    assert observed[0]["photo_received_sha256"] == SHA  # the hash; the photo stays at the site
    assert [d["decision"] for d in observed[0]["decisions"]] == ["accepted"]


def test_near_node_is_compared_only_when_it_comes_and_fills_a_row_without_one(hub: Hub) -> None:
    """An earlier site sends no `near_node`; once upgraded it resends what it forwarded, with the
    node: that completes the row. Without it, the same record is a duplicate; another node differs."""
    spot = ForwardedObservation(
        id="3f6c2b1e-0000-4000-8000-000000000003", kind="dust", text="from the haul road",
        place="map", lat=43.1, lon=106.8, at=NOW - timedelta(hours=2), received=NOW - timedelta(hours=2),
        decisions=[ForwardedDecision(decision="accepted", by="monitor B", at=NOW - timedelta(hours=1))],
    )  # fmt: skip
    first = _ingest(hub, ForwardBatch(site="tsagaan", batch=20, observations=[spot]))
    assert (first.stored, first.duplicate, first.refused) == (2, 0, 0)
    near_a = spot.model_copy(update={"near_node": "a"})
    upgraded = _ingest(hub, ForwardBatch(site="tsagaan", batch=21, observations=[near_a]))
    assert (upgraded.stored, upgraded.duplicate, upgraded.refused) == (0, 2, 0)
    older = _ingest(hub, ForwardBatch(site="tsagaan", batch=22, observations=[spot]))  # no node: not compared
    assert (older.stored, older.duplicate, older.refused) == (0, 2, 0)
    near_b = spot.model_copy(update={"near_node": "b"})
    other = _ingest(hub, ForwardBatch(site="tsagaan", batch=23, observations=[near_b]))
    assert (other.stored, other.duplicate, other.refused) == (0, 0, 1)
    with psycopg.connect(hub.dsn) as conn:
        near = conn.execute("SELECT near_node FROM observation WHERE id = %s", [spot.id]).fetchone()
    assert near == ("a",)
    reader = PostgresReader(hub.dsn, hub.roles["soum"])
    (listed,) = records.listed(reader, site="tsagaan", nodes=["a"])  # DUST is not stored in this test
    reader.close()
    assert (listed.id, listed.near_node) == (spot.id, "a")


def test_an_older_hub_gains_the_near_node_column(pg: str) -> None:
    """`hub init`/`run` on a hub made before `near_node` was forwarded adds the column."""
    hub = build(pg)
    with psycopg.connect(hub.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE observation DROP COLUMN near_node")
    store = HubStore(hub.dsn)
    store.prepare()
    store.close()
    with psycopg.connect(hub.dsn) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'observation'"
            " AND column_name = 'near_node'"
        ).fetchone()
    assert found == (1,)
