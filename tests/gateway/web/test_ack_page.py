"""The acknowledgement link's page (gateway/web/ack.py) over uvicorn and a real alert store: each
way a link can be wrong is a plain page, never a 500; a GET or HEAD writes nothing; confirmations
sent twice, or at once from two tabs, make one ack request, with the link's recipient as `by`."""

from __future__ import annotations

import html
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from contract.i18n import Texts
from gateway.alerts.links import AckLinks, digest
from gateway.alerts.machine import MachineState
from gateway.alerts.store import AlertStore
from gateway.config import InfluxConfig, SiteConfig, WebConfig
from gateway.devservices import free_port
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from gateway.web.app import create_app
from gateway.web.server import BackgroundServer
from tests.contract.test_i18n_mn import english_words

ALERT = "tsagaan.haul-road.pm25-instant.20261206T100000Z"
START = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
RAISED = {
    "schema": 1,
    "id": ALERT,
    "state": "raised",
    "site": "tsagaan",
    "node": "haul-road",
    "rule": "pm25-instant",
    "type": "threshold",
    "metric": "pm2_5",
    "severity": "warning",
    "ts": "2026-12-06T10:00:00.000Z",
    "started": "2026-12-06T10:00:00.000Z",
    "ended": None,
    "value": 154.6,
    "limit": 50.0,
    "average": "instant",
    "peak": 154.6,
    "late": False,
    "acked_by": None,
    "message": "PM2.5 154.6 µg/m³ at haul-road (tsagaan) exceeds the MNS 4585:2016 limit of 50.0 µg/m³",
    "msg_id": "alert.threshold.above",
    "msg_params": {
        "node": "haul-road",
        "site": "tsagaan",
        "metric": "pm2_5",
        "average": "instant",
        "state": "raised",
        "late": False,
        "started": "2026-12-06T10:00:00.000Z",
        "ended": None,
        "value": 154.6,
        "limit": 50.0,
        "peak": 154.6,
        "acked_by": None,
        "standard": "MNS 4585:2016",
    },
    "unit": "µg/m³",
    "standard": "MNS 4585:2016",
}


@dataclass
class Page:
    url: str
    store: AlertStore  # the gateway's side of the store
    links: AckLinks
    now: list[datetime]

    def link(self, recipient: str = "S. Saraa") -> str:
        return self.links.url(ALERT, recipient, "email")


def _serve(tmp_path: Path, language: str, site: SiteConfig | None = None) -> Iterator[Page]:
    store = AlertStore(tmp_path / "alerts.sqlite")
    store.commit(
        [MachineState("pm25-instant", "tsagaan", "haul-road", alert_id=ALERT, started_ms=1)], [(RAISED, [])]
    )
    now = [START + timedelta(minutes=5)]
    web = WebConfig(port=free_port(), language=language)
    links = AckLinks(store, f"http://127.0.0.1:{web.port}", 3600, lambda: now[0])
    dead = InfluxV1(InfluxConfig(url=f"http://127.0.0.1:{free_port()}", database="none"))  # type: ignore[arg-type]
    web_store = AlertStore(tmp_path / "alerts.sqlite")  # the dashboard's own connection, as in `serve`
    app = create_app(web, InfluxReader(dead), clock=lambda: now[0], alert_store=web_store, site=site)
    server = BackgroundServer(app, web)
    server.start()
    try:
        yield Page(f"http://127.0.0.1:{web.port}", store, links, now)
    finally:
        server.stop()
        web_store.close()
        store.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    yield from _serve(tmp_path, "en")


class Browser:
    """A visitor with a cookie jar, as a phone's browser keeps `mw_csrf`."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def open(self, url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, str]:
        headers = {"Sec-Fetch-Site": "same-origin"} if data is not None else {}
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def confirm(self, url: str) -> tuple[int, str]:
        status, text = self.open(url)
        assert status == 200, text
        csrf = re.search(r'name="csrf" value="([^"]+)"', text)
        assert csrf is not None, text
        return self.open(url, f"csrf={csrf.group(1)}".encode())


def _outcome(text: str) -> str:
    found = re.search(r'data-outcome="([a-z-]+)"', text)
    return found.group(1) if found else "confirm" if 'id="ack-form"' in text else "?"


def test_a_get_or_head_shows_the_alert_and_writes_nothing(page: Page) -> None:
    url = page.link()
    status, text = Browser().open(url)
    assert status == 200 and _outcome(text) == "confirm"
    assert ALERT in text and "You acknowledge as: S. Saraa" in text
    assert "Value: 154.6 µg/m³; limit: 50.0 µg/m³ (MNS 4585:2016)" in html.unescape(text)
    assert Browser().open(url, method="HEAD")[0] == 200
    assert page.store.open_acks() == []


def test_a_wrong_token_is_a_404_page_not_an_error(page: Page) -> None:
    for token in ("A" * 32, "short", "x" * 200, "%00%ff"):
        status, text = Browser().open(f"{page.url}/ack/{token}")
        assert status == 404 and _outcome(text) == "unknown", token
        assert Texts("en")("ack_link.unknown") in text
    assert Browser().open(f"{page.url}/ack/{'A' * 32}", b"csrf=x")[0] == 404


def test_an_expired_link_and_one_whose_alert_ended_say_so(page: Page) -> None:
    url = page.link()
    visitor = Browser()
    status, text = visitor.open(url)
    assert status == 200
    page.now[0] += timedelta(hours=2)  # the link is valid one hour
    status, text = visitor.open(url)
    assert status == 410 and _outcome(text) == "expired"
    assert 'id="ack-form"' not in text
    page.now[0] -= timedelta(hours=2)
    fresh = page.link("oyuna")
    page.store.commit([MachineState("pm25-instant", "tsagaan", "haul-road")], [])  # cleared: no active alert
    status, text = Browser().open(fresh)
    assert status == 410 and _outcome(text) == "ended"
    assert 'id="ack-form"' not in text and page.store.open_acks() == []


def test_the_pages_times_are_in_the_sites_zone_with_the_zone_shown(tmp_path: Path) -> None:
    for served in _serve(tmp_path, "en", SiteConfig(timezone="Asia/Ulaanbaatar")):
        expiring, used = served.link("oyuna"), served.link("S. Saraa")  # made at 10:05Z, valid 1 h
        ack = served.store.use_token(digest(used.rsplit("/", 1)[1]), START.timestamp() + 600)  # 10:10Z
        assert ack is not None
        served.store.ack_result(ack, "acknowledged")
        status, text = Browser().open(used)
        assert status == 200 and _outcome(text) == "used"
        assert "already used (2026-12-06 18:10 UTC+08)" in text, text
        served.now[0] += timedelta(hours=2)
        status, text = Browser().open(expiring)
        assert status == 410 and _outcome(text) == "expired"
        assert "expired (2026-12-06 19:05 UTC+08)" in text, text
        main = text.split("<main>", 1)[1].split("</main>", 1)[0]
        assert not re.search(r"UTC(?!\+)", main), main  # no time left in UTC


def test_a_confirmation_is_the_clis_ack_request_with_the_recipients_name(page: Page) -> None:
    url = page.link("S. Saraa")
    visitor = Browser()

    def gateway_applies() -> None:  # what Alerts.tick does with an open request
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for ack_id, alert_id, by in page.store.open_acks():
                assert (alert_id, by) == (ALERT, "S. Saraa")
                page.store.ack_result(ack_id, "acknowledged")
                return
            time.sleep(0.05)

    gateway = threading.Thread(target=gateway_applies)
    gateway.start()
    status, text = visitor.confirm(url)
    gateway.join()
    assert status == 200 and _outcome(text) == "done" and "Acknowledged by S. Saraa" in text
    status, text = visitor.open(url)  # the link again: what became of it, no form
    assert status == 200 and _outcome(text) == "used" and 'id="ack-form"' not in text


def test_two_confirmations_at_once_make_one_request(page: Page) -> None:
    url = page.link()
    tabs = [Browser(), Browser()]
    forms = []
    for tab in tabs:
        status, text = tab.open(url)
        assert status == 200
        match = re.search(r'name="csrf" value="([^"]+)"', text)
        assert match is not None
        forms.append(match.group(1))
    results: list[tuple[int, str]] = []
    threads = [
        threading.Thread(
            target=lambda tab=tab, csrf=csrf: results.append(tab.open(url, f"csrf={csrf}".encode()))
        )
        for tab, csrf in zip(tabs, forms, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(_outcome(text) for _, text in results) == ["recorded", "recorded"]  # no gateway runs here
    assert [(a, b) for _, a, b in page.store.open_acks()] == [(ALERT, "S. Saraa")]


def test_a_post_from_elsewhere_or_without_the_pages_value_is_refused(page: Page) -> None:
    url = page.link()
    visitor = Browser()
    visitor.open(url)
    status, text = visitor.open(url, b"csrf=not-the-cookie")
    assert status == 403 and _outcome(text) == "forbidden"
    req = urllib.request.Request(url, data=b"csrf=x", headers={"Sec-Fetch-Site": "cross-site"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 403
    req = urllib.request.Request(url, data=b"csrf=x", headers={"Origin": "https://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 403
    assert page.store.open_acks() == []


def test_the_page_reads_in_mongolian(tmp_path: Path) -> None:
    for served in _serve(tmp_path, "mn"):
        status, text = Browser().open(served.link("Саран"))
        assert status == 200 and '<html lang="mn">' in text
        mn = Texts("mn")
        assert mn("ack_link.recipient", name="Саран") in text and mn("ack_link.confirm") in text
        main = text.split("<main>", 1)[1].split("</main>", 1)[0]  # the footer holds [web] attribution
        visible = html.unescape(re.sub(r"<[^>]+>", " ", main))
        data = {"tsagaan", "haul", "road", "pm25", "instant", "MNS", "minewatch", "API"}
        leaks = [w for w in english_words(visible) if w not in data and not re.match(r"\d", w)]
        leaks = [w for w in leaks if not ALERT.count(w)]
        assert leaks == [], leaks


def test_a_planned_stops_page_marks_a_notice_as_seen_and_promises_no_reminders(page: Page) -> None:
    """A planned stop has no reminders: its page says it marks the notice as seen, in en and mn."""
    stop = {
        **RAISED,
        "severity": "info",
        "rule": "offline",
        "type": "offline",
        "metric": None,
        "msg_id": "alert.stop.stopped",
        "message": "haul-road (tsagaan) was stopped as planned",
    }
    page.store.commit(
        [MachineState("pm25-instant", "tsagaan", "haul-road", alert_id=ALERT, started_ms=1)], [(stop, [])]
    )
    status, text = Browser().open(page.link())
    assert status == 200 and _outcome(text) == "confirm"
    notice = Texts("en")("ack_link.confirm_notice", name="S. Saraa")
    assert html.escape(notice, quote=True) in text or notice in html.unescape(text)
    assert "Reminders stop" not in html.unescape(text)
