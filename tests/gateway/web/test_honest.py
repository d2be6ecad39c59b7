"""Issue 18, "a dashboard honest at the worst moment", against the app served by uvicorn over a real
influxd: without a NowCast (a new site, after an outage) a card shows the category of what is known,
labelled as such; with a NowCast that lags a sudden plume, the latest reading's own category is
shown beside it; the turbidity bands are finer; each category carries its health advice."""

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
from gateway.web.views import is_spike, pm2_5_limits
from tests.contract.test_i18n_mn import english_words
from tests.webdata import NOW, STEP, Site, reading, served_site

EN, MN = Texts("en"), Texts("mn")


def plume(node: str, last: float) -> list[str]:
    """11 full hours at 10 µg/m³ (every 5 min, 01:00 to 11:55), then one reading at `last` 20 s
    before NOW, in the hour not yet closed: the NowCast of those hours is 10.0 µg/m³ (Moderate,
    AQI 53) whatever `last` is, as the EPA's NowCast lags a sudden plume by design."""
    start = NOW.replace(minute=0, second=0) - timedelta(hours=11)
    hours = [reading(node, i + 1, start + i * STEP, {"pm2_5": {"value": 10.0, "n": 300}}) for i in range(132)]
    return [*hours, reading(node, 133, NOW - timedelta(seconds=20), {"pm2_5": {"value": last, "n": 300}})]


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
        # a haul truck's plume after a calm morning, and the same morning without it
        *plume("plume", 154.6),
        *plume("steady", 10.0),
    ]
    return lines


def _board() -> StatusBoard:
    """The new node and the plume's publish their positions, so the map shows them; another has gone
    offline."""
    board = StatusBoard("minewatch")
    for node, doc in (
        ("first", {"state": "online", "lat": 43.11, "lon": 106.85}),
        ("river-35", {"state": "offline", "lat": 43.09, "lon": 106.87}),
        ("plume", {"state": "online", "lat": 43.10, "lon": 106.86}),
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


def test_a_sudden_plume_shows_the_latest_reading_beside_the_nowcast_in_its_colour(
    site: tuple[Site, Texts],
) -> None:
    s, t = site
    page = s.get("/")[1]
    card, said = _card(page, "plume"), _text(_card(page, "plume"))
    nowcast = t("aqi.value", aqi=53, category=t("aqi.moderate"))
    latest = t("aqi_latest.value", value="154.6", unit=t.unit("pm2_5"), category=t("aqi.very-unhealthy"))
    # the NowCast (11 hours at 10 µg/m³) stays, first and yellow; the latest reading is beside it, purple
    assert f"{t('aqi.label')}: {nowcast}" in said and latest in said
    assert said.index(nowcast) < said.index(latest)
    assert re.search(r'data-basis="nowcast" style="background:#ffff00', card)
    assert re.search(r'data-basis="latest" style="background:#8f3f97;color:#fff"', card)
    assert t("aqi_latest.note") in said and "EPA" in t("aqi_latest.note")
    # the node page says the same; the map keeps the NowCast's colour
    node = _text(s.get("/node/tsagaan/plume")[1])
    assert nowcast in node and latest in node and t("aqi_latest.note") in node
    assert {p["label"]: p for p in json.loads(_map_data(page))}["plume"]["colour"] == "#ffff00"
    if t.language == "mn":  # the ids are data; everything else is Mongolian
        assert english_words(said.replace("plume", " ").replace("tsagaan", " ")) == [], said
    # the API: the NowCast's category as before, the latest reading's own beside it
    by_node = {r["node"]: r for r in s.get("/api/v1/latest")[1]}
    assert by_node["plume"]["nowcast_pm2_5"] == 10.0 and by_node["plume"]["aqi_category"] == "moderate"
    assert by_node["plume"]["latest_aqi_category"] == "very-unhealthy" and by_node["plume"]["spike"] is True


def test_a_steady_site_shows_only_the_nowcast(site: tuple[Site, Texts]) -> None:
    s, t = site
    card = _card(s.get("/")[1], "steady")
    assert 'data-basis="nowcast"' in card and 'data-basis="latest"' not in card
    assert t("aqi.value", aqi=53, category=t("aqi.moderate")) in _text(card)
    assert t("aqi_latest.note") not in _text(card) and "latest-note" not in card
    by_node = {r["node"]: r for r in s.get("/api/v1/latest")[1]}
    assert by_node["steady"]["latest_aqi_category"] == "moderate" and by_node["steady"]["spike"] is False
    # without a NowCast the card already shows the latest reading's category, and no second line
    first = by_node["first"]
    assert first["latest_aqi_category"] == "very-unhealthy" and first["spike"] is False
    assert 'data-basis="latest"' not in _card(s.get("/")[1], "first")


LIMITS = pm2_5_limits(["who-2021", "us-epa", "mns-4585-2016"])


@pytest.mark.parametrize(
    ("nowcast", "latest", "limits", "spike"),
    [
        (10.0, 154.6, LIMITS, True),  # Moderate, Very unhealthy: three categories
        (10.0, 10.0, LIMITS, False),
        (10.0, 154.6, (), True),  # two or more categories, whatever the standards
        (5.0, 16.0, LIMITS, True),  # Good, Moderate: one category, but over the WHO's 15
        (5.0, 16.0, (), False),
        (5.0, 14.0, LIMITS, False),  # Moderate, under every limit
        (30.0, 40.0, LIMITS, True),  # Moderate, USG: over the US EPA's 35, which the NowCast is not
        (20.0, 30.0, LIMITS, False),  # the NowCast is over the WHO's 15 already, as the reading
        (25.0, 10.0, LIMITS, False),  # a reading below the NowCast is no spike
        (40.0, 60.0, LIMITS, False),  # USG, Unhealthy: one category, and the NowCast is not calm
        (40.0, 130.0, LIMITS, True),  # USG, Very unhealthy: two categories
    ],
)
def test_a_spike_is_two_categories_or_a_limit_the_calm_nowcast_is_not_over(
    nowcast: float, latest: float, limits: tuple[float, ...], spike: bool
) -> None:
    assert LIMITS == (15.0, 35.0, 50.0)  # 24-hour limits only: the annual ones say nothing of a reading
    assert is_spike(nowcast, latest, limits) is spike
