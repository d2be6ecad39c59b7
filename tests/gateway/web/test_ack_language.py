"""An acknowledgement link's pages speak its recipient's language, not the gateway's. One alert on
a Mongolian gateway goes by email (the real SMTP test server) to a monitor who reads Mongolian and
a partner who reads English (`{address = "…", language = "en"}`); each link, opened over uvicorn
against the real alert store, asks and answers in its reader's language. A token made before
tokens kept a language speaks the gateway's."""

from __future__ import annotations

import email
import email.policy
import html
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from contract.i18n import Texts
from gateway.alerts.links import AckLinks, digest
from gateway.alerts.machine import MachineState
from gateway.alerts.store import AlertStore
from gateway.channels.dispatcher import Worker
from gateway.channels.email import Email, EmailOptions
from gateway.config import InfluxConfig, SiteConfig, WebConfig
from gateway.devservices import free_port
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from gateway.web.app import create_app
from gateway.web.server import BackgroundServer
from tests.contract.test_i18n_mn import english_words
from tests.gateway.web.test_ack_page import ALERT, RAISED, START, Browser, _outcome
from tests.receivers import SmtpServer

LINK = re.compile(r"http://127\.0\.0\.1:\d+/ack/[A-Za-z0-9_-]{32}")
MONITOR, PARTNER = "monitor@tsagaan.example", "partner@ngo.example"
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
NAMES = {
    "tsagaan": {"en": "Tsagaan bag", "mn": "Цагаан баг"},
    "tsagaan/haul-road": {"en": "haul road", "mn": "тээврийн зам"},
}


def _visible(page: str) -> str:
    """What a reader sees of the page's main part (the footer holds `[web]` attribution)."""
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", " ", main.split(">", 1)[1]))


def _no_english(text: str) -> list[str]:
    """English words in a Mongolian page, beyond the alert's id (data) and the standard's code."""
    words = english_words(text.replace(ALERT, " "))
    return [w for w in words if w not in ("MNS",) and not re.match(r"\d", w)]


class Gateway:
    """A Mongolian gateway's alert store and dashboard, and an email channel with links."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = AlertStore(tmp_path / "alerts.sqlite")
        self.store.commit(
            [MachineState("pm25-instant", "tsagaan", "haul-road", alert_id=ALERT, started_ms=1)],
            [(RAISED, [])],
        )
        self.now = [START + timedelta(minutes=5)]
        self.web = WebConfig(port=free_port(), language="mn")
        self.base = f"http://127.0.0.1:{self.web.port}"
        self.links = AckLinks(self.store, self.base, 3600, lambda: self.now[0])
        site = SiteConfig.model_validate(
            {
                "timezone": "Asia/Ulaanbaatar",
                "names": [
                    {"site": "tsagaan", "name": NAMES["tsagaan"]},
                    {"site": "tsagaan", "node": "haul-road", "name": NAMES["tsagaan/haul-road"]},
                ],
            }
        )
        self.site_texts = site.texts()
        dead = InfluxV1(InfluxConfig(url=f"http://127.0.0.1:{free_port()}", database="none"))  # type: ignore[arg-type]
        self.web_store = AlertStore(tmp_path / "alerts.sqlite")  # the dashboard's own, as in `serve`
        app = create_app(
            self.web, InfluxReader(dead), clock=lambda: self.now[0], alert_store=self.web_store, site=site
        )
        self.server = BackgroundServer(app, self.web)
        self.server.start()

    def close(self) -> None:
        self.server.stop()
        self.web_store.close()
        self.store.close()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(tmp_path)
    yield gw
    gw.close()


def _emailed_links(gw: Gateway, tmp_path: Path) -> dict[str, str]:
    """The alert sent once by an email channel in Mongolian with one English reader: each
    address's link, as their message has it."""
    smtp = SmtpServer(tmp_path)
    try:
        password = tmp_path / "smtp-password"
        password.write_text(SmtpServer.PASSWORD)
        opts = EmailOptions.model_validate(
            {
                "type": "email",
                "language": "mn",
                "host": "127.0.0.1",
                "port": smtp.port,
                "ca_file": str(smtp.ca_file),
                "username": SmtpServer.USER,
                "password_file": str(password),
                "from": "gateway@tsagaan.example",
                "to": [MONITOR, {"address": PARTNER, "language": "en"}],
            }
        )
        worker = Worker(
            opts,
            Email(opts),
            gw.store,
            lambda: gw.now[0],
            threading.Event(),
            sleep=lambda s: None,
            site_texts=gw.site_texts,
            links=gw.links,
        )
        worker.process((1, RAISED))
        assert worker.stats.sent == 1, worker.stats
        found: dict[str, str] = {}
        for m in smtp.messages:
            msg = email.message_from_bytes(m.content, policy=email.policy.default)  # type: ignore[arg-type]
            assert isinstance(msg, EmailMessage)
            body = msg.get_body(("plain",))
            assert body is not None
            (link,) = LINK.findall(str(body.get_content()))
            (to,) = m.rcpt_tos
            found[to] = link
        return found
    finally:
        smtp.close()


def test_each_recipients_link_opens_a_page_in_their_language(gateway: Gateway, tmp_path: Path) -> None:
    links = _emailed_links(gateway, tmp_path)
    assert set(links) == {MONITOR, PARTNER}
    for to, language in ((MONITOR, "mn"), (PARTNER, "en")):
        found = gateway.store.token(digest(links[to].rsplit("/", 1)[1]))
        assert found is not None and found.language == language and found.recipient == to

    mn, en = Texts("mn"), Texts("en")
    status, page = Browser().open(links[MONITOR])
    assert status == 200 and _outcome(page) == "confirm" and '<html lang="mn">' in page
    seen = _visible(page)
    assert mn("ack_link.confirm") in seen and mn("ack_link.recipient", name=MONITOR) in seen
    assert "тээврийн зам" in seen and "UTC+08" in seen  # the node's Mongolian name, local time
    assert _no_english(seen.replace(MONITOR, " ")) == [], seen

    status, page = Browser().open(links[PARTNER])
    assert status == 200 and _outcome(page) == "confirm" and '<html lang="en">' in page
    seen = _visible(page)
    assert en("ack_link.confirm") in seen and f"You acknowledge as: {PARTNER}" in seen
    assert "haul road (Tsagaan bag)" in seen and "UTC+08" in seen
    assert not CYRILLIC.search(page), page  # nothing Mongolian anywhere, the nav and footer included

    # the outcome pages too: each confirmation is recorded (no gateway applies it here) in its
    # reader's language, and a second look at a spent link says so in it
    status, page = Browser().confirm(links[PARTNER])
    assert status == 202 and _outcome(page) == "recorded" and en("ack_link.recorded") in page
    assert not CYRILLIC.search(page)
    status, page = Browser().open(links[PARTNER])
    assert _outcome(page) == "recorded" and '<html lang="en">' in page and not CYRILLIC.search(page)
    status, page = Browser().confirm(links[MONITOR])
    assert status == 202 and _outcome(page) == "recorded" and '<html lang="mn">' in page
    assert mn("ack_link.recorded") in page and _no_english(_visible(page).replace(MONITOR, " ")) == []
    assert sorted(by for _, _, by in gateway.store.open_acks()) == [MONITOR, PARTNER]

    # a refusal (a stale form) and an expired link speak the link's language as well
    visitor = Browser()
    visitor.open(links[PARTNER])
    status, page = visitor.open(links[PARTNER], b"csrf=stale")
    assert status == 403 and _outcome(page) == "forbidden" and en("ack_link.forbidden") in page
    fresh = gateway.links.url(ALERT, "partner", "email", "en")
    gateway.now[0] += timedelta(hours=2)
    status, page = Browser().open(fresh)
    assert status == 410 and _outcome(page) == "expired" and not CYRILLIC.search(page)


def test_a_token_from_before_languages_were_kept_speaks_the_gateways(tmp_path: Path) -> None:
    """A store made by the previous version has `ack_tokens` without `language`: opening it adds
    the column, its tokens read NULL and their pages speak the gateway's `[web] language`."""
    path = tmp_path / "alerts.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        """CREATE TABLE ack_tokens (hash TEXT PRIMARY KEY, alert_id TEXT NOT NULL,
        recipient TEXT NOT NULL, channel TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,
        used REAL, ack INTEGER);"""
    )
    token = "B" * 32
    created = (START + timedelta(minutes=1)).timestamp()
    old.execute(
        "INSERT INTO ack_tokens VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
        (digest(token), ALERT, "Saraa", "email", created, created + 3600),
    )
    old.commit()
    old.close()
    gw = Gateway(tmp_path)  # opens the old file twice, as the gateway and the dashboard do
    try:
        columns = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(ack_tokens)")]
        assert columns[-1] == "language"
        found = gw.store.token(digest(token))
        assert found is not None and found.language is None and found.recipient == "Saraa"
        status, page = Browser().open(f"{gw.base}/ack/{token}")
        assert status == 200 and _outcome(page) == "confirm" and '<html lang="mn">' in page
        assert _no_english(_visible(page).replace("Saraa", " ")) == []
        status, page = Browser().open(gw.links.url(ALERT, "Oyuna", "email", "en"))  # a new one, in English
        assert status == 200 and '<html lang="en">' in page and not CYRILLIC.search(page)
    finally:
        gw.close()
