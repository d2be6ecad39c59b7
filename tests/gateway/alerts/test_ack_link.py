"""A monitor acknowledges an alert from the phone, through the link in the email it got.

Everything real: a simulated node's dust event through Mosquitto, `minewatch-gateway run` with
`[web]` (the dashboard in its own process), influxd, an SMTP server and a webhook receiver, and
headless Chromium with a 360 px mobile viewport opening the link from the delivered message. A
plain GET of another recipient's link (what a mail scanner or a chat preview does) acknowledges
nothing; the confirmation records the name of the link's recipient; a subscriber that comes late
gets the node's latest alert, retained."""

from __future__ import annotations

import email
import email.policy
import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gateway.alerts.links import digest
from gateway.alerts.store import AlertStore
from gateway.devservices import Service, free_port
from tests.gateway.web.chromium import chromium
from tests.helpers import Influx, Listener, artifacts_root, gateway_toml, node_toml, spawn, wait_for
from tests.receivers import HttpReceiver, SmtpServer

ARTIFACTS = artifacts_root() / "web"
LINK = re.compile(r"https?://\S+/ack/[A-Za-z0-9_-]{32}")
SARAA, OYUNA = "S. Saraa <saraa@tsagaan.example>", "oyuna@tsagaan.example"
SARAA_ADDRESS = "saraa@tsagaan.example"


def _config(workdir: Path, smtp: SmtpServer, hook: HttpReceiver, web_port: int) -> str:
    password = workdir / "smtp-password"
    password.write_text(SmtpServer.PASSWORD)
    password.chmod(0o600)
    return f"""
[web]
port = {web_port}
public_url = "http://127.0.0.1:{web_port}"
[alerts]
ack_link_valid = "1h"
[[alerts.rules]]
name = "pm25-instant"
type = "threshold"
metric = "pm2_5"
limit = 100.0
standard = "site action level"
clear_after = "10m"
remind_every = "0"
severity = "warning"
[[alerts.channels]]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
ca_file = "{smtp.ca_file}"
username = "{SmtpServer.USER}"
password_file = "{password}"
from = "gateway@tsagaan.example"
to = ["{SARAA}", "{OYUNA}"]
retry_backoff_s = 0.2
[[alerts.channels]]
type = "webhook"
name = "ops-relay"
recipient = "ops desk"
url = "{hook.url}/hook"
retry_backoff_s = 0.2
"""


def _mails(smtp: SmtpServer) -> list[EmailMessage]:
    out = []
    for m in smtp.messages:
        msg = email.message_from_bytes(m.content, policy=email.policy.default)  # type: ignore[arg-type]
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def _text(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _request(
    url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    driver = chromium(tmp_path / "chromium-profile", "360,740")
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True},
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _overflow(driver: webdriver.Chrome) -> int:
    return int(driver.execute_script("return document.documentElement.scrollWidth")) - 360


def test_a_monitor_acknowledges_from_the_link_in_the_email_and_a_preview_does_nothing(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str, phone: webdriver.Chrome
) -> None:
    smtp, hook, web_port = SmtpServer(workdir), HttpReceiver(), free_port()
    gw_cfg = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        extra=_config(workdir, smtp, hook, web_port),
    )
    node_cfg = node_toml(
        workdir / "haul-road.toml",
        site="tsagaan",
        node="haul-road",
        port=mosquitto.port,
        prefix=prefix,
        sensors='[[sensors]]\ntype = "simulated-pm"\nsample_interval_s = 0.25\nbaseline = 10.0\nnoise = 0.5\n'
        "events = [{start_s = 3, duration_s = 3600, add = 200.0}]\n",
    )
    topic = f"{prefix}/v1/tsagaan/haul-road/alert"
    early = Listener(mosquitto.port, topic)
    procs: list[subprocess.Popen[bytes]] = []
    late: list[Listener] = []
    try:
        procs.append(gw := spawn(["gateway.cli", "run", "--config", str(gw_cfg)], workdir / "gateway.log"))
        procs.append(spawn(["node.cli", "run", "--config", str(node_cfg)], workdir / "node.log"))
        wait_for(lambda: early.payloads("/alert"), 90, "the raise on the alert topic")
        raised = early.payloads("/alert")[0]
        alert_id = raised["id"]
        wait_for(
            lambda: len(smtp.messages) >= 2 and hook.json_bodies("/hook"), 30, "an email to each, the webhook"
        )

        # 1. every message carries what a monitor needs to act, and each recipient its own link
        mails = {parseaddr(str(m["To"]))[1]: m for m in _mails(smtp)}
        assert set(mails) == {SARAA_ADDRESS, OYUNA}  # one message per address: each has its own link
        texts = {to: _text(m) for to, m in mails.items()}
        for text in texts.values():
            assert f"Alert id: {alert_id}" in text
            assert re.search(r"Value: \d+\.\d µg/m³; limit: 100\.0 µg/m³ \(site action level\)", text), text
            assert "Place: haul-road (tsagaan)" in text
            assert re.search(r"Since: \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
        links = {to: LINK.findall(text) for to, text in texts.items()}
        assert all(len(found) == 1 for found in links.values()), links
        saraa_link, oyuna_link = links[SARAA_ADDRESS][0], links[OYUNA][0]
        assert saraa_link != oyuna_link and saraa_link.startswith(f"http://127.0.0.1:{web_port}/ack/")
        body = hook.json_bodies("/hook")[0]
        assert body["id"] == alert_id and body["unit"] == "µg/m³" and body["standard"] == "site action level"
        assert LINK.fullmatch(body["ack_url"]) and body["ack_url"] not in (saraa_link, oyuna_link)
        assert raised["ack_topic"] == f"{topic}/ack" and "ack_url" not in raised  # the topic is not personal
        store = AlertStore(workdir / "gateway-data" / "alerts.sqlite")
        token = saraa_link.rsplit("/", 1)[1]
        assert token not in (workdir / "gateway-data" / "alerts.sqlite").read_bytes().decode("latin-1")

        # 2. a late subscriber gets the node's latest alert, retained
        late.append(Listener(mosquitto.port, topic))
        wait_for(lambda: late[0].messages, 10, "the retained alert")
        got_topic, payload, retained = late[0].messages[0]
        assert got_topic == topic
        assert retained and json.loads(payload)["id"] == alert_id and json.loads(payload)["state"] == "raised"

        # 3. a preview: GET and HEAD of Oyuna's link acknowledge nothing; nor does a POST from
        # elsewhere or without the page's CSRF value
        status, page = _request(oyuna_link)
        assert (
            status == 200 and 'id="ack-form"' in page and alert_id in page and "oyuna@tsagaan.example" in page
        )
        assert _request(oyuna_link, "HEAD")[0] == 200
        assert (
            _request(oyuna_link, "POST", b"csrf=x", {"Content-Type": "application/x-www-form-urlencoded"})[0]
            == 403
        )
        cross = {"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"}
        assert _request(oyuna_link, "POST", b"csrf=x", cross)[0] == 403
        assert _request(saraa_link.rsplit("/", 1)[0] + "/" + "A" * 32)[0] == 404  # a wrong token: a page
        assert _request(saraa_link.rsplit("/", 1)[0] + "/short")[0] == 404
        previewed = store.token(digest(oyuna_link.rsplit("/", 1)[1]))
        assert previewed is not None and previewed.used is None and previewed.recipient == OYUNA
        assert not store.open_acks() and store.machine_of(alert_id).acked_by is None  # type: ignore[union-attr]
        # (and below, the one acknowledgement there is names Saraa: a request the preview had made
        # would have been applied first, in Oyuna's name)

        # 4. Saraa opens her link on the phone, sees what she acknowledges, and confirms
        phone.get(saraa_link)
        assert alert_id in phone.find_element(By.ID, "ack-alert").text
        assert "S. Saraa" in phone.find_element(By.ID, "ack-as").text
        assert _overflow(phone) <= 0, "the confirmation page is wider than a 360 px phone"
        phone.save_screenshot(str(ARTIFACTS / "en-ack-confirm-phone.png"))
        phone.find_element(By.ID, "ack-confirm").click()
        result = WebDriverWait(phone, 20).until(lambda d: d.find_element(By.ID, "ack-result"))
        assert result.get_attribute("data-outcome") == "done", result.text
        assert "Acknowledged by S. Saraa" in result.text
        assert _overflow(phone) <= 0
        phone.save_screenshot(str(ARTIFACTS / "en-ack-done-phone.png"))

        wait_for(
            lambda: "acknowledged" in [p["state"] for p in early.payloads("/alert")], 20, "the ack event"
        )
        acked = [p for p in early.payloads("/alert") if p["state"] == "acknowledged"]
        assert len(acked) == 1 and acked[0]["acked_by"] == "S. Saraa" and acked[0]["id"] == alert_id
        wait_for(lambda: len(hook.json_bodies("/hook")) >= 2, 20, "the ack at the webhook")
        assert hook.json_bodies("/hook")[1]["acked_by"] == "S. Saraa"

        # 5. idempotent: the same link again, and the other recipient's, tell what happened
        phone.get(saraa_link)
        assert phone.find_element(By.ID, "ack-result").get_attribute("data-outcome") == "used"
        assert "S. Saraa" in phone.find_element(By.ID, "ack-result").text
        phone.refresh()
        status, page = _request(oyuna_link)
        assert status == 200 and "already acknowledged by S. Saraa" in page and 'id="ack-form"' not in page

        # 6. a subscriber coming now gets the acknowledgement, which replaced the raise
        late.append(Listener(mosquitto.port, topic))
        wait_for(lambda: late[1].messages, 10, "the retained acknowledgement")
        assert json.loads(late[1].messages[0][1])["state"] == "acknowledged" and late[1].messages[0][2]

        # 7. the dashboard's API and alert history name the alert and who acknowledged it
        base = f"http://127.0.0.1:{web_port}"

        def api_ack() -> list[dict[str, object]]:
            status, text = _request(base + "/api/v1/alerts")
            return [a for a in json.loads(text) if a["state"] == "acknowledged"] if status == 200 else []

        wait_for(api_ack, 20, "the acknowledgement in InfluxDB")
        assert api_ack()[0]["id"] == alert_id and api_ack()[0]["acked_by"] == "S. Saraa"
        phone.get(base + "/alerts")
        episode = phone.find_element(By.CSS_SELECTOR, f"li.episode[data-alert-id='{alert_id}']")
        assert episode.get_attribute("data-state") == "ongoing"
        assert "S. Saraa" in episode.find_element(By.CSS_SELECTOR, "dd.acked").text
        assert _overflow(phone) <= 0
        phone.save_screenshot(str(ARTIFACTS / "en-ack-alerts-episodes-phone.png"))
        store.close()
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            assert p.wait(20) == 0
        assert gw.returncode == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for listener in [early, *late]:
            listener.close()
        smtp.close()
        hook.close()
