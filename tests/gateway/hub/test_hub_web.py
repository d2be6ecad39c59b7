"""The hub's web server over real HTTP: each jurisdiction, with its API token, reads its own sites
and what is shared with it, and nothing else; a revoked or made-up token is refused; the agreements
in force are public; an export, a report and an evidence bundle of a shared site come from the hub,
and the export and the bundle verify with the keys the hub publishes."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contract import verify_offline as vo
from contract.hub import ForwardBatch
from gateway.config import WebConfig
from gateway.devservices import free_port
from gateway.hub.ingest import HubIngest
from gateway.hub.web import create_hub_app
from gateway.stores.postgres_access import HubAccess
from gateway.stores.postgres_hub import HubStore
from gateway.web.server import BackgroundServer
from tests.gateway.hub.hubdata import DELAY, NOW, Hub, as_message, build
from tests.gateway.hub.test_hub_field import CLEANED_AT, DUST, VISIT


@dataclass
class Served:
    url: str
    hub: Hub
    tokens: dict[str, str]  # jurisdiction -> its token

    def get(self, path: str, token: str | None = None, **params: str) -> tuple[int, Any, bytes]:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(self.url + path + query, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, body, kind = resp.status, resp.read(), resp.headers.get("content-type", "")
        except urllib.error.HTTPError as exc:
            status, body, kind = exc.code, exc.read(), exc.headers.get("content-type", "")
        if kind.startswith("application/json"):
            return status, json.loads(body), body
        return status, body.decode("utf-8", "replace"), body


def serve(hub: Hub, public: str | None = None, language: str = "en") -> tuple[BackgroundServer, Any, str]:
    web = WebConfig(port=free_port(), language=language)
    app, close = create_hub_app(hub.dsn, web, public, clock=lambda: datetime.now(UTC))
    server = BackgroundServer(app, web)
    server.start()
    return server, close, f"http://127.0.0.1:{web.port}"


@pytest.fixture
def served(pg: str) -> Iterator[Served]:
    hub = build(pg)
    access = HubAccess(pg)
    tokens = {j: access.make_token(j, f"{j} office", "test", datetime.now(UTC)) for j in hub.roles}
    access.close()
    server, close, url = serve(hub)
    yield Served(url, hub, tokens)
    server.stop()
    close()


def _sites(body: Any) -> set[tuple[str, str]]:
    return {(x["site"], x["node"]) for x in body}


def test_each_jurisdiction_reads_its_own_and_what_is_shared_with_it_and_nothing_else(served: Served) -> None:
    seen = {}
    for jid, token in served.tokens.items():
        status, who, _ = served.get("/api/v1/whoami", token)
        assert status == 200 and who == {"jurisdiction": jid, "role": served.hub.roles[jid]}
        status, latest, _ = served.get("/api/v1/latest", token)
        assert status == 200
        seen[jid] = {(x["site"], x["node"]): x["time"] for x in latest}
    assert set(seen["soum"]) == {("tsagaan", "a")}
    assert set(seen["aimag"]) == {("tsagaan", "a"), ("ulaan", "b")}
    assert seen["other"] == {}
    # the owner's latest is now; the aimag's of the same node is at least the agreement's delay old
    own = datetime.fromisoformat(seen["soum"][("tsagaan", "a")].replace("Z", "+00:00"))
    shared = datetime.fromisoformat(seen["aimag"][("tsagaan", "a")].replace("Z", "+00:00"))
    # (the delay runs from the database's clock when asked, not from when the data were made)
    assert own == NOW and shared < own and shared <= datetime.now(UTC) - DELAY
    # the pages too: the aimag's overview names both sites, the other's neither
    _, page, _ = served.get("/", served.tokens["aimag"])
    assert "tsagaan" in page and "ulaan" in page
    _, page, _ = served.get("/", served.tokens["other"])
    assert "tsagaan" not in page and "ulaan" not in page


def test_the_series_of_a_site_not_shared_is_empty(served: Served) -> None:
    start = (NOW - timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    _, own, _ = served.get("/api/v1/nodes/ulaan/b/series", served.tokens["aimag"], start=start)
    _, other, _ = served.get("/api/v1/nodes/ulaan/b/series", served.tokens["soum"], start=start)
    assert any(v is not None for v in own["series"]["pm2_5"])
    assert other["series"] == {}  # the soum's role sees no reading of ulaan at all


def test_without_a_token_only_the_public_pages(served: Served) -> None:
    status, body, _ = served.get("/api/v1/latest")
    assert status == 401 and "token" in body["error"]
    status, page, _ = served.get("/")  # redirected to the agreements
    assert status == 200 and "tsagaan-to-aimag" in page


def test_a_revoked_or_made_up_token_is_refused(served: Served) -> None:
    token = served.tokens["aimag"]
    assert served.get("/api/v1/latest", token)[0] == 200
    access = HubAccess(served.hub.dsn)
    token_id = token.split("_")[1]
    assert access.revoke_token(token_id, "test", datetime.now(UTC))
    assert not access.revoke_token(token_id, "test", datetime.now(UTC))  # the first revocation stays
    assert [t.revoked_by for t in access.tokens() if t.id == token_id] == ["test"]
    access.close()
    status, body, _ = served.get("/api/v1/latest", token)
    assert status == 401 and "revoked" in body["error"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert served.get("/api/v1/latest", forged)[0] == 401
    assert served.get("/api/v1/latest", "not-a-token")[0] == 401
    assert served.get("/api/v1/latest", served.tokens["soum"])[0] == 200  # the others still read


def test_the_agreements_in_force_are_public(served: Served) -> None:
    status, body, _ = served.get("/agreements.json")
    assert status == 200
    [a] = body["agreements"]
    assert (a["name"], a["grantor"], a["grantee"], a["sites"]) == (
        "tsagaan-to-aimag",
        "soum",
        "aimag",
        ["tsagaan"],
    )
    assert (a["licence"], a["delay_s"], a["version"], a["in_force"], a["valid_to"]) == (
        "CC-BY-4.0",
        7200,
        1,
        True,
        None,
    )
    assert a["recorded_by"] == "B. Bat" and a["grantee_name"] == "Aimag"
    status, page, _ = served.get("/agreements")
    assert status == 200 and "tsagaan-to-aimag" in page and "CC-BY-4.0" in page and "7200" in page
    made = re.search(r'<p id="generated">(.*?)</p>', page)  # the hub has no site: UTC, and it says so
    assert made is not None and re.fullmatch(r"Page made at \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", made.group(1))


def test_an_export_of_a_shared_site_verifies_with_the_keys_the_hub_publishes(
    served: Served, tmp_path: Path
) -> None:
    token = served.tokens["aimag"]
    period = {"site": "tsagaan", "start": (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%MZ"),
              "end": NOW.strftime("%Y-%m-%dT%H:%MZ")}  # fmt: skip
    status, text, raw = served.get("/api/v1/export.csv", token, **period)
    assert status == 200, text
    (tmp_path / "tsagaan.csv").write_bytes(raw)
    assert len(text.strip().splitlines()) == 1 + 24  # the last two hours are not shared yet
    status, keys, raw_keys = served.get("/api/v1/keys", token, site="tsagaan")
    assert status == 200 and [k["node"] for k in keys] == ["a"]
    (tmp_path / "keys.json").write_bytes(raw_keys)
    loaded, problems = vo.load_keys(tmp_path / "keys.json")
    report = vo.check_rows(vo.read_rows_file(tmp_path / "tsagaan.csv"), loaded)
    assert not problems and report.rows == 24 and report.exit_status() == 0, report.problems
    # a jurisdiction nobody shares tsagaan with is told the site is unknown, as if it did not exist
    status, body, _ = served.get("/api/v1/export.csv", served.tokens["other"], **period)
    assert status == 400 and "tsagaan" in body["error"]


def test_a_report_and_an_evidence_bundle_of_a_shared_site(served: Served, tmp_path: Path) -> None:
    token = served.tokens["aimag"]
    period = {"site": "tsagaan", "start": (NOW - timedelta(days=1)).strftime("%Y-%m-%d"),
              "end": (NOW + timedelta(days=1)).strftime("%Y-%m-%d")}  # fmt: skip
    status, html, _ = served.get("/api/v1/report.html", token, **period)
    assert status == 200 and "tsagaan" in html and "<table" in html
    # the query behind each table is the hub's SQL, which a regulator of the aimag can run in psql
    assert (
        "FROM reading r WHERE r.site = &#39;tsagaan&#39;" in html
        or "FROM reading r WHERE r.site = 'tsagaan'" in html
    )
    status, _, raw = served.get("/api/v1/evidence.zip", token, **period)
    assert status == 200
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(raw)
    with zipfile.ZipFile(bundle) as z:
        assert {"readings.csv", "keys.json", "manifest.json", "report.html"} <= set(z.namelist())
    result = vo.check_bundle(bundle, None)
    assert result.problems == [] and result.rows is not None and result.rows.rows == 24


def test_a_public_jurisdiction_shows_what_agreements_make_public(pg: str) -> None:
    hub = build(pg)
    store = HubStore(pg)
    role = f"j_public_{hub.roles['soum'][-8:]}"
    store.add_jurisdiction("public", "Everyone", role)
    store.add_agreement(name="ulaan-open-data", grantor="aimag", grantee="public", sites=["ulaan"],
                        licence="CC-BY-4.0", valid_from=NOW - timedelta(days=1), valid_to=None, delay_s=0,
                        recorded_by="test")  # fmt: skip
    store.close()
    server, close, url = serve(hub, public="public")
    try:
        anonymous = Served(url, hub, {})
        status, latest, _ = anonymous.get("/api/v1/latest")
        assert status == 200 and _sites(latest) == {("ulaan", "b")}
    finally:
        server.stop()
        close()


def test_the_dashboards_pages_and_apis_answer_on_the_hub(served: Served) -> None:
    token = served.tokens["aimag"]
    for path in ("/node/tsagaan/a", "/node/ulaan/b", "/alerts", "/download", "/api/v1/nodes",
                 "/api/v1/alerts/active", "/sta/v1.1/Things", "/sta/v1.1/Datastreams",
                 "/sta/v1.1/Observations", "/api/v1/openapi.json"):  # fmt: skip
        status, body, _ = served.get(path, token)
        assert status == 200, (path, body)
    status, alerts, _ = served.get("/api/v1/alerts", token)
    assert status == 200 and [(a["site"], a["rule"]) for a in alerts] == [("tsagaan", "pm-high")]
    assert served.get("/api/v1/alerts", served.tokens["other"])[1] == []
    status, csv, _ = served.get("/download/readings.csv", token, site="tsagaan")
    assert status == 200 and len(csv.strip().splitlines()) == 1 + 24
    status, things, _ = served.get("/sta/v1.1/Datastreams", served.tokens["soum"])
    assert status == 200 and things["value"] and all("tsagaan" in json.dumps(d) for d in things["value"])


def test_the_agreements_page_in_mongolian_and_refusals_carry_the_security_headers(pg: str) -> None:
    hub = build(pg)
    server, close, url = serve(hub, language="mn")
    try:
        anonymous = Served(url, hub, {})
        status, page, _ = anonymous.get("/agreements")
        assert (
            status == 200
            and "Хүчин төгөлдөр мэдээлэл хуваалцах гэрээнүүд" in page
            and "tsagaan-to-aimag" in page
        )
        assert "хэмжилтээс хойш 7200 секунд" in page and "Shared" not in page
        req = urllib.request.Request(url + "/api/v1/latest", headers={"Authorization": "Bearer mwh_nope"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=30)
        assert (
            refused.value.code == 401
            and "frame-ancestors 'none'" in refused.value.headers["content-security-policy"]
        )
        assert "цуцлагдсан" in json.loads(refused.value.read())["error"]
    finally:
        server.stop()
        close()


def test_a_person_signs_in_with_the_token_and_reads_through_the_cookie(served: Served) -> None:
    import http.client

    host, port = served.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = urllib.parse.urlencode({"token": served.tokens["soum"]})
    conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    answer = conn.getresponse()
    answer.read()
    cookie = answer.getheader("set-cookie") or ""
    assert answer.status == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie
    conn.request("GET", "/api/v1/whoami", headers={"Cookie": cookie.split(";")[0]})
    who = conn.getresponse()
    assert who.status == 200 and json.loads(who.read())["jurisdiction"] == "soum"
    conn.request("POST", "/login", urllib.parse.urlencode({"token": "mwh_x"}),
                 {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    refused = conn.getresponse()
    assert refused.status == 401 and not refused.getheader("set-cookie")
    refused.read()
    conn.close()


def test_a_jurisdiction_sees_the_forwarded_field_records_on_the_node_page_timeline_and_sta(
    served: Served,
) -> None:
    """A visit and two accepted observations (one at node a, one a position near it) come in a
    forwarded batch; the soum, which owns tsagaan, sees them where a site's own dashboard shows
    them: the node's charts and lists, the site's timeline, the Thing's history and the marked
    Observations' resultQuality. A jurisdiction nobody shares tsagaan with sees none of it."""
    near = DUST.model_copy(update={
        "id": "3f6c2b1e-0000-4000-8000-000000000009", "kind": "trucks", "text": "trucks on the haul road",
        "node": None, "place": "map", "lat": 43.1, "lon": 106.8, "near_node": "a",
        "at": NOW - timedelta(hours=2, minutes=30), "photo_received_sha256": None, "photo_sha256": None,
    })  # fmt: skip
    ingest = HubIngest(HubStore(served.hub.dsn), "hub")
    try:
        assert ingest.handle(as_message(ForwardBatch(site="tsagaan", batch=3, visits=[VISIT],
                                                     observations=[DUST, near]))) is not None  # fmt: skip
    finally:
        ingest.close()
    soum = served.tokens["soum"]

    status, page, _ = served.get("/node/tsagaan/a", soum)
    assert status == 200
    found = re.search(r'<script type="application/json" id="day-data">(.*?)</script>', page, re.S)
    assert found is not None
    day = json.loads(found.group(1).replace("<\\/", "</"))
    assert day and all(c["visits"] == day[0]["visits"] for c in day)
    [mark] = day[0]["visits"]
    assert (mark["t"], mark["from"], mark["to"]) == (
        int(CLEANED_AT.timestamp()),
        int(VISIT.flag_from.timestamp()) if VISIT.flag_from else None,
        int(VISIT.flag_to.timestamp()) if VISIT.flag_to else None,
    )
    assert sorted(o["t"] for o in day[0]["observed"]) == sorted(int(o.at.timestamp()) for o in (DUST, near))
    assert "window wiped" in page and "plume from the pit" in page and "trucks on the haul road" in page

    status, page, _ = served.get("/sites/tsagaan/timeline", soum)
    assert status == 200
    assert page.count('data-kind="observation"') == 2 and page.count('data-kind="maintenance"') == 1
    assert "plume from the pit" in page and "trucks on the haul road" in page and "window wiped" in page

    status, thing, _ = served.get("/sta/v1.1/Things('tsagaan.a')", soum)
    assert status == 200, thing
    assert [(v["kind"], v["by"], v["note"]) for v in thing["properties"]["maintenance"]] == [
        ("cleaned", "D. Dorj", "window wiped")
    ]
    listed = {o["id"]: o for o in thing["properties"]["observations"]}
    assert set(listed) == {DUST.id, near.id} and listed[near.id]["place"] == "map"
    status, obs, _ = served.get(
        "/sta/v1.1/Datastreams('tsagaan.a.pm2_5')/Observations", soum, **{"$top": "1000"}
    )
    assert status == 200, obs
    marked = sorted(o["phenomenonTime"] for o in obs["value"] if o["resultQuality"]["maintenance"])
    expected = [CLEANED_AT - timedelta(minutes=m) for m in (20, 10, 0)]  # (at - 25 min, at + 5 min]
    assert marked == sorted(t.strftime("%Y-%m-%dT%H:%M:%S.000Z") for t in expected)
    assert {tuple(o["resultQuality"]["maintenance"]) for o in obs["value"]} == {(), ("cleaned",)}

    other = served.tokens["other"]
    _, page, _ = served.get("/sites/tsagaan/timeline", other)
    assert "plume from the pit" not in page and "window wiped" not in page
    _, things, _ = served.get("/sta/v1.1/Things", other)
    assert things["value"] == []
