"""Monitor accounts over real HTTP (uvicorn, a real influxd): an account made with the CLI logs in
through the form, moderates (every decision a new point: who, when, why), records a maintenance
visit and submits an observation without a code, logs out; each attack on the login, moderation
and visit forms (no or another CSRF token, another site's origin, no session, brute force,
hostile fields) fails with a clear error and nothing stored."""

from __future__ import annotations

import html
import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import urllib3

from contract.i18n import Texts
from gateway import devservices, maintenance
from gateway.cli import main
from gateway.config import SiteConfig, WebConfig
from gateway.observations import records
from gateway.observations.accounts import MAX_FAILURES
from gateway.observations.records import FieldRecords, Observation
from tests.contract.test_i18n_mn import english_words
from tests.gateway.web.test_observations import gateway_config
from tests.webdata import NOW, Site, served_site

PASSWORD = "a long pass phrase"


@dataclass
class Browser:
    """A client that keeps cookies as a browser does, and follows no redirect (to see them)."""

    url: str
    cookies: dict[str, str] = field(default_factory=dict)
    http: urllib3.PoolManager = field(default_factory=lambda: urllib3.PoolManager(retries=False))

    def _keep(self, resp: urllib3.BaseHTTPResponse) -> None:
        for header in resp.headers.getlist("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";")[0].strip('"')
            if "max-age=0" in header.lower() or "expires=thu, 01 jan 1970" in header.lower() or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def _cookie(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def get(self, path: str) -> urllib3.BaseHTTPResponse:
        resp = self.http.request("GET", self.url + path, headers=self._cookie(), redirect=False)
        self._keep(resp)
        return resp

    def post(
        self,
        path: str,
        fields: dict[str, str],
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> urllib3.BaseHTTPResponse:
        data = urlencode(fields).encode() if body is None else body
        resp = self.http.request(
            "POST",
            self.url + path,
            body=data,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                **self._cookie(),
                **(headers or {}),
            },
            redirect=False,
        )
        self._keep(resp)
        return resp

    def csrf_of(self, path: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).data.decode())
        assert found is not None, path
        return found.group(1)

    def login(self, name: str = "saraa", password: str = PASSWORD) -> urllib3.BaseHTTPResponse:
        token = self.csrf_of("/login")
        return self.post("/login", {"csrf": token, "name": name, "password": password, "next": "/moderate"})


@dataclass
class Monitors:
    site: Site
    config: Path
    field: FieldRecords

    def browser(self) -> Browser:
        return Browser(self.site.url)

    def pending(self, text: str = "plume", kind: str = "dust") -> Observation:
        obs = Observation(
            id=str(uuid.uuid4()),
            observer="code:1",
            kind=kind,
            text=text,
            at=NOW - timedelta(hours=1),
            site="tsagaan",
            node="haul-road",
            lat=None,
            lon=None,
            received=NOW - timedelta(minutes=50),
            photo_received_sha256=None,
            photo_sha256=None,
        )
        assert self.field.add(obs, None)
        return obs

    def decisions(self) -> list[records.DecisionRecord]:
        return [d for ds in records.decisions_of(self.field.reader).values() for d in ds]

    def visits(self) -> list[maintenance.Visit]:
        return maintenance.visits(self.field.reader, "tsagaan", NOW - timedelta(days=30), NOW)


@pytest.fixture
def monitors(
    influxd: devservices.Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Monitors]:
    data = tmp_path / "gateway-data"
    with served_site(influxd.port, data_dir=data) as site:
        assert site.field is not None
        config = gateway_config(tmp_path / "gateway.toml", data, influxd.port, site)
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        assert main(["monitors", "add", "--config", str(config), "--name", "saraa", "--password-stdin"]) == 0
        yield Monitors(site, config, site.field)


def _error(resp: urllib3.BaseHTTPResponse) -> str:
    found = re.search(r'<p id="error"[^>]*>(.*?)</p>', resp.data.decode(), re.S)
    return found.group(1) if found else ""


def test_a_monitor_logs_in_moderates_and_logs_out(monitors: Monitors) -> None:
    seen, other = monitors.pending("plume from the pit"), monitors.pending("trucks at 02:00", "trucks")
    b = monitors.browser()
    assert b.get("/moderate").headers["location"] == "/login?next=/moderate"  # not logged in
    resp = b.login()
    assert resp.status == 303 and resp.headers["location"] == "/moderate"
    cookie = next(h for h in resp.headers.getlist("set-cookie") if h.startswith("mw_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and PASSWORD not in cookie
    page = b.get("/moderate")
    assert page.status == 200 and "plume from the pit" in page.data.decode()
    token = b.csrf_of("/moderate")
    ok = b.post(f"/moderate/{seen.id}", {"csrf": token, "decision": "accepted", "why": "matches PM10"})
    assert ok.status == 303
    assert (
        b.post(f"/moderate/{other.id}", {"csrf": token, "decision": "rejected", "why": "no trucks"}).status
        == 303
    )
    decided = {d.observation: d for d in monitors.decisions()}
    assert (decided[seen.id].decision, decided[seen.id].by, decided[seen.id].at, decided[seen.id].why) == (
        "accepted", "saraa", NOW, "matches PM10"
    )  # fmt: skip
    assert decided[other.id].decision == "rejected"
    public = json.loads(b.get("/api/v1/observations").data)
    assert [(o["id"], o["accepted_by"]) for o in public] == [(seen.id, "saraa")]
    # a second decision is a new point: the first is kept
    later = FieldRecords(monitors.field.store, monitors.field.reader, monitors.field.photos)
    later.decide(seen.id, "rejected", "bold", "photo is of another day", NOW + timedelta(minutes=1))
    assert [d.decision for d in records.decisions_of(monitors.field.reader)[seen.id]] == [
        "accepted",
        "rejected",
    ]
    # logging out ends the session on the server: the old cookie opens nothing
    old = dict(b.cookies)
    assert b.post("/logout", {"csrf": token}).status == 303
    assert "mw_session" not in b.cookies
    b.cookies = old
    assert b.get("/moderate").status == 303
    late = b.post(f"/moderate/{other.id}", {"csrf": token, "decision": "accepted", "why": "x"})
    assert late.status == 401 and "log in again" in late.data.decode()
    assert len(monitors.decisions()) == 3


def test_a_monitor_submits_an_observation_without_a_code(monitors: Monitors) -> None:
    b = monitors.browser()
    b.login()
    assert "no observer code needed" in b.get("/observe").data.decode()
    token = b.cookies["mw_csrf"]  # the observation form's token is its cookie's (double submit)
    fields = {"csrf": token, "id": str(uuid.uuid4()), "kind": "blasting", "text": "",
              "at": "2026-11-22T11:00:00Z", "lat": "43.11", "lon": "106.86", "place": "map"}  # fmt: skip
    data, ctype = urllib3.encode_multipart_formdata(fields)
    resp = b.http.request(
        "POST", b.url + "/api/v1/observations", body=data, headers={"Content-Type": ctype, **b._cookie()}
    )
    assert resp.status == 201, resp.data
    (got,) = records.listed(monitors.field.reader)
    assert (got.observer, got.place, got.site, got.lat) == ("monitor:saraa", "map", "tsagaan", 43.11)


def test_a_monitor_records_a_visit_checked_as_the_cli_checks_it(monitors: Monitors) -> None:
    b = monitors.browser()
    b.login()
    token = b.csrf_of("/maintenance")
    visit = {"csrf": token, "node": "tsagaan/haul-road", "kind": "cleaned", "at": "2026-11-22T09:00",
             "by": "Bold", "note": "inlet <b>brushed</b>", "flag_from": "2026-11-22T08:50",
             "flag_to": "2026-11-22T09:10"}  # fmt: skip
    resp = b.post("/maintenance/new", visit)
    assert resp.status == 303 and resp.headers["location"] == "/node/tsagaan/haul-road#maintenance"
    (v,) = monitors.visits()
    assert (v.kind, v.by, v.entered_by, v.note) == ("cleaned", "Bold", "saraa", "inlet <b>brushed</b>")
    assert v.flag_from is not None and v.marks(v.flag_from + timedelta(minutes=5))
    again = b.post("/maintenance/new", visit)
    assert again.status == 409 and "already recorded" in _error(again)
    # the timeline shows it, beside an accepted observation, newest first
    seen = monitors.pending("dust over the road")
    b.post(f"/moderate/{seen.id}", {"csrf": token, "decision": "accepted", "why": "ok"})
    page = b.get("/sites/tsagaan/timeline").data.decode()
    kinds = re.findall(r'data-kind="(\w+)"', page)
    assert kinds == ["observation", "maintenance"]
    assert "dust over the road" in page and "inlet &lt;b&gt;brushed&lt;/b&gt;" in page
    # and SensorThings carries it in the Thing's history
    thing = json.loads(b.get("/sta/v1.1/Things('tsagaan.haul-road')").data)
    assert [o["text"] for o in thing["properties"]["observations"]] == ["dust over the road"]


def test_a_visit_is_entered_in_the_sites_zone_and_stored_in_utc(
    influxd: devservices.Service, tmp_path: Path
) -> None:
    places = SiteConfig.model_validate(
        {
            "timezone": "Asia/Ulaanbaatar",
            "names": [
                {"site": "tsagaan", "name": {"en": "Tsagaan bag"}},
                {"site": "tsagaan", "node": "haul-road", "name": {"en": "haul road"}},
            ],
        }
    )
    with served_site(influxd.port, data_dir=tmp_path / "data", site_config=places) as site:
        assert site.field is not None and site.accounts is not None
        site.accounts.add("saraa", PASSWORD, NOW)
        monitors = Monitors(site, tmp_path / "unused.toml", site.field)
        seen = monitors.pending("dust over the road")
        b = monitors.browser()
        b.login()
        form = html.unescape(b.get("/maintenance").data.decode())
        # the clock stands at 12:00:30 UTC: 20:00 in Ulaanbaatar, and the form says which zone
        assert 'value="2026-11-22T20:00"' in form and "When (UTC+08)" in form and "(UTC)" not in form
        assert "site's time zone (UTC+08)" in form and "From (UTC+08)" in form and "To (UTC+08)" in form
        assert '<option value="tsagaan/haul-road">haul road (Tsagaan bag)</option>' in form
        moderate = b.get("/moderate").data.decode()
        assert "haul road (Tsagaan bag)" in moderate and "haul-road (tsagaan)" not in moderate
        token = b.csrf_of("/maintenance")
        visit = {"csrf": token, "node": "tsagaan/haul-road", "kind": "cleaned", "at": "2026-11-22T14:10",
                 "by": "Bold", "flag_from": "2026-11-22T14:00", "flag_to": "2026-11-22T14:20"}  # fmt: skip
        resp = b.post("/maintenance/new", visit)
        assert resp.status == 303, _error(resp)
        (v,) = monitors.visits()
        assert v.at == datetime(2026, 11, 22, 6, 10, tzinfo=UTC)
        assert (v.flag_from, v.flag_to) == (
            datetime(2026, 11, 22, 6, 0, tzinfo=UTC),
            datetime(2026, 11, 22, 6, 20, tzinfo=UTC),
        )
        b.post(f"/moderate/{seen.id}", {"csrf": token, "decision": "accepted", "why": "ok"})
        timeline = b.get("/sites/tsagaan/timeline").data.decode()
        assert "Field records at Tsagaan bag" in timeline and "Times are local (UTC+08)" in timeline
        assert "2026-11-22 14:10 UTC+08" in timeline and "haul road" in timeline


VISIT_ATTACKS: dict[str, tuple[dict[str, str], dict[str, str], int, str]] = {
    "a time in the future": ({"at": "2027-01-01T00:00"}, {}, 400, "in the future"),
    "half a marked window": ({"flag_to": ""}, {}, 400, "both ends"),
    "a window a month away": (
        {"flag_from": "2026-10-01T00:00", "flag_to": "2026-10-02T00:00"},
        {},
        400,
        "7 days",
    ),
    "a control character in the note": ({"note": "a\x1b[2Jb"}, {}, 400, "note"),
    "a node that is not there": ({"node": "tsagaan/../../etc"}, {}, 400, "Choose a sensor"),
    "a kind not on the list": ({"kind": "<script>"}, {}, 400, "choose what was done"),
    "a time that is not one": ({"at": "yesterday"}, {}, 400, "date and an hour"),
    "no CSRF token": ({"csrf": ""}, {}, 403, "expired"),
    "another session's token": ({"csrf": "x" * 32}, {}, 403, "expired"),
    # the session cookie and a valid token, sent from another site's page: the Origin refuses it
    "a cross-site origin": ({}, {"Origin": "https://evil.example"}, 403, "own pages"),
}


@pytest.mark.parametrize("name", list(VISIT_ATTACKS))
def test_bad_visits_are_refused_and_nothing_is_written(monitors: Monitors, name: str) -> None:
    changes, headers, status, message = VISIT_ATTACKS[name]
    b = monitors.browser()
    b.login()
    token = b.csrf_of("/maintenance")
    visit = {"csrf": token, "node": "tsagaan/haul-road", "kind": "cleaned", "at": "2026-11-22T09:00",
             "by": "Bold", "note": "", "flag_from": "2026-11-22T08:50", "flag_to": "2026-11-22T09:10",
             **changes}  # fmt: skip
    resp = b.post("/maintenance/new", visit, headers)
    assert resp.status == status and message in _error(resp), _error(resp)
    assert monitors.visits() == []


def _login_fields(b: Browser) -> dict[str, str]:
    return {"csrf": b.csrf_of("/login"), "name": "saraa", "password": PASSWORD, "next": "/moderate"}


LOGIN_ATTACKS: dict[str, tuple[dict[str, str], dict[str, str], int, str]] = {
    "no CSRF token": ({"csrf": ""}, {}, 403, "expired"),
    "another site's token": ({"csrf": "y" * 32}, {}, 403, "expired"),
    "a cross-site origin": ({}, {"Origin": "https://evil.example"}, 403, "own pages"),
    "a cross-site fetch": ({}, {"Sec-Fetch-Site": "cross-site"}, 403, "own pages"),
    "a null origin without fetch metadata": ({}, {"Origin": "null"}, 403, "own pages"),
    "a wrong password": ({"password": "guessed password"}, {}, 401, "Wrong name or password"),
    "an unknown name": ({"name": "admin"}, {}, 401, "Wrong name or password"),
    "an open redirect": ({"next": "//evil.example/"}, {}, 303, ""),
}


@pytest.mark.parametrize("name", list(LOGIN_ATTACKS))
def test_login_attacks_fail_clearly_and_open_no_session(monitors: Monitors, name: str) -> None:
    changes, headers, status, message = LOGIN_ATTACKS[name]
    b = monitors.browser()
    resp = b.post("/login", {**_login_fields(b), **changes}, headers)
    assert resp.status == status and message in _error(resp), _error(resp)
    if status == 303:  # logged in, but sent to this site's own page, not to the one named
        assert resp.headers["location"] == "/moderate"
        return
    assert "mw_session" not in b.cookies
    assert b.get("/moderate").status == 303


def test_brute_force_locks_the_account_even_for_the_right_password(monitors: Monitors) -> None:
    b = monitors.browser()
    for _ in range(MAX_FAILURES):
        assert b.post("/login", {**_login_fields(b), "password": "wrong guess 123"}).status == 401
    locked = b.post("/login", _login_fields(b))
    assert locked.status == 429 and "Too many failed logins" in _error(locked)
    assert int(locked.headers["retry-after"]) > 0
    assert "mw_session" not in b.cookies


MODERATION_ATTACKS: dict[str, tuple[dict[str, str], dict[str, str], int, str]] = {
    "no CSRF token": ({"csrf": ""}, {}, 403, "expired"),
    "another session's token": ({"csrf": "z" * 32}, {}, 403, "expired"),
    "a cross-site origin": ({}, {"Origin": "https://evil.example"}, 403, "own pages"),
    "a cross-site fetch": ({}, {"Sec-Fetch-Site": "cross-site"}, 403, "own pages"),
    "no reason": ({"why": "  "}, {}, 400, "reason"),
    "a control character in the reason": ({"why": "ok\x1b[2J"}, {}, 400, "reason"),
    "a decision not on the list": ({"decision": "published"}, {}, 400, "accept or reject"),
}


@pytest.mark.parametrize("name", list(MODERATION_ATTACKS))
def test_moderation_attacks_fail_clearly_and_store_nothing(monitors: Monitors, name: str) -> None:
    changes, headers, status, message = MODERATION_ATTACKS[name]
    obs = monitors.pending()
    b = monitors.browser()
    b.login()
    fields = {"csrf": b.csrf_of("/moderate"), "decision": "accepted", "why": "fine", **changes}
    resp = b.post(f"/moderate/{obs.id}", fields, headers)
    assert resp.status == status and message in _error(resp), _error(resp)
    assert monitors.decisions() == []


def test_moderation_needs_a_session_and_a_real_observation(monitors: Monitors) -> None:
    obs = monitors.pending()
    stranger = monitors.browser()
    token = stranger.csrf_of("/observe")
    resp = stranger.post(f"/moderate/{obs.id}", {"csrf": token, "decision": "accepted", "why": "mine"})
    assert resp.status == 401 and "log in" in resp.data.decode()
    b = monitors.browser()
    b.login()
    missing = b.post(f"/moderate/{uuid.uuid4()}", {"csrf": b.csrf_of("/moderate"), "decision": "accepted",
                                                    "why": "x"})  # fmt: skip
    assert missing.status == 404 and "no such observation" in _error(missing)
    big = b.post(f"/moderate/{obs.id}", {}, body=b"why=" + b"a" * 20_000)
    assert big.status == 413
    assert monitors.decisions() == []


def test_a_disabled_account_loses_its_session(monitors: Monitors) -> None:
    b = monitors.browser()
    b.login()
    assert b.get("/moderate").status == 200
    args = ["monitors", "disable", "--config", str(monitors.config), "--name", "saraa", "--by", "operator"]
    assert main(args) == 0
    assert b.get("/moderate").status == 303
    assert b.login().status == 401


def test_a_pending_photo_is_shown_to_monitors_only(monitors: Monitors, tmp_path: Path) -> None:
    obs = monitors.pending()
    with_photo = Observation(**{**{k: getattr(obs, k) for k in obs.__slots__}, "id": str(uuid.uuid4()),
                                "photo_sha256": "ef" * 32})  # fmt: skip
    assert monitors.field.add(with_photo, b"\xff\xd8 jpeg \xff\xd9")
    path = f"/observations/{with_photo.id}/photo.jpg"
    assert monitors.browser().get(path).status == 404
    b = monitors.browser()
    b.login()
    shown = b.get(path)
    assert shown.status == 200 and shown.headers["cache-control"] == "no-store"


def test_the_monitors_pages_have_no_english_in_mongolian(
    influxd: devservices.Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "gateway-data"
    with served_site(influxd.port, web=WebConfig(language="mn"), data_dir=data) as site:
        assert site.field is not None and site.accounts is not None
        site.accounts.add("saraa", PASSWORD, NOW)
        monitors = Monitors(site, tmp_path / "unused.toml", site.field)
        seen = monitors.pending("тоос")
        b = monitors.browser()
        refused = b.post("/login", {**_login_fields(b), "password": "wrong guess 123"})
        assert refused.status == 401 and _error(refused) == Texts("mn")("monitor.error_login")
        b.login()
        token = b.csrf_of("/moderate")
        b.post(f"/moderate/{seen.id}", {"csrf": token, "decision": "accepted", "why": "тийм"})
        b.post("/maintenance/new", {"csrf": token, "node": "tsagaan/haul-road", "kind": "cleaned",
                                    "at": "2026-11-22T09:00", "by": "Болд"})  # fmt: skip
        for path in ("/login", "/moderate", "/maintenance", "/sites/tsagaan/timeline", "/observe"):
            page = b.get(path).data.decode()
            main = re.sub(
                r"<script.*?</script>", " ", page.split("<main>")[1].split("</main>")[0], flags=re.S
            )
            main_text = re.sub(r"<[^>]+>", " ", main)
            data_words = {"tsagaan", "haul", "road", "river", "down", "up", "saraa", "N"}
            leaks = [w for w in english_words(html.unescape(main_text)) if w not in data_words]
            assert leaks == [], (path, leaks)
