"""The observation form where the issue's phones are, in headless Chromium emulating a 360 px
phone: reached at a plain-http address that is not localhost (a village's `http://192.168.x.x`),
where a browser gives neither a service worker nor the position, the page says so and still
queues and sends; and on a link that accepts and then carries nothing (tests/gateway/web/proxy.py
`silent`), the form reopens from the service worker's copy within seconds and a hung upload is
given up and sent again once the link is back, arriving once; and a code at its hourly limit is
said so on the phone, the observation kept to send later."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gateway import devservices
from gateway.observations import records
from gateway.observations.store import RATE_PER_HOUR
from tests.gateway.web.chromium import as_phone, chromium
from tests.gateway.web.proxy import Switch
from tests.gateway.web.test_observations import gateway_config
from tests.gateway.web.test_observe_browser import _code, _count, _fill, _kept_by_the_service_worker
from tests.helpers import ROOT
from tests.webdata import NOW, served_site

WORDS = {
    lang: tomllib.loads((ROOT / "contract" / "i18n" / f"{lang}.toml").read_text("utf-8"))["observe"]
    for lang in ("en", "mn")
}
HOST = "gateway.test"  # resolved to 127.0.0.1 by the browser alone: an address that is not localhost


def _phone(profile: Path, *args: str) -> webdriver.Chrome:
    driver = chromium(profile, "360,740", args=args)
    as_phone(driver)
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Ulaanbaatar"})
    return driver


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    driver = _phone(tmp_path / "profile", f"--host-resolver-rules=MAP {HOST} 127.0.0.1")
    yield driver
    driver.quit()


def test_on_plain_http_the_form_says_it_needs_https_and_still_sends(
    influxd: devservices.Service, phone: webdriver.Chrome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "gateway-data"
    with served_site(influxd.port, data_dir=data) as site:
        assert site.field is not None
        field = site.field
        code = _code(gateway_config(tmp_path / "gateway.toml", data, influxd.port, site), capsys)
        port = site.url.rsplit(":", 1)[1]
        # on localhost (a secure context) the note stays hidden
        phone.get(site.url + "/observe")
        assert phone.execute_script("return window.isSecureContext") is True
        assert not phone.find_element(By.ID, "needs-https").is_displayed()
        phone.get(f"http://{HOST}:{port}/observe")
        assert phone.execute_script("return window.isSecureContext") is False
        assert phone.execute_script("return 'serviceWorker' in navigator") is False
        note = phone.find_element(By.ID, "needs-https")
        assert note.is_displayed() and note.text == WORDS["en"]["needs_https"]
        phone.find_element(By.ID, "locate").click()
        assert phone.find_element(By.ID, "position").text == WORDS["en"]["needs_https"]
        assert phone.execute_script("return window.innerWidth") == 360
        overflow = phone.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the form is {overflow} px wider than a phone screen"
        _fill(phone, code, "dust", "sent over plain http", None)
        WebDriverWait(phone, 20).until(lambda d: records.listed(field.reader))
        WebDriverWait(phone, 10).until(lambda d: _count(d, "queued") == "0")
        assert [o.text for o in records.listed(field.reader)] == ["sent over plain http"]


def test_a_silent_link_reopens_the_kept_form_and_a_hung_upload_is_sent_again_once(
    influxd: devservices.Service, phone: webdriver.Chrome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "gateway-data"
    with served_site(influxd.port, data_dir=data) as site:
        assert site.field is not None
        field = site.field
        code = _code(gateway_config(tmp_path / "gateway.toml", data, influxd.port, site), capsys)
        link = Switch(int(site.url.rsplit(":", 1)[1]))
        try:
            phone.get(link.url + "/observe")
            assert _kept_by_the_service_worker(phone)
            link.silent()  # the link still up, carrying nothing: no reset, no answer
            start = time.monotonic()
            phone.refresh()
            WebDriverWait(phone, 20).until(lambda d: d.find_elements(By.ID, "send"))  # the worker's copy
            reopened_s = time.monotonic() - start
            assert reopened_s < 12, f"the kept form took {reopened_s:.1f} s"
            _fill(phone, code, "blasting", "sent into the silence", None)
            WebDriverWait(phone, 10).until(lambda d: _count(d, "queued") == "1")
            WebDriverWait(phone, 10).until(lambda d: b"POST /api/v1/observations" in link.swallowed)
            link.on()  # back; the upload swallowed stays hung until the page gives it up
            WebDriverWait(phone, 150, poll_frequency=1).until(lambda d: records.listed(field.reader))
            WebDriverWait(phone, 10).until(lambda d: _count(d, "queued") == "0")
            phone.refresh()
            WebDriverWait(phone, 10).until(lambda d: _count(d, "queued") == "0")
            (got,) = records.listed(field.reader)  # once: the swallowed one never reached the gateway
            assert (got.kind, got.text) == ("blasting", "sent into the silence")
            assert got.at == datetime(2026, 11, 22, 3, 40, tzinfo=UTC)
        finally:
            link.close()


def test_a_code_at_its_hourly_limit_is_said_on_the_phone_and_the_observation_kept(
    influxd: devservices.Service, phone: webdriver.Chrome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "gateway-data"
    with served_site(influxd.port, data_dir=data) as site:
        assert site.field is not None and site.codes is not None
        code = _code(gateway_config(tmp_path / "gateway.toml", data, influxd.port, site), capsys)
        for _ in range(RATE_PER_HOUR):  # the code's hour used up (the dashboard's clock is stopped)
            site.codes.claim(1, NOW)
        phone.get(site.url + "/observe")
        assert not phone.find_element(By.ID, "rate-limited").is_displayed()
        _fill(phone, code, "dust", "one too many", None)
        WebDriverWait(phone, 10).until(lambda d: d.find_element(By.ID, "rate-limited").is_displayed())
        note = phone.find_element(By.ID, "rate-limited").text
        assert note == WORDS["en"]["rate_limited"].format(n=RATE_PER_HOUR)
        WebDriverWait(phone, 10).until(lambda d: _count(d, "queued") == "1")
        assert _count(phone, "refused") == "0" and records.listed(site.field.reader) == []
