"""Headless Debian Chromium for the browser tests, started as the machine allows (no sandbox as
root, no background networking on a closed network), with a profile of the test's own. Their
screenshots go under `tests.helpers.artifacts_root()`, named `<lang>-<page>.png` so that one
language's never replaces the other's."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def chromium(
    profile: Path, window: str, prefs: dict[str, object] | None = None, args: tuple[str, ...] = ()
) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={window}",
        f"--user-data-dir={profile}",
        *args,
    ):
        opts.add_argument(arg)
    if prefs:
        opts.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(options=opts, service=Service(executable_path="/usr/bin/chromedriver"))
    driver.set_page_load_timeout(60)
    return driver


def as_phone(driver: webdriver.Chrome, width: int = 360, height: int = 740) -> None:
    """A phone's screen, not a narrow window: the viewport `width` CSS px wide at two device
    pixels each, mobile (the meta viewport obeyed, as a phone's browser does) and touch."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": height,
            "deviceScaleFactor": 2,
            "mobile": True,
            "screenOrientation": {"type": "portraitPrimary", "angle": 0},
        },
    )
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
