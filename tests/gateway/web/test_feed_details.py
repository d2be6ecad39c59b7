"""The Atom feed's entries carry what the alert messages carry (issue 18): the alert id and the
detail lines (value and limit with its source, the place, since when, who acknowledged), in the
gateway's language, and a title that names the rule by its name, not its id. Real engine events,
stored in a real influxd, served by the real app, the feed parsed as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from contract.i18n import Texts
from gateway import devservices
from gateway.alerts.engine import Engine
from gateway.alerts.events import AlertEvent
from gateway.config import WebConfig
from tests.alert_helpers import T0, Feed, rules
from tests.contract.test_i18n_mn import english_words
from tests.fakes.clock import FakeClock
from tests.webdata import SITE, Site, served_site, site_lines

A = "{http://www.w3.org/2005/Atom}"
MN = Texts("mn")
DUST = {
    "name": "dust-school",
    "type": "threshold",
    "metric": "pm2_5",
    "limit": 50,
    "clear_after": "3m",
    "standard": "MNS 4585:2016",
}


def _events() -> list[AlertEvent]:
    """Raised, acknowledged by a lower-case name, cleared."""
    clock = FakeClock(T0)
    engine = Engine(rules(DUST), clock=clock)
    feed = Feed(engine, clock)
    end = feed.series("haul-road", T0, [20.0] * 2 + [90.0] * 3)
    acked = engine.ack(feed.events[0].id, "oyuna")
    assert acked is not None
    feed.events.append(acked)
    feed.series("haul-road", end, [10.0] * 5)
    assert [e.state for e in feed.events] == ["raised", "acknowledged", "cleared"]
    return feed.events


@pytest.fixture(scope="module")
def served(influxd: devservices.Service) -> Iterator[tuple[Site, list[AlertEvent]]]:
    events = _events()
    lines = [*site_lines(), *(e.to_line() for e in events)]
    with served_site(influxd.port, web=WebConfig(language="mn"), lines=lines) as s:
        yield s, events


def _entries(site: Site) -> dict[str, ET.Element]:
    status, body, _ = site.get(f"/sites/{SITE}/alerts.atom")
    assert status == 200
    feed = ET.fromstring(body.encode("utf-8"))
    entries = [e for e in feed.findall(A + "entry") if "/dust-school/" in str(e.findtext(A + "id"))]
    return {str(e.findtext(A + "id")).split("/")[-2]: e for e in entries}


def test_each_entry_carries_the_alert_id_and_the_messages_details_in_mongolian(
    served: tuple[Site, list[AlertEvent]],
) -> None:
    site, events = served
    entries = _entries(site)
    assert set(entries) == {"raised", "acknowledged", "cleared"}
    alert_id = events[0].id
    for state, entry in entries.items():
        content = entry.find(A + "content")
        assert content is not None and content.get("type") == "text"
        lines = str(content.text).splitlines()
        assert lines[0] == entry.findtext(A + "summary")  # the sentence, then its details
        assert MN("alert.detail.id", id=alert_id) in lines, lines
        assert any(line.startswith("Утга: ") and "MNS 4585:2016" in line for line in lines), lines
        assert MN("alert.detail.place", where="haul-road (tsagaan)") in lines, lines
        assert any(line.startswith("Эхэлсэн: 2026-11-22 ") for line in lines), lines
        # a feed reader cannot acknowledge: no instructions to
        assert "minewatch-gateway ack" not in str(content.text)
        prose = str(content.text).replace(alert_id, " ").replace("haul-road", " ").replace("tsagaan", " ")
        assert english_words(prose.replace("oyuna", " ")) == [], state
    acked = str(entries["acknowledged"].findtext(A + "content"))
    assert MN("alert.detail.acked", by="oyuna") in acked.splitlines()
    assert str(entries["acknowledged"].findtext(A + "summary")).startswith("oyuna хүлээн авсан: ")
    cleared = str(entries["cleared"].findtext(A + "content"))
    assert any(line.startswith("Дууссан: 2026-11-22 ") for line in cleared.splitlines()), cleared


def test_an_entrys_title_names_the_rule_in_mongolian_not_by_its_id(
    served: tuple[Site, list[AlertEvent]],
) -> None:
    site, _ = served
    for state, entry in _entries(site).items():
        title = str(entry.findtext(A + "title"))
        assert "dust-school" not in title and english_words(title.replace("haul-road", " ")) == [], title
        assert "PM2.5, MNS 4585:2016" in title, title
        assert title.startswith("АНХААРУУЛГА " + MN(f"alert.state.{state}")), title
