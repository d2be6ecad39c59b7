"""The dashboard's pages in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium) against the app served by uvicorn over a real influxd. Screenshots go to
$MINEWATCH_ARTIFACTS/web/ (default test-artifacts/web/), named en-<page>.png."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gateway import devservices
from gateway.cli import main
from tests import regdata
from tests.gateway.web.chromium import chromium
from tests.helpers import artifacts_root
from tests.webdata import ACTIVE_MESSAGE, NOW, Site, served_site

ARTIFACTS = artifacts_root() / "web"


@pytest.fixture(scope="module")
def site(influxd: devservices.Service) -> Iterator[Site]:
    with served_site(influxd.port) as s:
        yield s


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[webdriver.Chrome]:
    driver = chromium(
        tmp_path_factory.mktemp("chromium-profile"),
        "1024,900",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _shot(driver: webdriver.Chrome, name: str) -> None:
    # the whole page, not only the window: set the window to the document's height first
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.execute_script("return window.innerWidth")
    driver.set_window_size(max(width, 360), min(max(height + 120, 600), 6000))
    driver.save_screenshot(str(ARTIFACTS / f"en-{name}.png"))  # the pages here are in English


def test_overview_lists_nodes_latest_values_and_the_active_alert(
    site: Site, browser: webdriver.Chrome
) -> None:
    browser.set_window_size(1024, 900)
    browser.get(site.url + "/")
    card = browser.find_element(By.ID, "node-tsagaan-haul-road")
    values = {dd.get_attribute("data-metric"): dd.text for dd in card.find_elements(By.CSS_SELECTOR, "dd")}
    assert values == {
        "pm2_5": "80.0 µg/m³",
        "pm10": "128.0 µg/m³",
        "pm2_5_atm": "52.0 µg/m³",  # what else a PMS5003 kit sends, with its unit
        "pc0_3": "9120.0 per 0.1 L",
    }
    assert "AQI 162: Unhealthy" in card.text
    assert "just now" in card.text
    river = browser.find_element(By.ID, "node-tsagaan-river-down")
    assert "12.5 NTU" in river.text and "Cloudy" in river.text
    upstream = browser.find_element(By.ID, "node-tsagaan-river-up")
    assert "offline" in upstream.text and "2 h ago" in upstream.text
    alerts = browser.find_elements(By.CSS_SELECTOR, "#active-alerts li.alert")
    assert len(alerts) == 1
    assert ACTIVE_MESSAGE in alerts[0].text
    # the map draws the two nodes that published a position
    drawn = WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.ID, "map").get_attribute("data-drawn")
    )
    assert drawn == "2"
    _shot(browser, "overview")


def test_node_page_draws_its_charts_with_limit_lines(site: Site, browser: webdriver.Chrome) -> None:
    browser.set_window_size(1024, 900)
    browser.get(site.url + "/node/tsagaan/haul-road")
    figures = browser.find_elements(By.CSS_SELECTOR, "figure.chart")
    assert len(figures) == 4  # pm2_5 and pm10, 24 h and 7 d
    WebDriverWait(browser, 10).until(
        lambda d: all(
            f.get_attribute("data-drawn") == "1" for f in d.find_elements(By.CSS_SELECTOR, "figure.chart")
        )
    )
    first = figures[0]
    canvas = first.find_element(By.TAG_NAME, "canvas")
    assert canvas.size["width"] > 200 and canvas.size["height"] > 100
    # something was painted: count non-transparent pixels on the chart's canvas
    painted = browser.execute_script(
        "var c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;"
        "for (var i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;",
        canvas,
    )
    assert painted > 500
    legend = first.text
    assert "MNS 4585:2016, 24-hour mean" in legend and "WHO 2021" in legend
    assert "sensor warming up" in browser.find_element(By.ID, "flags").text
    _shot(browser, "node-haul-road")


def test_node_page_marks_maintenance_visits_on_its_charts(
    site: Site, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    config = regdata.gateway_config(tmp_path / "gateway.toml", site.db)
    at = (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%MZ")
    window = [(NOW - timedelta(hours=h)).strftime("%Y-%m-%dT%H:%MZ") for h in (4, 2)]
    args = ["maintenance", "add", "--config", str(config), "--node", "river-down", "--kind", "cleaned"]
    extra = [
        "--at",
        at,
        "--by",
        "Bold",
        "--note",
        "<i>wiped</i>",
        "--flag-from",
        window[0],
        "--flag-to",
        window[1],
    ]
    assert main([*args, *extra]) == 0
    browser.set_window_size(1024, 900)
    browser.get(site.url + "/node/tsagaan/river-down")
    WebDriverWait(browser, 10).until(
        lambda d: all(
            f.get_attribute("data-drawn") == "1" for f in d.find_elements(By.CSS_SELECTOR, "figure.chart")
        )
    )
    marked = [f.find_element(By.CSS_SELECTOR, ".uplot").get_attribute("data-visits") for f in
              browser.find_elements(By.CSS_SELECTOR, "figure.chart")]  # fmt: skip
    assert marked and set(marked) == {"1"}  # one visit on the 24-h and on the 7-day charts
    text = browser.find_element(By.ID, "maintenance").text
    assert f"{at[:10]} {at[11:16]} UTC: cleaned, by Bold" in text and "<i>wiped</i>" in text
    _shot(browser, "node-maintenance")
    browser.get(site.url + "/node/tsagaan/haul-road")  # another node's page shows none
    assert "No maintenance visit recorded" in browser.find_element(By.ID, "maintenance").text


def test_phone_screen_needs_no_sideways_scrolling(site: Site, browser: webdriver.Chrome) -> None:
    browser.set_window_size(360, 740)
    for path, name in (("/", "overview-phone"), ("/node/tsagaan/haul-road", "node-phone")):
        browser.get(site.url + path)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow} px wider than a phone screen"
        browser.save_screenshot(str(ARTIFACTS / f"en-{name}.png"))


def test_download_form_gives_the_csv(site: Site, browser: webdriver.Chrome, downloads: Path) -> None:
    browser.set_window_size(1024, 900)
    browser.get(site.url + "/download")
    assert "CC BY 4.0" in browser.find_element(By.ID, "licence").text
    form = browser.find_element(By.ID, "download-form")
    form.find_element(By.CSS_SELECTOR, "option[value='tsagaan/river-up']").click()
    for name, value in (("start", "2026-11-21"), ("end", "2026-11-23")):
        field = form.find_element(By.NAME, name)
        browser.execute_script("arguments[0].value = arguments[1]", field, value)
    _shot(browser, "download")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    expected = downloads / "minewatch-tsagaan-river-up-20261121-20261123.csv"
    deadline = time.monotonic() + 30
    while not expected.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert expected.exists(), f"no download; got {os.listdir(downloads)}"
    rows = list(csv.DictReader(io.StringIO(expected.read_text(encoding="utf-8"))))
    assert len(rows) == 265  # one every 5 min from 24 h to 2 h before now
    assert {r["node"] for r in rows} == {"river-up"}
    assert rows[0]["time"] == "2026-11-21T12:00:30.000Z" and float(rows[0]["turbidity"]) == 3.0


def test_download_fits_a_360px_phone(site: Site, browser: webdriver.Chrome) -> None:
    """A phone's own viewport (Chromium's mobile emulation), not only a narrow desktop window."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True},
    )
    try:
        browser.get(site.url + "/download")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        wide = browser.execute_script(
            "return [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > 360 || e.scrollWidth > e.clientWidth + 1)"
            ".map(e => e.tagName + ' ' + (e.name || e.id || '') + ' ' + e.scrollWidth)"
        )
        browser.save_screenshot(str(ARTIFACTS / "en-download-phone.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert width <= 360, f"/download is {width} px wide on a 360 px phone: {wide}"
