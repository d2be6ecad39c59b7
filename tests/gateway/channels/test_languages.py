"""One alert, two readers: a monitor who reads Mongolian and a partner who reads English get it
from one email channel (`to = ["…", {address = "…", language = "en"}]`) over the real SMTP test
server, each in their language, in the site's time zone and with the node's friendly name."""

from __future__ import annotations

import email
import email.policy
import re
import threading
from email.message import Message
from pathlib import Path

from gateway.channels.dispatcher import Worker
from gateway.channels.email import Email, EmailOptions
from gateway.config import load
from tests.alert_helpers import T0
from tests.contract.test_i18n_mn import english_words
from tests.fakes.clock import FakeClock
from tests.gateway.alerts.test_messages import _engine_events
from tests.gateway.channels.test_channels import Outbox
from tests.receivers import SmtpServer


def _config(tmp_path: Path, smtp: SmtpServer) -> Path:
    password = tmp_path / "smtp-password"
    password.write_text(SmtpServer.PASSWORD)
    password.chmod(0o600)
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[site]
timezone = "Asia/Ulaanbaatar"
[[site.names]]
site = "tsagaan"
name = {{ en = "Tsagaan bag", mn = "Цагаан баг" }}
[[site.names]]
site = "tsagaan"
node = "haul-road"
name = {{ en = "haul road", mn = "тээврийн зам" }}

[[alerts.channels]]
type = "email"
language = "mn"
host = "127.0.0.1"
port = {smtp.port}
ca_file = "{smtp.ca_file}"
username = "{SmtpServer.USER}"
password_file = "{password}"
from = "gateway@tsagaan.example"
to = ["monitor@tsagaan.example", {{ address = "partner@ngo.example", language = "en" }}]
"""
    )
    return path


def _body(msg: Message) -> str:
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_one_alert_goes_out_in_mongolian_and_in_english_to_two_recipients(tmp_path: Path) -> None:
    smtp = SmtpServer(tmp_path)
    try:
        cfg = load(_config(tmp_path, smtp))
        opts = cfg.alerts.channels[0]
        assert isinstance(opts, EmailOptions)
        raised = next(e for e in _engine_events() if e.state == "raised" and e.rule == "inst")
        w = Worker(
            opts,
            Email(opts),
            outbox := Outbox(),
            FakeClock(T0),
            threading.Event(),
            site_texts=cfg.site.texts(),
        )
        w.process((1, raised.to_json()))
        assert outbox.done == [1] and w.stats.sent == 1
        got = {
            tuple(m.rcpt_tos): email.message_from_bytes(m.content, policy=email.policy.default)
            for m in smtp.messages
        }  # type: ignore[arg-type]
        assert set(got) == {("monitor@tsagaan.example",), ("partner@ngo.example",)}
        mn, en = got[("monitor@tsagaan.example",)], got[("partner@ngo.example",)]
        local = f"{raised.started.astimezone(cfg.site.texts().zone):%H:%M} UTC+08"
        # the monitor's: Mongolian words, the node's Mongolian name, the time in Ulaanbaatar
        mn_text = _body(mn)
        assert "тээврийн зам" in mn_text and local in mn_text and "90.0 µg/m³" in mn_text
        # what a monitor types stays as typed: the alert id, the CLI command, the MQTT topic and payload
        prose = re.sub(
            r"minewatch-gateway ack|--by|minewatch/v1/\S+|\{[^}]*\}", " ", mn_text.replace(raised.id, " ")
        )
        assert [w for w in english_words(prose + str(mn["Subject"])) if w not in ("inst",)] == []
        assert "тээврийн зам" in str(mn["Subject"])
        # the partner's: the same alert in English, the same local time and the English name
        en_text = _body(en)
        assert "haul road (Tsagaan bag)" in en_text and local in en_text and "90.0 µg/m³" in en_text
        assert str(en["Subject"]) == "[minewatch] WARNING raised: inst at haul road"
        # the stored record and the machine's JSON are unchanged: English, ids, UTC
        assert raised.to_json()["message"].count("haul-road (tsagaan)") == 1
    finally:
        smtp.close()


def test_a_recipients_unknown_language_is_refused_naming_the_key(tmp_path: Path) -> None:
    import pytest

    from contract.configfile import ConfigError

    smtp = SmtpServer(tmp_path)
    try:
        path = _config(tmp_path, smtp)
        path.write_text(path.read_text().replace('language = "en"', 'language = "fr"'))
        with pytest.raises(ConfigError) as err:
            load(path)
        assert "to" in str(err.value) and "fr.toml" in str(err.value)
    finally:
        smtp.close()
