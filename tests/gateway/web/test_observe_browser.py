"""The observation form in a real headless Chromium at a phone's 360 px: one observation with two
photos (chosen one after another) sent online, one with two photos made with the link cut (kept by
the page, the form kept by its service worker), both arriving once with both their photos (in
InfluxDB and the photos folder) when the link is back; a monitor logged in through the page accepts
one and rejects the other, the accepted one shows on the node's chart and in the report, and each
photo served back carries no EXIF position. And on a weak link: the form reloaded while the gateway
cannot be reached (the browser still online) comes from the service worker and queues, and a timer
sends the observation once the gateway is back; a form whose token expired is renewed and sent
again, a refusal nothing can mend is shown on the page and kept until discarded; the phone's
position and "now" (the gateway's clock, not the phone's) arrive as given."""

from __future__ import annotations

import io
import json
import os
import re
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait

from gateway import devservices
from gateway.cli import main
from gateway.config import WebConfig
from gateway.observations import records
from gateway.observations.records import Observation
from tests.gateway.report.test_report import tables
from tests.gateway.web.chromium import as_phone, chromium
from tests.gateway.web.proxy import Switch
from tests.gateway.web.test_observations import GPS_TAG, gateway_config, gps_jpeg
from tests.helpers import ROOT, artifacts_root
from tests.webdata import NOW, Site, served_site

ARTIFACTS = artifacts_root() / "web"
WORDS = {
    lang: tomllib.loads((ROOT / "contract" / "i18n" / f"{lang}.toml").read_text("utf-8"))["observe"]
    for lang in ("en", "mn")
}


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    driver = chromium(tmp_path / "profile", "360,740")
    as_phone(driver)  # a phone's 360 px screen (mobile, touch), not only a narrow window
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Ulaanbaatar"})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _network(driver: webdriver.Chrome, *, offline: bool) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def _fill(
    driver: webdriver.Chrome,
    code: str,
    kind: str,
    text: str,
    photo: Path | list[Path] | None,
    at_local: str = "2026-11-22T11:40",
) -> None:
    driver.find_element(By.ID, "code").clear()
    driver.find_element(By.ID, "code").send_keys(code)
    Select(driver.find_element(By.ID, "kind")).select_by_value(kind)
    driver.find_element(By.ID, "text").send_keys(text)
    Select(driver.find_element(By.ID, "node")).select_by_value("tsagaan/haul-road")
    # the dashboard's clock is stopped at webdata.NOW: the observation was made just before it
    driver.execute_script("document.getElementById('at').value = arguments[0];", at_local)
    chosen = [] if photo is None else [photo] if isinstance(photo, Path) else photo
    for n, one in enumerate(chosen, 1):  # one after another, as a phone's camera gives them
        driver.find_element(By.ID, "photo").send_keys(str(one))
        WebDriverWait(driver, 5).until(
            lambda d, n=n: d.find_element(By.ID, "photo-count").get_attribute("data-count") == str(n)
        )
    if chosen:
        assert f"{len(chosen)} / 4" in driver.find_element(By.ID, "photo-count").text
    driver.find_element(By.ID, "send").click()


def _moderate(phone: webdriver.Chrome, obs_id: str, button: str, why: str) -> None:
    item = phone.find_element(By.ID, f"pending-{obs_id}")
    item.find_element(By.TAG_NAME, "textarea").send_keys(why)
    item.find_element(By.CSS_SELECTOR, f"button.{button}").click()
    # the page this one replaces may show the last decision's `done` too: wait for the new page
    # (the clicked item gone stale), then for its `done`, so the decision is stored before we read
    WebDriverWait(phone, 10).until(staleness_of(item))
    WebDriverWait(phone, 10).until(lambda d: d.find_elements(By.ID, "done"))


def test_two_observations_one_offline_arrive_once_each(
    influxd: devservices.Service,
    phone: webdriver.Chrome,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "gateway-data"
    pictures = []
    for n, colour in enumerate([(180, 120, 60), (60, 120, 180), (20, 160, 20), (160, 20, 160)]):
        pictures.append(tmp_path / f"camera-{n}.jpg")
        img = Image.open(io.BytesIO(gps_jpeg()))  # each with the camera's EXIF position
        img.paste(colour, (0, 0, 1200, 900))  # and pixels of its own, so four files are kept
        out = io.BytesIO()
        img.save(out, "JPEG", exif=img.getexif())
        pictures[-1].write_bytes(out.getvalue())
    assert Image.open(pictures[1]).getexif().get_ifd(GPS_TAG)
    site: Site
    with served_site(influxd.port, data_dir=data) as site:
        assert site.field is not None
        field = site.field
        config = gateway_config(tmp_path / "gateway.toml", data, influxd.port, site)
        assert main(["observers", "add", "--config", str(config), "--name", "Dorj"]) == 0
        found = re.search(r"code (\S+)", capsys.readouterr().out)
        assert found is not None
        code = found.group(1)
        monkeypatch.setattr("sys.stdin", io.StringIO("a long pass phrase\n"))
        assert main(["monitors", "add", "--config", str(config), "--name", "saraa", "--password-stdin"]) == 0

        def stored() -> list[Observation]:
            return records.listed(field.reader)

        phone.get(site.url + "/observe")
        screen = phone.execute_script(
            "return [window.innerWidth, document.documentElement.clientWidth, matchMedia('(pointer: coarse)')"
            ".matches, navigator.maxTouchPoints, window.devicePixelRatio]"
        )
        assert screen == [360, 360, True, 5, 2], screen  # a 360 px phone, as the issue asks
        overflow = phone.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the form is {overflow} px wider than a phone screen"
        # the service worker keeps the form for a phone without signal
        kept = phone.execute_async_script(
            "var done = arguments[0]; navigator.serviceWorker.ready"
            ".then(function () { return caches.open('minewatch-observe-v1'); })"
            ".then(function (c) { return c.match('/observe'); })"
            ".then(function (r) { done(!!r); }, function () { done(false); });"
        )
        assert kept is True
        _fill(phone, code, "dust", "plume from the pit", pictures[:2])
        WebDriverWait(phone, 20).until(lambda d: len(stored()) == 1)

        _network(phone, offline=True)
        WebDriverWait(phone, 5).until(lambda d: d.execute_script("return navigator.onLine") is False)
        _fill(phone, code, "water_colour", "river orange below the tailings", pictures[2:])
        WebDriverWait(phone, 10).until(
            lambda d: d.find_element(By.ID, "queued").get_attribute("data-count") == "1"
        )
        assert len(stored()) == 1  # the second is on the phone only
        phone.save_screenshot(str(ARTIFACTS / "en-observe-offline-phone.png"))

        _network(phone, offline=False)
        WebDriverWait(phone, 20).until(lambda d: len(stored()) == 2)
        WebDriverWait(phone, 10).until(
            lambda d: d.find_element(By.ID, "queued").get_attribute("data-count") == "0"
        )
        phone.refresh()  # a new page flushes its queue again: nothing is sent twice
        WebDriverWait(phone, 10).until(
            lambda d: d.find_element(By.ID, "queued").get_attribute("data-count") == "0"
        )
        got = stored()
        assert sorted(o.kind for o in got) == ["dust", "water_colour"]
        assert len({o.id for o in got}) == 2
        dust, water = sorted(got, key=lambda o: o.kind)
        # both photos of each, once: the one sent online and the one kept in IndexedDB offline
        assert len(dust.photos_sha256) == 2 and len(water.photos_sha256) == 2
        assert len(set(dust.photos_sha256 + water.photos_sha256)) == 4
        assert dust.photo_sha256 == dust.photos_sha256[0]
        assert sorted(p.name for p in field.photos.iterdir()) == sorted(
            f"{h}.jpg" for h in dust.photos_sha256 + water.photos_sha256
        )
        # 11:40 on the phone's clock in Ulaanbaatar (UTC+8) is 03:40 UTC
        assert dust.at == datetime(2026, 11, 22, 3, 40, tzinfo=UTC)

        # a monitor logs in through the page, and decides on each with a reason
        phone.get(site.url + "/moderate")  # not logged in: sent to the login form
        WebDriverWait(phone, 10).until(lambda d: d.find_elements(By.ID, "login"))
        phone.find_element(By.ID, "name").send_keys("saraa")
        phone.find_element(By.ID, "password").send_keys("a long pass phrase")
        phone.find_element(By.ID, "sign-in").click()
        WebDriverWait(phone, 10).until(lambda d: d.find_elements(By.ID, "pending"))
        overflow = phone.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the moderation page is {overflow} px wider than a phone screen"
        phone.save_screenshot(str(ARTIFACTS / "en-moderate-phone.png"))
        for obs in (dust, water):  # the monitor sees every photo of each before deciding
            assert len(phone.find_element(By.ID, f"pending-{obs.id}").find_elements(By.TAG_NAME, "img")) == 2
        _moderate(phone, dust.id, "accept", "matches the PM10 peak")
        _moderate(phone, water.id, "reject", "duplicate")
        decided = records.decisions_of(field.reader)
        assert [(d.decision, d.by, d.why) for d in decided[dust.id]] == [
            ("accepted", "saraa", "matches the PM10 peak")
        ]
        assert [(d.decision, d.by, d.why) for d in decided[water.id]] == [("rejected", "saraa", "duplicate")]
        assert not phone.find_elements(By.CSS_SELECTOR, "#pending li")
        with urllib.request.urlopen(site.url + "/api/v1/observations") as resp:
            public = json.loads(resp.read())
        assert [o["id"] for o in public] == [dust.id]
        assert len(public[0]["photos"]) == 2
        for path in public[0]["photos"]:
            with urllib.request.urlopen(site.url + path) as resp:
                img = Image.open(io.BytesIO(resp.read()))
            assert not img.getexif() and not img.getexif().get_ifd(GPS_TAG)
            assert max(img.size) <= 1280  # made smaller on the phone
        phone.get(site.url + "/observations")
        assert "plume from the pit" in phone.find_element(By.ID, "observations").text
        phone.save_screenshot(str(ARTIFACTS / "en-observations-phone.png"))
        # the accepted one is marked on its node's charts (24 h and 7 d) and listed under them
        phone.get(site.url + "/node/tsagaan/haul-road")
        WebDriverWait(phone, 10).until(
            lambda d: all(
                f.get_attribute("data-drawn") == "1" for f in d.find_elements(By.CSS_SELECTOR, "figure.chart")
            )
        )
        marks = {
            u.get_attribute("data-observed")
            for u in phone.find_elements(By.CSS_SELECTOR, "figure.chart .uplot")
        }
        assert marks == {"1"}
        listed = phone.find_element(By.ID, "observed").text
        assert "plume from the pit" in listed and "orange" not in listed
        # and it is in the report of that day, the rejected one is not
        out = tmp_path / "report.html"
        args = ["--site", "tsagaan", "--start", "2026-11-22", "--end", "2026-11-23", "--out", str(out)]
        assert main(["report", "--config", str(config), *args]) == 0
        rows = tables(out.read_text(encoding="utf-8"))["observations-table"]
        assert [(r[1], r[3]) for r in rows] == [("Dust plume", "plume from the pit")]
        assert rows[0][5].count("…") == 2  # both photos' hashes as received


def test_a_point_tapped_on_the_sites_map_is_where_the_observation_was(
    influxd: devservices.Service, phone: webdriver.Chrome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "gateway-data"
    with served_site(influxd.port, data_dir=data) as site:
        assert site.field is not None
        config = gateway_config(tmp_path / "gateway.toml", data, influxd.port, site)
        assert main(["observers", "add", "--config", str(config), "--name", "Dorj"]) == 0
        found = re.search(r"code (\S+)", capsys.readouterr().out)
        assert found is not None
        phone.get(site.url + "/observe")
        canvas = phone.find_element(By.ID, "observe-map")
        WebDriverWait(phone, 10).until(lambda d: canvas.get_attribute("data-drawn") == "1")
        phone.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)
        ActionChains(phone).move_to_element(canvas).click().perform()  # the middle of the map
        assert phone.find_element(By.ID, "place-kind").get_attribute("value") == "map"
        phone.find_element(By.ID, "code").send_keys(found.group(1))
        Select(phone.find_element(By.ID, "kind")).select_by_value("smell")
        phone.execute_script("document.getElementById('at').value = arguments[0];", "2026-11-22T11:40")
        phone.find_element(By.ID, "send").click()
        WebDriverWait(phone, 20).until(lambda d: records.listed(site.field.reader))  # type: ignore[union-attr]
        (got,) = records.listed(site.field.reader)
        # the map's middle is the middle of the two nodes with a position (webdata.board)
        assert got.place == "map" and got.node is None and got.site == "tsagaan"
        assert got.lat == pytest.approx((43.1105 + 43.0921) / 2, abs=2e-4)
        assert got.lon == pytest.approx((106.8503 + 106.8712) / 2, abs=2e-4)


def _code(config: Path, capsys: pytest.CaptureFixture[str], name: str = "Dorj") -> str:
    capsys.readouterr()
    assert main(["observers", "add", "--config", str(config), "--name", name]) == 0
    found = re.search(r"code (\S+)", capsys.readouterr().out)
    assert found is not None
    return found.group(1)


def _count(driver: webdriver.Chrome, element_id: str) -> str | None:
    return driver.find_element(By.ID, element_id).get_attribute("data-count")


def _kept_by_the_service_worker(driver: webdriver.Chrome) -> bool:
    return bool(
        driver.execute_async_script(
            "var done = arguments[0]; navigator.serviceWorker.ready"
            ".then(function () { return caches.open('minewatch-observe-v1'); })"
            ".then(function (c) { return c.match('/observe'); })"
            ".then(function (r) { done(!!r); }, function () { done(false); });"
        )
    )


def test_a_form_reloaded_with_the_gateway_unreachable_queues_and_a_timer_sends_it_once(
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
            link.off()  # the gateway unreachable; the phone does not know it
            phone.refresh()
            WebDriverWait(phone, 10).until(lambda d: d.find_elements(By.ID, "send"))  # from the worker
            assert phone.execute_script("return navigator.onLine") is True
            _fill(phone, code, "blasting", "two blasts from the east pit", None)
            WebDriverWait(phone, 10).until(lambda d: _count(d, "queued") == "1")
            tried = link.refused
            time.sleep(6)  # one retry (after 5 s), with no `online` event to prompt it
            assert link.refused > tried and records.listed(field.reader) == []
            link.on()
            WebDriverWait(phone, 30).until(lambda d: records.listed(field.reader))  # the next retry
            WebDriverWait(phone, 10).until(lambda d: _count(d, "queued") == "0")
            phone.refresh()
            WebDriverWait(phone, 10).until(lambda d: _count(d, "queued") == "0")
            (got,) = records.listed(field.reader)  # exactly once
            assert (got.kind, got.text, got.node) == ("blasting", "two blasts from the east pit", "haul-road")
            assert got.at == datetime(2026, 11, 22, 3, 40, tzinfo=UTC)
        finally:
            link.close()


def test_an_expired_form_is_renewed_and_a_refusal_is_shown_until_discarded(
    influxd: devservices.Service, phone: webdriver.Chrome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "gateway-data"
    with served_site(influxd.port, data_dir=data) as site:
        assert site.field is not None
        field = site.field
        config = gateway_config(tmp_path / "gateway.toml", data, influxd.port, site)
        code = _code(config, capsys)
        phone.get(site.url + "/observe")
        assert _kept_by_the_service_worker(phone)  # its fetch of /observe would set a cookie again
        # the form's cookie gone (cleared, or expired on a phone whose clock runs fast): 403 at first
        phone.execute_cdp_cmd("Network.deleteCookies", {"name": "mw_csrf", "url": site.url})
        assert phone.get_cookie("mw_csrf") is None
        _fill(phone, code, "dust", "renewed form", None)
        WebDriverWait(phone, 20).until(lambda d: records.listed(field.reader))
        assert [o.text for o in records.listed(field.reader)] == ["renewed form"]
        assert phone.get_cookie("mw_csrf") is not None
        WebDriverWait(phone, 10).until(lambda d: _count(d, "queued") == "0")
        assert _count(phone, "refused") == "0"

        _fill(phone, code, "smell", "a time typed wrong", None, at_local="2027-03-01T10:00")
        WebDriverWait(phone, 10).until(lambda d: _count(d, "refused") == "1")
        assert main(["observers", "revoke", "--config", str(config), "--id", "1", "--by", "operator"]) == 0
        _fill(phone, code, "noise", "with a revoked code", None)
        WebDriverWait(phone, 10).until(lambda d: _count(d, "refused") == "2")
        phone.refresh()  # kept on the phone, and shown again
        WebDriverWait(phone, 10).until(lambda d: _count(d, "refused") == "2")
        items = {
            li.find_element(By.CLASS_NAME, "what").text: li
            for li in phone.find_elements(By.CSS_SELECTOR, "#refused li")
        }
        assert (
            items["Smell: a time typed wrong"].find_element(By.CLASS_NAME, "why").text
            == WORDS["en"]["refused_time"]
        )
        revoked = items["Noise: with a revoked code"]
        assert revoked.find_element(By.CLASS_NAME, "why").text == WORDS["en"]["refused_code"]
        assert phone.find_element(By.ID, "refused").is_displayed()
        wrong_time = items["Smell: a time typed wrong"]
        assert not wrong_time.find_elements(By.CLASS_NAME, "send-again")  # the same time is refused again
        assert _count(phone, "queued") == "0"
        overflow = phone.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the refused list is {overflow} px wider than a phone screen"
        phone.execute_script("document.getElementById('refused').scrollIntoView();")
        phone.save_screenshot(str(ARTIFACTS / "en-observe-refused-phone.png"))
        assert len(records.listed(field.reader)) == 1  # neither stored

        items["Smell: a time typed wrong"].find_element(By.CLASS_NAME, "discard").click()
        WebDriverWait(phone, 10).until(lambda d: _count(d, "refused") == "1")
        # a new code from the operator, entered above: the kept one is sent with it
        new_code = _code(config, capsys, name="Dorj again")
        phone.find_element(By.ID, "code").clear()
        phone.find_element(By.ID, "code").send_keys(new_code)
        phone.find_element(By.CSS_SELECTOR, "#refused li .send-again").click()
        WebDriverWait(phone, 20).until(lambda d: len(records.listed(field.reader)) == 2)
        WebDriverWait(phone, 10).until(lambda d: _count(d, "refused") == "0")
        assert sorted(o.text for o in records.listed(field.reader)) == ["renewed form", "with a revoked code"]


def test_the_phones_position_and_now_arrive_as_the_observations(
    influxd: devservices.Service, phone: webdriver.Chrome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "gateway-data"
    with served_site(influxd.port, data_dir=data) as site:
        assert site.field is not None
        code = _code(gateway_config(tmp_path / "gateway.toml", data, influxd.port, site), capsys)
        phone.execute_cdp_cmd(
            "Browser.grantPermissions", {"origin": site.url, "permissions": ["geolocation"]}
        )
        phone.execute_cdp_cmd(
            "Emulation.setGeolocationOverride", {"latitude": 43.10123, "longitude": 106.86045, "accuracy": 8}
        )
        phone.get(site.url + "/observe")
        phone.find_element(By.ID, "code").send_keys(code)
        Select(phone.find_element(By.ID, "kind")).select_by_value("trucks")
        phone.find_element(By.ID, "locate").click()
        WebDriverWait(phone, 10).until(
            lambda d: d.find_element(By.ID, "position").text == WORDS["en"]["located"]
        )
        assert phone.find_element(By.ID, "place-kind").get_attribute("value") == "position"
        assert phone.find_element(By.ID, "at").get_attribute("value") == ""  # "leave empty for now"
        phone.find_element(By.ID, "send").click()
        WebDriverWait(phone, 20).until(lambda d: records.listed(site.field.reader))  # type: ignore[union-attr]
        (got,) = records.listed(site.field.reader)
        assert (got.place, got.node, got.site) == ("position", None, "tsagaan")
        assert (got.lat, got.lon) == (pytest.approx(43.10123, abs=1e-5), pytest.approx(106.86045, abs=1e-5))
        # now is the gateway's clock (stopped at NOW), not the phone's, which runs weeks ahead of it
        assert datetime.now(UTC) - NOW > timedelta(days=1)
        assert NOW - timedelta(seconds=5) <= got.at <= NOW


def test_a_photo_over_a_slow_link_arrives_once(
    influxd: devservices.Service, phone: webdriver.Chrome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = tmp_path / "noisy.jpg"  # noise: a JPEG that stays large once the phone has shrunk it
    Image.frombytes("RGB", (1280, 960), os.urandom(1280 * 960 * 3)).save(picture, "JPEG", quality=95)
    data = tmp_path / "gateway-data"
    web = WebConfig(header_timeout_s=1.0)  # the upload takes several header deadlines
    with served_site(influxd.port, web=web, data_dir=data) as site:
        assert site.field is not None
        field = site.field
        code = _code(gateway_config(tmp_path / "gateway.toml", data, influxd.port, site), capsys)
        phone.get(site.url + "/observe")
        phone.execute_cdp_cmd("Network.enable", {})
        phone.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 300, "downloadThroughput": 64_000, "uploadThroughput": 64_000},
        )
        start = time.monotonic()
        _fill(phone, code, "dust", "over 2G", picture)
        WebDriverWait(phone, 60).until(lambda d: records.listed(field.reader))
        took_s = time.monotonic() - start
        WebDriverWait(phone, 10).until(lambda d: _count(d, "queued") == "0")
        (got,) = records.listed(field.reader)
        assert got.photo_sha256 is not None and took_s > 3 * web.header_timeout_s, took_s
