"""Issue 18, "a dashboard honest at the worst moment", against the app served by uvicorn over a real
influxd: without a NowCast (a new site, after an outage) a card shows the category of what is known,
labelled as such; the turbidity bands are finer; each category carries its health advice."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from contract.i18n import Texts
from gateway import devservices
from gateway.config import WebConfig
from gateway.subscriber import Message
from gateway.web.status import StatusBoard
from tests.webdata import NOW, Site, reading, served_site

EN, MN = Texts("en"), Texts("mn")


def _lines() -> list[str]:
    lines = [
        # a new site's first reading, at 154.6 µg/m³: very unhealthy
        reading("first", 1, NOW, {"pm2_5": {"value": 154.6, "n": 300}}),
        # back after an outage: readings in the last full hour only (one of the last three hours)
        *(
            reading(
                "back",
                i + 1,
                NOW.replace(minute=0, second=0) - timedelta(minutes=55 - 5 * i),
                {"pm2_5": {"value": 40.0, "n": 300}},
            )
            for i in range(12)
        ),
        # rivers at 5 NTU and 35 NTU
        reading("river-5", 1, NOW - timedelta(minutes=2), {"turbidity": {"value": 5.0, "n": 300}}),
        reading("river-35", 1, NOW - timedelta(minutes=2), {"turbidity": {"value": 35.0, "n": 300}}),
    ]
    return lines


def _board() -> StatusBoard:
    """The new node publishes its position, so the map shows it; another has gone offline."""
    board = StatusBoard("minewatch")
    for node, doc in (
        ("first", {"state": "online", "lat": 43.11, "lon": 106.85}),
        ("river-35", {"state": "offline", "lat": 43.09, "lon": 106.87}),
    ):
        topic = f"minewatch/v1/tsagaan/{node}/status"
        board.handle(Message(topic, json.dumps(doc).encode(), 0, 1, True, time.monotonic()))
    return board


@pytest.fixture(scope="module", params=["en", "mn"])
def site(request: pytest.FixtureRequest, influxd: devservices.Service) -> Iterator[tuple[Site, Texts]]:
    lang: str = request.param
    with served_site(influxd.port, web=WebConfig(language=lang), lines=_lines(), status=_board()) as s:
        yield s, Texts(lang)


def _card(page: str, node: str) -> str:
    m = re.search(rf'<article class="card[^"]*" id="node-tsagaan-{node}".*?</article>', page, re.S)
    assert m, f"no card for {node}"
    return m.group(0)


def _map_data(page: str) -> str:
    m = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', page, re.S)
    assert m, "no map"
    return m.group(1)


def _text(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def test_one_reading_at_154_6_is_very_unhealthy_from_the_latest_reading(site: tuple[Site, Texts]) -> None:
    s, t = site
    card = _card(s.get("/")[1], "first")
    assert 'data-basis="reading"' in card and "background:#8f3f97" in card  # AirNow's purple
    said = t("aqi_known.reading", category=t("aqi.very-unhealthy"), value="154.6", unit=t.unit("pm2_5"))
    assert said in _text(card)
    assert t("aqi.none") not in _text(card) and "level none" not in card  # never grey at 154.6
    assert t("aqi_advice.very-unhealthy") in _text(card)
    # the map colours the node the same, and an offline node by its last values, not grey
    points = {p["label"]: p for p in json.loads(_map_data(s.get("/")[1]))}
    assert points["first"]["colour"] == "#8f3f97"
    assert points["river-35"]["offline"] and points["river-35"]["colour"] == "#f0a000"
    # the node's own page says the same, with the advice's source
    page = s.get("/node/tsagaan/first")[1]
    assert said in _text(page) and t("aqi_advice.source") in _text(page)
    # the API keeps to the EPA's definition: no NowCast, no AQI category
    latest = {r["node"]: r for r in s.get("/api/v1/latest")[1]}
    assert latest["first"]["aqi_category"] is None and latest["first"]["nowcast_pm2_5"] is None


def test_the_overview_cites_the_advice_it_shows_with_a_link(site: tuple[Site, Texts]) -> None:
    s, t = site
    page = s.get("/")[1]
    note = re.search(r'<p class="note" id="advice-source">(.*?)</p>', page, re.S)
    assert note is not None, "the overview shows advice without its source"
    link = re.search(r'<a href="([^"]+)"[^>]*>(.*?)</a>', note.group(1))
    assert link is not None and link.group(1).startswith("https://document.airnow.gov/")
    assert _text(note.group(1)).strip() == f"{t('aqi_advice.source_short')} {t('aqi_advice.source_link')}"


def test_after_an_outage_the_last_hours_mean_gives_the_category(site: tuple[Site, Texts]) -> None:
    s, t = site
    card = _card(s.get("/")[1], "back")
    assert 'data-basis="hour"' in card and "background:#ff7e00" in card  # 40 µg/m³: orange
    said = t("aqi_known.hour", category=t("aqi.usg"), value="40.0", unit=t.unit("pm2_5"))
    assert said in _text(card) and t("aqi_known.note") in _text(card)
    assert t("aqi_advice.usg") in _text(card)


def test_5_and_35_ntu_are_different_bands_on_the_cards(site: tuple[Site, Texts]) -> None:
    s, t = site
    page = s.get("/")[1]
    five, thirty_five = _card(page, "river-5"), _card(page, "river-35")
    assert 'data-band="cloudy"' in five and 'data-band="very-cloudy"' in thirty_five
    assert t("turbidity.value", category=t("turbidity.very-cloudy"), ntu="35.0") in _text(thirty_five)
    assert t("turbidity.source") in _text(s.get("/node/tsagaan/river-35")[1])
