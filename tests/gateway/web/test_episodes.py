"""The alert history as episodes (/alerts): each alert once, from its start to its end, with its
peak, severity and who acknowledged it; raised and cleared ones told apart by shape and words, not
only colour. Events written by the alert engine's own write path (`AlertEvent.to_line`) into a
real influxd, pages in headless Chromium with a 360 px mobile viewport, in English and Mongolian."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from contract.i18n import Texts
from gateway import devservices
from gateway.alerts.events import AlertEvent, State, alert_id
from gateway.config import WebConfig
from gateway.stores.reader import AlertEvent as StoredEvent
from gateway.web.episodes import episodes
from tests.gateway.web.chromium import chromium
from tests.helpers import artifacts_root
from tests.webdata import NOW, SITE, alert_lines, served_site, site_lines

ARTIFACTS = artifacts_root() / "web"
DUST_START = NOW - timedelta(hours=3)
RIVER_START = NOW - timedelta(days=2)
DUST = alert_id(SITE, "haul-road", "mns-pm25-24h", DUST_START)
RIVER = alert_id(SITE, "river-down", "river-idaho", RIVER_START)


def _event(
    ident: str,
    node: str,
    rule: str,
    metric: str,
    state: State,
    at: datetime,
    started: datetime,
    **more: object,
) -> AlertEvent:
    base: dict[str, object] = {
        "id": ident,
        "state": state,
        "site": SITE,
        "node": node,
        "rule": rule,
        "rule_type": "threshold",
        "metric": metric,
        "severity": "warning",
        "at": at,
        "started": started,
        "ended": None,
        "value": None,
        "limit": None,
        "average": "24h",
        "peak": None,
        "late": False,
        "message": f"{rule} {state}",
        "unit": "µg/m³" if metric == "pm2_5" else "NTU",
    }
    return AlertEvent(**{**base, **more})  # type: ignore[arg-type]


def engine_events() -> list[AlertEvent]:
    """An ongoing dust alert acknowledged by S. Saraa, and a river alert that ended."""
    return [
        _event(
            DUST, "haul-road", "mns-pm25-24h", "pm2_5", "raised", DUST_START, DUST_START,
            value=61.2, limit=50.0, peak=61.2,
        ),
        _event(
            DUST, "haul-road", "mns-pm25-24h", "pm2_5", "acknowledged", DUST_START + timedelta(minutes=20),
            DUST_START, value=64.0, limit=50.0, peak=66.5, acked_by="S. Saraa",
        ),
        _event(
            DUST, "haul-road", "mns-pm25-24h", "pm2_5", "reminder", NOW - timedelta(hours=1), DUST_START,
            value=58.0, limit=50.0, peak=71.3, acked_by="S. Saraa",
        ),
        _event(
            RIVER, "river-down", "river-idaho", "turbidity", "raised", RIVER_START, RIVER_START,
            value=9.0, limit=5.0, peak=9.0, severity="critical",
        ),
        _event(
            RIVER, "river-down", "river-idaho", "turbidity", "cleared", RIVER_START + timedelta(hours=5),
            RIVER_START, ended=RIVER_START + timedelta(hours=4, minutes=50), value=3.0, limit=5.0, peak=27.5,
            severity="critical",
        ),
    ]  # fmt: skip


def _stored(e: AlertEvent) -> StoredEvent:
    return StoredEvent(
        e.at, e.site, e.node, e.rule, e.metric, e.state, e.severity, e.value, e.limit, e.average, e.late,
        e.message, peak=e.peak, started=e.started, ended=e.ended, alert_id=e.id, acked_by=e.acked_by,
        unit=e.unit,
    )  # fmt: skip


def test_events_group_into_episodes_with_start_end_peak_and_who_acknowledged() -> None:
    found = episodes([_stored(e) for e in reversed(engine_events())])
    assert [x.id for x in found] == [DUST, RIVER]  # newest start first
    dust, river = found
    assert dust.is_ongoing and dust.start == DUST_START and dust.end is None
    assert (
        dust.peak == 71.3
        and dust.acked_by == "S. Saraa"
        and dust.acked_at == DUST_START + timedelta(minutes=20)
    )
    assert not river.is_ongoing and river.end == RIVER_START + timedelta(hours=4, minutes=50)
    assert river.peak == 27.5 and river.severity == "critical" and river.acked_by is None


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"), "360,740")
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True},
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.mark.parametrize("language", ["en", "mn"])
def test_ongoing_and_ended_episodes_differ_in_words_and_shape_on_a_phone(
    influxd: devservices.Service, phone: webdriver.Chrome, language: str, tmp_path: Path
) -> None:
    t = Texts(language)
    lines = site_lines() + alert_lines() + [e.to_line() for e in engine_events()]
    with served_site(influxd.port, web=WebConfig(language=language), lines=lines) as site:
        phone.get(site.url + "/alerts")
        items = phone.find_elements(By.CSS_SELECTOR, "#episodes li.episode")
        by_id = {li.get_attribute("data-alert-id"): li for li in items}
        dust, river = by_id[DUST], by_id[RIVER]
        # the events of issue 6's test site have no ids: grouped all the same, one episode each
        assert len(items) == 4
        assert dust.get_attribute("data-state") == "ongoing" and river.get_attribute("data-state") == "ended"
        assert t("alerts.episode.ongoing").upper() in dust.text and "●" in dust.text
        assert t("alerts.episode.ended") in river.text and "✓" in river.text
        style = "return getComputedStyle(arguments[0]).borderTopStyle"
        assert phone.execute_script(style, dust) == "solid" and phone.execute_script(style, river) == "dashed"
        assert dust.find_element(By.CSS_SELECTOR, "dd.end").text == "—"
        assert river.find_element(By.CSS_SELECTOR, "dd.end").text == t.time(
            datetime(2026, 11, 20, 16, 50, tzinfo=UTC)
        )
        assert dust.find_element(By.CSS_SELECTOR, "dd.peak").text == "71.3 µg/m³"
        assert river.find_element(By.CSS_SELECTOR, "dd.peak").text == "27.5 NTU"
        assert dust.find_element(By.CSS_SELECTOR, "dd.acked").text == t(
            "alerts.episode.acked", by="S. Saraa", when=t.time(datetime(2026, 11, 22, 9, 20, tzinfo=UTC))
        )
        assert river.find_element(By.CSS_SELECTOR, "dd.acked").text == t("alerts.episode.not_acked")
        assert t("alert.severity.critical") in river.find_element(By.CSS_SELECTOR, "dd.severity").text
        width = phone.execute_script("return document.documentElement.scrollWidth")
        height = phone.execute_script("return document.documentElement.scrollHeight")
        phone.set_window_size(360, min(height + 120, 6000))
        phone.save_screenshot(str(ARTIFACTS / f"{language}-alerts-episodes-phone.png"))
        assert width <= 360, f"/alerts is {width} px wide on a 360 px phone"


HAUL_PM10_START = NOW - timedelta(days=3)
HAUL_PM10 = alert_id(SITE, "haul-road", "pm10-1h", HAUL_PM10_START)


def haul_road_ended() -> list[AlertEvent]:
    """An episode of the haul road that ended: raised, then cleared, three days ago."""
    return [
        _event(
            HAUL_PM10, "haul-road", "pm10-1h", "pm10", "raised", HAUL_PM10_START, HAUL_PM10_START,
            value=160.0, limit=150.0, peak=160.0, average="1h", unit="µg/m³",
        ),
        _event(
            HAUL_PM10, "haul-road", "pm10-1h", "pm10", "cleared", HAUL_PM10_START + timedelta(hours=2),
            HAUL_PM10_START, ended=HAUL_PM10_START + timedelta(hours=1, minutes=45), value=90.0,
            limit=150.0, peak=212.0, average="1h", unit="µg/m³",
        ),
    ]  # fmt: skip


@pytest.mark.parametrize("language", ["en", "mn"])
def test_a_nodes_page_shows_its_alert_history_as_the_same_episodes(
    influxd: devservices.Service, phone: webdriver.Chrome, language: str
) -> None:
    """The node page lists the node's episodes as /alerts does (one macro, one `episodes`): the
    ongoing dust alert with who acknowledged it, the ended PM10 alert dashed with its end and peak;
    no bare raised/cleared event rows, and no other node's alerts."""
    t = Texts(language)
    events = engine_events() + haul_road_ended()
    lines = site_lines() + alert_lines() + [e.to_line() for e in events]
    with served_site(influxd.port, web=WebConfig(language=language), lines=lines) as site:
        status, page, _ = site.get(f"/node/{SITE}/haul-road")
        assert status == 200
        section = page.split('id="node-alerts"', 1)[1].split("</section>", 1)[0]
        assert 'class="alert ' not in section  # the event rows are gone
        assert section.count('<li class="episode ') == 3  # dust (engine), pm25-1h (issue 6), pm10
        assert RIVER not in section and "river-down" not in section

        phone.get(site.url + f"/node/{SITE}/haul-road")
        items = phone.find_elements(By.CSS_SELECTOR, "#node-alerts li.episode")
        by_id = {li.get_attribute("data-alert-id"): li for li in items}
        assert {DUST, HAUL_PM10} <= set(by_id) and len(items) == 3
        assert [li.get_attribute("data-node") for li in items] == ["haul-road"] * 3
        dust, ended = by_id[DUST], by_id[HAUL_PM10]
        assert dust.get_attribute("data-state") == "ongoing" and ended.get_attribute("data-state") == "ended"
        assert t("alerts.episode.ongoing").upper() in dust.text and "●" in dust.text
        assert t("alerts.episode.ended") in ended.text and "✓" in ended.text
        style = "return getComputedStyle(arguments[0]).borderTopStyle"
        assert phone.execute_script(style, dust) == "solid" and phone.execute_script(style, ended) == "dashed"
        background = "return getComputedStyle(arguments[0]).backgroundColor"
        assert phone.execute_script(background, dust) != phone.execute_script(background, ended)
        assert ended.find_element(By.CSS_SELECTOR, "dd.start").text == t.time(HAUL_PM10_START)
        assert ended.find_element(By.CSS_SELECTOR, "dd.end").text == t.time(
            HAUL_PM10_START + timedelta(hours=1, minutes=45)
        )
        assert ended.find_element(By.CSS_SELECTOR, "dd.peak").text == "212.0 µg/m³"
        assert dust.find_element(By.CSS_SELECTOR, "dd.end").text == "—"
        assert dust.find_element(By.CSS_SELECTOR, "dd.acked").text == t(
            "alerts.episode.acked", by="S. Saraa", when=t.time(DUST_START + timedelta(minutes=20))
        )
        assert ended.find_element(By.CSS_SELECTOR, "dd.acked").text == t("alerts.episode.not_acked")
        assert t("alert.severity.warning") in dust.find_element(By.CSS_SELECTOR, "dd.severity").text
        phone.execute_script("arguments[0].scrollIntoView()", dust)
        phone.save_screenshot(str(ARTIFACTS / f"{language}-node-episodes-phone.png"))
        width = phone.execute_script("return document.documentElement.scrollWidth")
        assert width <= 360, f"the node page is {width} px wide on a 360 px phone"
