"""Headless Debian Chromium for the browser tests, started as the machine allows (no sandbox as
root, no background networking on a closed network), with a profile of the test's own. Their
screenshots go under `tests.helpers.artifacts_root()`, named `<lang>-<page>.png` so that one
language's never replaces the other's."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def chromium(profile: Path, window: str, prefs: dict[str, object] | None = None) -> webdriver.Chrome:
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
    ):
        opts.add_argument(arg)
    if prefs:
        opts.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(options=opts, service=Service(executable_path="/usr/bin/chromedriver"))
    driver.set_page_load_timeout(60)
    return driver
