"""What a decision shows and what a monitor sees, over real HTTP (uvicorn, a real influxd): the
accepting monitor and their reason on the API, /observations and the timeline (never the
observer); an accepted observation withdrawn from /moderate, recorded like any decision; the
observer code's number and name on /moderate only, and in the CLI's lists; /moderate and
GET /api/v1/observations paged (every pending one and the last days' decisions, a page at a time;
limit and offset)."""

from __future__ import annotations

import html
import json
import re
import uuid
from datetime import timedelta

import pytest

from gateway.cli import main
from gateway.observations import records
from gateway.observations.records import Observation
from gateway.timerange import format_time
from gateway.web.monitor import MODERATE_PAGE
from tests.gateway.web.test_monitors import Monitors
from tests.gateway.web.test_monitors import monitors as monitors
from tests.webdata import NOW


def _code(m: Monitors, capsys: pytest.CaptureFixture[str], name: str) -> int:
    capsys.readouterr()
    assert main(["observers", "add", "--config", str(m.config), "--name", name]) == 0
    found = re.search(r"observer (\d+) ", capsys.readouterr().out)
    assert found is not None
    return int(found.group(1))


def _observation(
    m: Monitors, text: str, *, observer: str = "code:1", ago: timedelta = timedelta(hours=1)
) -> Observation:
    obs = Observation(
        id=str(uuid.uuid4()),
        observer=observer,
        kind="dust",
        text=text,
        at=NOW - ago,
        site="tsagaan",
        node="haul-road",
        lat=None,
        lon=None,
        received=NOW - ago + timedelta(minutes=1),
        photo_received_sha256=None,
        photo_sha256=None,
    )
    assert m.field.add(obs, None)
    return obs


def _ids(page: str, prefix: str) -> list[str]:
    return re.findall(rf'id="{prefix}-([0-9a-f-]{{36}})"', page)


def test_the_reason_is_public_and_an_accepted_observation_can_be_withdrawn(
    monitors: Monitors, capsys: pytest.CaptureFixture[str]
) -> None:
    _code(monitors, capsys, "Dorj Bat")
    obs = _observation(monitors, "plume over the village")
    b = monitors.browser()
    b.login()
    token = b.csrf_of("/moderate")
    why = "matches the PM10 peak at 11:40"
    assert b.post(f"/moderate/{obs.id}", {"csrf": token, "decision": "accepted", "why": why}).status == 303
    (public,) = json.loads(b.get("/api/v1/observations").data)
    assert (public["accepted_by"], public["why"]) == ("saraa", why)
    assert public["decisions"] == [
        {"decision": "accepted", "by": "saraa", "at": format_time(NOW), "why": why}
    ]
    assert "Dorj" not in json.dumps(public) and "code:1" not in json.dumps(public)
    for path in ("/observations", "/sites/tsagaan/timeline"):
        page = html.unescape(monitors.browser().get(path).data.decode())
        assert "Accepted by saraa" in page and why in page, path
        assert "Dorj" not in page and "code 1" not in page, path
    # /moderate lists it as public, with a form to withdraw it
    page = b.get("/moderate").data.decode()
    assert _ids(page, "accepted") == [obs.id] and _ids(page, "pending") == []
    assert f'action="/moderate/{obs.id}"' in page and 'class="withdraw"' in page
    withdrawn = b.post(
        f"/moderate/{obs.id}", {"csrf": token, "decision": "rejected", "why": "a face in the photo"}
    )
    assert withdrawn.status == 303
    assert json.loads(b.get("/api/v1/observations").data) == []
    assert "plume over the village" not in monitors.browser().get("/observations").data.decode()
    assert _ids(b.get("/moderate").data.decode(), "accepted") == []
    kept = records.decisions_of(monitors.field.reader)[obs.id]
    assert [(d.decision, d.by, d.at, d.why) for d in kept] == [
        ("accepted", "saraa", NOW, why),
        ("rejected", "saraa", NOW, "a face in the photo"),
    ]
    # without a reason nothing is withdrawn
    again = _observation(monitors, "second plume")
    assert b.post(f"/moderate/{again.id}", {"csrf": token, "decision": "accepted", "why": "ok"}).status == 303
    refused = b.post(f"/moderate/{again.id}", {"csrf": token, "decision": "rejected", "why": ""})
    assert refused.status == 400
    assert [o["id"] for o in json.loads(b.get("/api/v1/observations").data)] == [again.id]


def test_moderate_names_the_code_to_monitors_only_and_the_cli_lists_say_who(
    monitors: Monitors, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = _code(monitors, capsys, "Dorj Bat"), _code(monitors, capsys, "Oyun")
    spam = _observation(monitors, "buy cheap phones", observer=f"code:{second}")
    mine = _observation(monitors, "trucks at night", observer="monitor:bold")
    b = monitors.browser()
    b.login()
    page = html.unescape(b.get("/moderate").data.decode())
    item = page[page.index(f'id="pending-{spam.id}"') :]
    assert f"observer code {second} (Oyun)" in item[: item.index("</li>")]
    item = page[page.index(f'id="pending-{mine.id}"') :]
    assert "Sent by monitor bold" in item[: item.index("</li>")]
    token = b.csrf_of("/moderate")
    assert (
        b.post(f"/moderate/{spam.id}", {"csrf": token, "decision": "accepted", "why": "test"}).status == 303
    )
    for path in ("/observations", "/api/v1/observations", "/sites/tsagaan/timeline"):
        shown = html.unescape(monitors.browser().get(path).data.decode())
        assert "buy cheap phones" in shown and "Oyun" not in shown and f"code:{second}" not in shown, path
    capsys.readouterr()
    assert main(["observations", "list", "--config", str(monitors.config)]) == 0
    listed = capsys.readouterr().out
    assert f"by code:{second}" in listed and "by monitor:bold" in listed
    revoke = [
        "observers",
        "revoke",
        "--config",
        str(monitors.config),
        "--id",
        str(second),
        "--by",
        "Tuya (operator)",
    ]
    assert main(revoke) == 0
    capsys.readouterr()
    assert main(["observers", "list", "--config", str(monitors.config)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert next(r for r in rows if r.startswith(f"{second} ")).endswith("by Tuya (operator)")
    assert next(r for r in rows if r.startswith(f"{first} ")).endswith("in use")


def test_moderate_shows_every_pending_one_and_the_last_days_decisions_a_page_at_a_time(
    monitors: Monitors,
) -> None:
    """A pending observation made 40 days ago (a phone offline for weeks, or nobody acted) is listed
    whatever `days` is; an accepted one is listed while its acceptance is in the last `days`."""
    old = _observation(monitors, "made long ago", ago=timedelta(days=40))
    fresh = [
        _observation(monitors, f"plume {i}", ago=timedelta(minutes=10 + i)) for i in range(MODERATE_PAGE + 3)
    ]
    b = monitors.browser()
    b.login()
    first = b.get("/moderate").data.decode()
    assert _ids(first, "pending") == [o.id for o in fresh[:MODERATE_PAGE]]  # newest first
    assert 'rel="next" href="/moderate?days=30&amp;page=2"' in first and old.id not in first
    second = b.get("/moderate?days=30&page=2").data.decode()
    assert _ids(second, "pending") == [o.id for o in fresh[MODERATE_PAGE:]] + [old.id]  # the old one too
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert _ids(b.get("/moderate?days=1&page=2").data.decode(), "pending")[-1] == old.id
    assert b.get("/moderate?days=-1&page=x").status == 200  # nonsense: the defaults

    # accepted: made 40 days ago and accepted an hour ago is listed; accepted 39 days ago is not
    late, early = (_observation(monitors, text, ago=timedelta(days=40)) for text in ("late", "early"))
    monitors.field.decide(late.id, "accepted", "saraa", "checked", NOW - timedelta(hours=1))
    monitors.field.decide(early.id, "accepted", "saraa", "checked", NOW - timedelta(days=39))
    last = b.get("/moderate?page=2").data.decode()
    assert _ids(last, "accepted") == [late.id] and old.id in _ids(last, "pending")
    assert set(_ids(b.get("/moderate?days=366&page=2").data.decode(), "accepted")) == {late.id, early.id}
    decisions = last[last.index('id="decisions"') :]
    assert decisions.count("<li>") == 1  # the latest decisions: of the last 30 days only


def test_the_observations_api_is_paged_as_the_node_list_is(monitors: Monitors) -> None:
    made = [_observation(monitors, f"plume {i}", ago=timedelta(minutes=60 - i)) for i in range(5)]
    for o in made:
        monitors.field.decide(o.id, "accepted", "saraa", "checked", NOW)
    b = monitors.browser()
    resp = b.get("/api/v1/observations?limit=2")
    assert resp.status == 200 and resp.headers["x-total-count"] == "5"
    assert [o["id"] for o in json.loads(resp.data)] == [o.id for o in made[:2]]  # oldest first
    assert resp.headers["link"] == '</api/v1/observations?limit=2&offset=2>; rel="next"'
    last = b.get("/api/v1/observations?limit=2&offset=4")
    assert [o["id"] for o in json.loads(last.data)] == [made[4].id] and "link" not in last.headers
    assert len(json.loads(b.get("/api/v1/observations").data)) == 5
    bad = b.get("/api/v1/observations?limit=0")
    assert bad.status == 400 and "limit" in json.loads(bad.data)["error"]
    assert json.loads(b.get("/api/v1/observations?site=elsewhere").data) == []


def test_an_accepted_photo_is_revalidated_each_time_and_gone_once_withdrawn(monitors: Monitors) -> None:
    """Served with no-cache and its hash as the ETag: a cache asks again each time, gets 304 while
    it stands, and 404 as soon as a monitor withdraws it (with a max-age it was served for a day)."""
    sha = "ef" * 32
    obs = _observation(monitors, "a face in the crowd")
    with_photo = Observation(**{**{k: getattr(obs, k) for k in obs.__slots__}, "id": str(uuid.uuid4()),
                                "photo_sha256": sha})  # fmt: skip
    assert monitors.field.add(with_photo, b"\xff\xd8 jpeg \xff\xd9")
    b = monitors.browser()
    b.login()
    token = b.csrf_of("/moderate")
    assert (
        b.post(f"/moderate/{with_photo.id}", {"csrf": token, "decision": "accepted", "why": "ok"}).status
        == 303
    )
    anyone = monitors.browser()
    for path in (f"/observations/{with_photo.id}/photo.jpg", f"/observations/{with_photo.id}/photos/1.jpg"):
        shown = anyone.get(path)
        assert shown.status == 200 and shown.data == b"\xff\xd8 jpeg \xff\xd9", path
        assert (shown.headers["cache-control"], shown.headers["etag"]) == ("no-cache", f'"{sha}"'), path
        again = anyone.http.request("GET", anyone.url + path, headers={"If-None-Match": f'"{sha}"'})
        assert again.status == 304 and again.data == b"" and again.headers["etag"] == f'"{sha}"', path
        other = anyone.http.request(
            "GET", anyone.url + path, headers={"If-None-Match": '"' + "00" * 32 + '"'}
        )
        assert other.status == 200 and other.data == b"\xff\xd8 jpeg \xff\xd9", path
    withdrawn = b.post(f"/moderate/{with_photo.id}", {"csrf": token, "decision": "rejected", "why": "a face"})
    assert withdrawn.status == 303
    path = f"/observations/{with_photo.id}/photo.jpg"
    gone = anyone.http.request("GET", anyone.url + path, headers={"If-None-Match": f'"{sha}"'})
    assert gone.status == 404 and "etag" not in gone.headers
    assert b.get(path).headers["cache-control"] == "no-store"  # a monitor still sees it, never cached
