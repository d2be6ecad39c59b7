"""Every page on a phone, in English and in Mongolian, in real headless Chromium with a mobile
viewport (Chromium's device-metrics emulation at 360 px, touch on), against the app served by
uvicorn over a real influxd: nothing wider than the screen with long Cyrillic words, no English on
a Mongolian page, charts that redraw when the phone turns, the upstream river on the downstream
chart, a legend for a finger, and pages that refresh themselves.

Full-page screenshots go to $MINEWATCH_ARTIFACTS/phone/ (default test-artifacts/phone/, gitignored),
one per page and language: <lang>-<page>.png."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from contract.i18n import Texts
from gateway import devservices, maintenance
from gateway.alerts.links import digest
from gateway.alerts.machine import MachineState
from gateway.alerts.store import AlertStore
from gateway.config import WebConfig
from gateway.observations.records import Observation
from gateway.web.context import Upstream
from tests.contract.test_i18n_mn import english_words
from tests.gateway.web.chromium import chromium
from tests.gateway.web.test_dash import _offline_alert
from tests.gateway.web.test_honest import plume
from tests.helpers import artifacts_root
from tests.webdata import NOW, SITE, Site, reading, served_site, site_lines

ARTIFACTS = artifacts_root() / "phone"
WIDTH, HEIGHT = 360, 740
RIVER_RULE = Upstream("river-idaho", "river-down", "river-up", "turbidity")
# An acknowledgement link's token, fixed so that its page has a fixed address (a real link's is
# `secrets.token_urlsafe(24)`, gateway/alerts/links.py); the alert it acknowledges is haul-road's.
ACK_TOKEN = "phone-test-token-0123456789abcde"
ALERT = f"{SITE}.haul-road.pm25-instant.20261122T110000Z"
PASSWORD = "a long pass phrase"

PAGES = {
    "overview": "/",
    "node-haul-road": f"/node/{SITE}/haul-road",
    "node-river-down": f"/node/{SITE}/river-down",
    "node-pm154": f"/node/{SITE}/pm154",
    "alerts": "/alerts",
    "download": "/download",
    "observe": "/observe",
    "observations": "/observations",
    "not-found": f"/node/{SITE}/x9",
    "timeline": f"/sites/{SITE}/timeline",
    "login": "/login",
    "maintenance": "/maintenance",
    "moderate": "/moderate",
    "ack": f"/ack/{ACK_TOKEN}",
}
SIGNED_IN = {"maintenance", "moderate"}  # a monitor's pages: the phone logs in through the form
# What each page must show, so a redirect or an empty page cannot pass for it.
SHOWS = {"timeline": "timeline", "login": "login", "maintenance": "visit", "moderate": "pending",
         "ack": "ack-form"}  # fmt: skip
# Site, node and rule ids and the standards' names are data, the same in every language.
NAMES = {"tsagaan", "haul", "road", "river", "up", "down", "pm154", "idaho", "x9", "n2", "MNS", "WHO"}
NAMES |= {"plume"}  # the node whose NowCast lags a sudden plume
NAMES |= {"CC", "BY"}  # the licence's name, "CC BY 4.0"
NAMES |= {"saraa"}  # the monitor's account name
# `[web] attribution` is the operator's own text, shown as written: a Mongolian site writes it so.
ATTRIBUTION = {"en": "Tsagaan community monitoring network", "mn": "Цагаан багийн иргэдийн хяналтын сүлжээ"}


def _lines() -> list[str]:
    """The test site's week, its alert stored with a message id (so it renders in each language),
    a new site's first reading at 154.6 µg/m³, and a plume of 154.6 µg/m³ after 11 calm hours."""
    first = reading("pm154", 1, NOW - timedelta(seconds=20), {"pm2_5": {"value": 154.6, "n": 300}})
    return [*site_lines(), _offline_alert(), first, *plume("plume", 154.6)]


# What residents and monitors write is theirs, in their language: the field records' texts.
WRITTEN = {
    "en": ("Grey dust over the road after the trucks passed", "Water brown below the washing plant"),
    "mn": ("Машин өнгөрсний дараа замын дээгүүр саарал тоос босов", "Угаах үйлдвэрийн доор ус хүрэн"),
}


def _alert_store(path: Path) -> AlertStore:
    """haul-road's alert, active, and the link to acknowledge it (as the dispatcher would make it)."""
    params = {"node": "haul-road", "site": SITE, "metric": "pm2_5", "average": "instant",
              "state": "raised", "late": False, "started": "2026-11-22T11:00:00.000Z", "ended": None,
              "value": 154.6, "limit": 50.0, "peak": 154.6, "acked_by": None,
              "standard": "MNS 4585:2016"}  # fmt: skip
    raised = {"schema": 1, "id": ALERT, "state": "raised", "site": SITE, "node": "haul-road",
              "rule": "pm25-instant", "type": "threshold", "metric": "pm2_5", "severity": "warning",
              "ts": params["started"], "started": params["started"], "ended": None, "value": 154.6,
              "limit": 50.0, "average": "instant", "peak": 154.6, "late": False, "acked_by": None,
              "message": "PM2.5 154.6 µg/m³ at haul-road (tsagaan) exceeds the MNS 4585:2016 limit",
              "msg_id": "alert.threshold.above", "msg_params": params, "unit": "µg/m³",
              "standard": "MNS 4585:2016"}  # fmt: skip
    store = AlertStore(path)
    machine = MachineState("pm25-instant", SITE, "haul-road", alert_id=ALERT, started_ms=1)
    store.commit([machine], [(raised, [])])
    now = NOW.timestamp()
    store.add_token(digest(ACK_TOKEN), ALERT, "Saraa", "email", now, now + 3600)
    return store


def _field_records(s: Site, lang: str) -> None:
    """A monitor's account, an observation waiting for a decision, an accepted one and a visit."""
    assert s.field is not None and s.accounts is not None
    s.accounts.add("saraa", PASSWORD, NOW)
    for text, accept in zip(WRITTEN[lang], (True, False), strict=True):
        obs = Observation(id=str(uuid.uuid4()), observer="code:1", kind="dust", text=text,
                          at=NOW - timedelta(hours=2), site=SITE, node="river-up", lat=None, lon=None,
                          received=NOW - timedelta(hours=1), photo_received_sha256=None,
                          photo_sha256=None)  # fmt: skip
        assert s.field.add(obs, None)
        if accept:
            s.field.decide(obs.id, "accepted", "saraa", WRITTEN[lang][0], NOW - timedelta(minutes=30))
    start = NOW - timedelta(hours=3)
    visit = maintenance.Visit(site=SITE, node="river-up", kind="cleaned", at=start, by="saraa",
                              note=WRITTEN[lang][1], flag_from=start - timedelta(minutes=10),
                              flag_to=start + timedelta(minutes=10), recorded=NOW,
                              entered_by="saraa")  # fmt: skip
    maintenance.record(s.field.store, s.field.reader, visit)


@pytest.fixture(scope="module", params=["en", "mn"])
def site(
    request: pytest.FixtureRequest, influxd: devservices.Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Site, Texts]]:
    lang: str = request.param
    data = tmp_path_factory.mktemp("observations")
    alerts = _alert_store(data / "alerts.sqlite")
    try:
        with served_site(
            influxd.port,
            web=WebConfig(language=lang, attribution=ATTRIBUTION[lang]),
            lines=_lines(),
            data_dir=data,
            upstreams=(RIVER_RULE,),
            alert_store=alerts,
        ) as s:
            _field_records(s, lang)
            yield s, Texts(lang)
    finally:
        alerts.close()


def _portrait(driver: webdriver.Chrome) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": WIDTH,
            "height": HEIGHT,
            "deviceScaleFactor": 2,
            "mobile": True,
            "screenOrientation": {"type": "portraitPrimary", "angle": 0},
        },
    )


def _landscape(driver: webdriver.Chrome) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": HEIGHT,
            "height": WIDTH,
            "deviceScaleFactor": 2,
            "mobile": True,
            "screenOrientation": {"type": "landscapePrimary", "angle": 90},
        },
    )


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = chromium(tmp_path_factory.mktemp("phone-profile"), f"{WIDTH},{HEIGHT}")
    _portrait(driver)
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _shot(driver: webdriver.Chrome, name: str) -> None:
    """The whole page, beyond the phone's screen."""
    options = {"format": "png", "captureBeyondViewport": True}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", options)
    (ARTIFACTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def _charts_drawn(driver: webdriver.Chrome) -> list[WebElement]:
    figures: list[WebElement] = driver.find_elements(By.CSS_SELECTOR, "figure.chart")
    WebDriverWait(driver, 10).until(lambda d: all(f.get_attribute("data-drawn") == "1" for f in figures))
    return figures


def _open(driver: webdriver.Chrome, site: Site, path: str) -> None:
    _portrait(driver)
    driver.get(site.url + path)
    _charts_drawn(driver)


def _log_in(driver: webdriver.Chrome, site: Site, path: str) -> None:
    """Open a monitor's page as a monitor does: sent to the login form, then back to the page."""
    _portrait(driver)
    driver.get(site.url + path)
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "login"))
    driver.find_element(By.ID, "name").send_keys("saraa")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url == site.url + path)


WIDE = """
return [...document.querySelectorAll('body *')]
  .filter(e => e.getClientRects().length && !e.closest('[hidden]'))
  .filter(e => e.getBoundingClientRect().right > innerWidth + 0.5 || e.scrollWidth > e.clientWidth + 1)
  .map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)
       + ' ' + e.scrollWidth + '/' + e.clientWidth)
"""

TEXT = """
var parts = [document.title, document.body.innerText];
document.querySelectorAll('[placeholder],[title],[alt],[aria-label]').forEach(function (e) {
  ['placeholder', 'title', 'alt', 'aria-label'].forEach(function (a) {
    if (e.hasAttribute(a)) parts.push(e.getAttribute(a));
  });
});
document.querySelectorAll('option, optgroup').forEach(function (e) { parts.push(e.label || e.text); });
return parts.join('\\n');
"""


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_fits_a_360px_phone_and_speaks_its_language(
    site: tuple[Site, Texts], phone: webdriver.Chrome, name: str
) -> None:
    s, t = site
    if name in SIGNED_IN:
        _log_in(phone, s, PAGES[name])
    try:
        _fits_and_speaks(phone, s, t, name)
    finally:
        phone.delete_all_cookies()  # the next page is a resident's, not signed in


def _fits_and_speaks(phone: webdriver.Chrome, s: Site, t: Texts, name: str) -> None:
    _open(phone, s, PAGES[name])
    if name in SHOWS:
        assert phone.find_elements(By.ID, SHOWS[name]), f"{t.language} {name}: no #{SHOWS[name]}"
    assert phone.execute_script("return innerWidth") == WIDTH
    assert phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == t.language
    width = phone.execute_script("return document.documentElement.scrollWidth")
    wide = phone.execute_script(WIDE)
    _shot(phone, f"{t.language}-{name}")
    assert width <= WIDTH and wide == [], f"{t.language} {name}: {width} px wide: {wide}"
    if t.language == "mn":
        # addresses (the licence's, the API's) are not words
        text: str = re.sub(r"https?://\S+|(?<!\w)/[\w./{}-]+", " ", phone.execute_script(TEXT))
        text = text.replace(ALERT, " ")  # an alert's id is data, shown to be quoted
        leaks = sorted({w for w in english_words(text) if w.lower() not in NAMES and w not in NAMES})
        assert leaks == [], f"English on the Mongolian {name} page: {leaks}"


def test_long_cyrillic_words_wrap_inside_a_narrow_card(
    site: tuple[Site, Texts], phone: webdriver.Chrome
) -> None:
    """A word longer than the card (one Mongolian compound, unbroken) stays inside it."""
    s, _ = site
    _open(phone, s, "/")
    long = "Эрүүлмэндэдмашсөрөгнөлөөтэйагаарынчанарынангилалхэтэрсэнхүлцэххэмжээ" * 2
    right = phone.execute_script(
        "var p = document.querySelector('.card .advice') || document.querySelector('.card p');"
        "p.textContent = arguments[0];"
        "return [p.getBoundingClientRect().right, p.scrollWidth - p.clientWidth,"
        " document.documentElement.scrollWidth];",
        long,
    )
    assert right[0] <= WIDTH and right[1] <= 0 and right[2] <= WIDTH, right


def test_the_worst_moment_is_not_grey(site: tuple[Site, Texts], phone: webdriver.Chrome) -> None:
    """A new site's one reading at 154.6 µg/m³: purple, labelled as the latest reading's category."""
    s, t = site
    _open(phone, s, "/")
    card = phone.find_element(By.ID, f"node-{SITE}-pm154")
    level = card.find_element(By.CSS_SELECTOR, ".level")
    assert level.get_attribute("data-basis") == "reading"
    assert phone.execute_script("return getComputedStyle(arguments[0]).backgroundColor", level) == (
        "rgb(143, 63, 151)"
    )
    unit = t.unit("pm2_5")
    assert t("aqi_known.reading", category=t("aqi.very-unhealthy"), value="154.6", unit=unit) in level.text
    assert t("aqi_advice.very-unhealthy") in card.text


def test_a_sudden_plume_shows_the_nowcast_and_the_latest_reading_on_a_phone(
    site: tuple[Site, Texts], phone: webdriver.Chrome
) -> None:
    """The NowCast of 11 calm hours (Moderate, yellow) first, the latest reading at 154.6 µg/m³ (Very
    unhealthy, purple) beside it, both inside a 360 px card."""
    s, t = site
    _open(phone, s, "/")
    card = phone.find_element(By.ID, f"node-{SITE}-plume")
    levels = card.find_elements(By.CSS_SELECTOR, ".level")
    assert [e.get_attribute("data-basis") for e in levels] == ["nowcast", "latest"]
    style = "return getComputedStyle(arguments[0]).backgroundColor"
    colours = [phone.execute_script(style, e) for e in levels]
    assert colours == ["rgb(255, 255, 0)", "rgb(143, 63, 151)"]
    unit = t.unit("pm2_5")
    assert t("aqi.value", aqi=53, category=t("aqi.moderate")) in levels[0].text
    assert t("aqi_latest.value", value="154.6", unit=unit, category=t("aqi.very-unhealthy")) in levels[1].text
    assert t("aqi_latest.note") in card.text
    rights = [phone.execute_script("return arguments[0].getBoundingClientRect().right", e) for e in levels]
    assert max(rights) <= WIDTH, rights


def _canvas_width(driver: webdriver.Chrome, fig: WebElement) -> int:
    canvas = fig.find_element(By.TAG_NAME, "canvas")
    return int(driver.execute_script("return arguments[0].getBoundingClientRect().width", canvas))


def test_charts_redraw_when_the_phone_turns(site: tuple[Site, Texts], phone: webdriver.Chrome) -> None:
    s, t = site
    _open(phone, s, PAGES["node-haul-road"])
    fig = _charts_drawn(phone)[0]
    upright = _canvas_width(phone, fig)
    assert 250 <= upright <= WIDTH - 16
    try:
        _landscape(phone)
        WebDriverWait(phone, 10).until(lambda d: _canvas_width(d, fig) > upright + 200)
        assert phone.execute_script("return innerWidth") == HEIGHT
        assert fig.get_attribute("data-resized") is not None  # redrawn, not a new page
        assert phone.execute_script("return document.documentElement.scrollWidth") <= HEIGHT
        _shot(phone, f"{t.language}-node-haul-road-landscape")
    finally:
        _portrait(phone)
    WebDriverWait(phone, 10).until(lambda d: _canvas_width(d, fig) <= upright)
    assert phone.execute_script("return document.documentElement.scrollWidth") <= WIDTH


def test_the_downstream_chart_overlays_its_upstream_reference(
    site: tuple[Site, Texts], phone: webdriver.Chrome
) -> None:
    s, t = site
    _open(phone, s, PAGES["node-river-down"])
    figures = _charts_drawn(phone)
    assert figures and all(f.get_attribute("data-upstream") == "river-up" for f in figures)
    day = figures[0]
    assert t("chart.upstream", node="river-up") in day.find_element(By.CSS_SELECTOR, ".u-legend").text
    # the rule named as its messages name it, not by its id
    named = RIVER_RULE.name("tsagaan", t)
    assert named != "river-idaho" and "river-idaho" not in day.text
    assert t("chart.upstream_note", node="river-up", rule=named) in day.text
    # river-up's 3.0 NTU, in the buckets it reported (it stopped two hours ago)
    drawn: list[Any] = phone.execute_script("return arguments[0]._chart.u.data[2]", day)
    present = [v for v in drawn if v is not None]
    assert present and set(present) == {3.0} and drawn[-1] is None
    _open(phone, s, PAGES["node-haul-road"])  # a node no difference rule pairs: no overlay
    assert all(f.get_attribute("data-upstream") is None for f in _charts_drawn(phone))


def test_the_legend_is_for_a_finger(site: tuple[Site, Texts], phone: webdriver.Chrome) -> None:
    s, _ = site
    _open(phone, s, PAGES["node-haul-road"])
    fig = _charts_drawn(phone)[0]
    rows = fig.find_elements(By.CSS_SELECTOR, ".u-legend .u-series")
    assert len(rows) >= 3  # time, PM2.5 and a limit at least
    for row in rows[1:]:
        assert row.size["height"] >= 32, row.text  # a tap target, one series a line
        size = phone.execute_script("return parseFloat(getComputedStyle(arguments[0]).fontSize)", row)
        assert size >= 15
    # no hover on a touch screen: no "--" values waiting for a cursor
    assert "--" not in fig.find_element(By.CSS_SELECTOR, ".u-legend").text
    rows[1].click()  # a tap hides the series, a second shows it again
    assert "u-off" in (rows[1].get_attribute("class") or "")
    rows[1].click()
    assert "u-off" not in (rows[1].get_attribute("class") or "")


def _write(site: Site, line: str) -> None:
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({"db": site.db.db, "precision": "ms"})
    req = urllib.request.Request(f"{site.db.url}/write?{query}", data=line.encode())
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 204


def test_pages_refresh_their_data_without_a_reload_and_stop_when_hidden(
    site: tuple[Site, Texts], phone: webdriver.Chrome
) -> None:
    s, t = site
    _open(phone, s, "/")
    html = phone.find_element(By.TAG_NAME, "html")
    assert html.get_attribute("data-refresh-s") == "60" and html.get_attribute("data-refreshing") == "on"
    phone.execute_script("window.notReloaded = true")
    search = phone.find_element(By.CSS_SELECTOR, "#node-search input[name=q]")
    search.send_keys("hau")  # being typed: a refresh leaves the form alone
    assert phone.find_elements(By.ID, f"node-{SITE}-n2") == []
    _write(s, reading("n2", 1, NOW - timedelta(minutes=1), {"turbidity": {"value": 35.0, "n": 300}}))
    phone.execute_script("return window.minewatch.refresh()")
    WebDriverWait(phone, 10).until(lambda d: d.find_elements(By.ID, f"node-{SITE}-n2"))
    assert phone.execute_script("return window.notReloaded") is True
    assert html.get_attribute("data-refreshed") == "1"
    assert search.get_attribute("value") == "hau"
    card = phone.find_element(By.ID, f"node-{SITE}-n2")
    assert t("turbidity.very-cloudy") in card.text
    # a hidden tab stops asking; shown again, it goes on
    hide = (
        "Object.defineProperty(document, 'visibilityState', {value: arguments[0], configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'));"
    )
    phone.execute_script(hide, "hidden")
    assert html.get_attribute("data-refreshing") == "off"
    phone.execute_script(hide, "visible")
    assert html.get_attribute("data-refreshing") == "on"
    # the gateway out of reach: the page keeps what it shows and says it may be out of date
    stale = phone.find_element(By.ID, "refresh-failed")
    assert not stale.is_displayed()
    phone.execute_cdp_cmd("Network.enable", {})
    conditions = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    phone.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, **conditions})
    try:
        phone.execute_script("return window.minewatch.refresh()")
        WebDriverWait(phone, 10).until(lambda d: stale.is_displayed())
        assert t("live.stale") in stale.text
        assert phone.find_elements(By.ID, f"node-{SITE}-n2")  # still shown
    finally:
        phone.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, **conditions})
    phone.execute_script("return window.minewatch.refresh()")
    WebDriverWait(phone, 10).until(lambda d: not stale.is_displayed())


HIDE = (
    "Object.defineProperty(document, 'visibilityState', {value: arguments[0], configurable: true});"
    "document.dispatchEvent(new Event('visibilitychange'));"
)
"""A tab hidden (arguments[0] "hidden") or shown again ("visible"), as the browser tells a page."""
# An observation accepted while the timeline and the observations page are open, in each language.
LATER = {"en": "Dust cloud over the tailings dam at dusk", "mn": "Үдэш хаягдлын далан дээгүүр тоосны үүл"}


def test_the_timeline_and_the_observations_refresh_themselves_and_stop_when_hidden(
    site: tuple[Site, Texts], phone: webdriver.Chrome
) -> None:
    """The site's timeline and the accepted observations refresh as the other pages do
    (`data-refresh-s`, static/site.js): an observation accepted after the page opened shows up on
    both without a reload; a hidden tab stops asking and, shown again, goes on."""
    s, t = site
    assert s.field is not None
    lang = t.language
    pages = {"timeline": ("#timeline", PAGES["timeline"]), "observations": ("#observations", "/observations")}
    opened: dict[str, str] = {}
    for name, (_, path) in pages.items():
        phone.switch_to.new_window("tab")
        _portrait(phone)
        phone.get(s.url + path)
        html = phone.find_element(By.TAG_NAME, "html")
        assert html.get_attribute("data-refresh-s") == "60", name
        assert html.get_attribute("data-refreshing") == "on", name
        assert LATER[lang] not in phone.find_element(By.TAG_NAME, "main").text
        phone.execute_script("window.notReloaded = true")
        opened[name] = phone.current_window_handle
    obs = Observation(id=str(uuid.uuid4()), observer="code:1", kind="dust", text=LATER[lang],
                      at=NOW - timedelta(minutes=20), site=SITE, node="haul-road", lat=None, lon=None,
                      received=NOW - timedelta(minutes=15), photo_received_sha256=None,
                      photo_sha256=None)  # fmt: skip
    assert s.field.add(obs, None)
    s.field.decide(obs.id, "accepted", "saraa", "seen from the road", NOW - timedelta(minutes=5))
    first = phone.window_handles[0]
    try:
        for name, (listed, _) in pages.items():
            phone.switch_to.window(opened[name])
            html = phone.find_element(By.TAG_NAME, "html")
            phone.execute_script("return window.minewatch.refresh()")
            WebDriverWait(phone, 10).until(
                lambda d, listed=listed: LATER[lang] in d.find_element(By.CSS_SELECTOR, listed).text
            )
            assert phone.execute_script("return window.notReloaded") is True, name
            assert html.get_attribute("data-refreshed") == "1", name
            assert t("observe.kind_dust") in phone.find_element(By.CSS_SELECTOR, listed).text
            phone.execute_script(HIDE, "hidden")
            assert html.get_attribute("data-refreshing") == "off", name
            phone.execute_script(HIDE, "visible")
            assert html.get_attribute("data-refreshing") == "on", name
            width = phone.execute_script("return document.documentElement.scrollWidth")
            assert width <= WIDTH, f"{name} is {width} px wide after its refresh"
    finally:
        for handle in opened.values():
            phone.switch_to.window(handle)
            phone.close()
        phone.switch_to.window(first)


def test_the_node_page_refreshes_its_charts_in_place(
    site: tuple[Site, Texts], phone: webdriver.Chrome
) -> None:
    s, _ = site
    _open(phone, s, PAGES["node-pm154"])
    fig = _charts_drawn(phone)[0]
    before = phone.execute_script("return arguments[0]._chart.u", fig)
    _write(s, reading("pm154", 2, NOW - timedelta(minutes=10), {"pm2_5": {"value": 20.0, "n": 300}}))
    phone.execute_script("window.firstChart = arguments[0]._chart.u", fig)
    phone.execute_script("return window.minewatch.refresh()")
    WebDriverWait(phone, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("data-refreshed") == "1"
    )
    same = phone.execute_script("return window.firstChart === arguments[0]._chart.u", fig)
    assert before is not None and same  # setData on the chart drawn, not a new chart
    values = phone.execute_script("return arguments[0]._chart.u.data[1].filter(v => v !== null)", fig)
    assert 20.0 in values and 154.6 in values
