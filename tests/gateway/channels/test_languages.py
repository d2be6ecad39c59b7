"""One alert, two readers: a monitor who reads Mongolian and a partner who reads English get it
from one email channel (`to = ["…", {address = "…", language = "en"}]`) over the real SMTP test
server, each in their language, in the site's time zone and with the node's friendly name; and
the alert topic (real Mosquitto) and a webhook (a real HTTP receiver) carry the words in their
channel's language beside the stored English."""

from __future__ import annotations

import email
import email.policy
import re
import threading
from email.message import Message
from pathlib import Path

from gateway.channels.base import ChannelContext, open_channel
from gateway.channels.dispatcher import Worker
from gateway.channels.email import Email, EmailOptions
from gateway.channels.mqtt import MqttOptions
from gateway.channels.webhook import WebhookOptions
from gateway.config import load
from gateway.devservices import Service
from gateway.subscriber import Subscriber
from tests.alert_helpers import T0
from tests.contract.test_i18n_mn import english_words
from tests.fakes.clock import FakeClock
from tests.gateway.alerts.test_messages import _engine_events
from tests.gateway.channels.test_channels import Outbox
from tests.helpers import Listener, wait_for
from tests.receivers import HttpReceiver, SmtpServer


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
        assert english_words(prose + str(mn["Subject"])) == [] and "inst" not in str(mn["Subject"])
        assert "тээврийн зам" in str(mn["Subject"])
        # the partner's: the same alert in English, the same local time and the English name
        en_text = _body(en)
        assert "haul road (Tsagaan bag)" in en_text and local in en_text and "90.0 µg/m³" in en_text
        assert str(en["Subject"]) == "[minewatch] WARNING raised: PM2.5 at haul road"
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


def test_the_alert_topic_and_a_webhook_carry_the_message_in_their_channels_language(
    tmp_path: Path, mosquitto: Service, prefix: str
) -> None:
    """One alert to four channels over a real Mosquitto and a real HTTP receiver: the alert topic
    and a webhook configured `language = "mn"` carry its subject and text in Mongolian, the same
    two configured `en` in English; every field a receiver had before is there unchanged."""
    path = tmp_path / "gateway.toml"
    path.write_text(
        """
[site]
timezone = "Asia/Ulaanbaatar"
[[site.names]]
site = "tsagaan"
name = { en = "Tsagaan bag", mn = "Цагаан баг" }
[[site.names]]
site = "tsagaan"
node = "haul-road"
name = { en = "haul road", mn = "тээврийн зам" }
"""
    )
    site_texts = load(path).site.texts()
    raised = next(e for e in _engine_events() if e.state == "raised" and e.rule == "inst")
    event = {**raised.to_json(), "ack_topic": f"{prefix}/v1/tsagaan/haul-road/alert/ack"}
    hook = HttpReceiver()
    sub = Subscriber("127.0.0.1", mosquitto.port, f"test-lang-{prefix}")
    sub.start([f"{prefix}/v1/+/+/alert/ack"])  # as the gateway's connection, which takes acks
    listener = Listener(mosquitto.port, "+/v1/+/+/alert")
    try:
        assert sub.connected.wait(10)
        for language in ("mn", "en"):
            topic_prefix = f"{prefix}{language}"  # the two topics' own prefixes, as two gateways'
            ctx = ChannelContext(
                publish=sub.publish,
                prefix=topic_prefix,
                publish_retained=lambda t, p: sub.publish(t, p, retain=True, wait_s=5),
            )
            for opts in (
                MqttOptions(type="mqtt", language=language),
                WebhookOptions(type="webhook", url=f"{hook.url}/{language}", language=language),  # type: ignore[arg-type]
            ):
                w = Worker(
                    opts, open_channel(opts, ctx), outbox := Outbox(), FakeClock(T0), threading.Event(),
                    site_texts=site_texts,
                )  # fmt: skip
                w.process((1, event))
                assert outbox.done == [1], w.stats
        on_topic = {
            lang: wait_for(
                lambda lang=lang: listener.payloads(f"{prefix}{lang}/v1/tsagaan/haul-road/alert"), 10
            )
            for lang in ("mn", "en")
        }
        local = f"{raised.started.astimezone(site_texts.zone):%Y-%m-%d %H:%M} UTC+08"
        for lang in ("mn", "en"):
            (topic_doc,), (hook_doc,) = on_topic[lang], hook.json_bodies(f"/{lang}")
            for doc in (topic_doc, hook_doc):
                # additive: every field the old body had, unchanged, `message` the stored English
                assert {k: doc[k] for k in event} == event
                assert doc["message"] == raised.message and "haul-road (tsagaan)" in doc["message"]
                assert doc["language"] == lang and local in doc["text"] and "90.0 µg/m³" in doc["text"]
                assert raised.id in doc["text"] and event["ack_topic"] in doc["text"]
            assert topic_doc["text"] == hook_doc["text"] and topic_doc["subject"] == hook_doc["subject"]
        mn, en = on_topic["mn"][0], on_topic["en"][0]
        assert "тээврийн зам" in mn["subject"] and "тээврийн зам (Цагаан баг)" in mn["text"]
        typed = rf"{re.escape(raised.id)}|minewatch-gateway ack|--by|{prefix}\S+|\{{[^}}]*\}}"
        assert english_words(re.sub(typed, " ", mn["text"] + mn["subject"])) == []
        assert en["subject"] == "WARNING raised: PM2.5 at haul road"  # the rule by name
        assert en["text"].startswith("PM2.5 90.0 µg/m³ at haul road (Tsagaan bag) exceeds the limit of")
    finally:
        listener.close()
        for lang in ("mn", "en"):  # the broker keeps nothing of this test
            sub.publish(f"{prefix}{lang}/v1/tsagaan/haul-road/alert", b"", retain=True, wait_s=5)
        sub.stop()
        hook.close()


def test_a_channel_that_names_no_language_speaks_the_gateways(tmp_path: Path) -> None:
    """`[web] language = "mn"`: the alert topic (and any channel without `language`) is Mongolian;
    one that names its language keeps it; a gateway without [web] speaks English as before."""
    path = tmp_path / "gateway.toml"
    channels = (
        '[[alerts.channels]]\ntype = "mqtt"\nname = "residents"\n'
        '[[alerts.channels]]\ntype = "webhook"\nname = "partner"\nurl = "http://127.0.0.1:9/hook"\n'
        'language = "en"\n'
    )
    path.write_text('[web]\nlanguage = "mn"\n' + channels)
    spoken = {c.label: c.language for c in load(path).alerts.channels}
    assert spoken == {"residents": "mn", "partner": "en"}
    path.write_text(channels)
    assert {c.label: c.language for c in load(path).alerts.channels} == {"residents": "en", "partner": "en"}


def test_a_channel_that_names_no_timezone_keeps_quiet_hours_on_the_sites_clock(tmp_path: Path) -> None:
    """`[site] timezone = "Asia/Ulaanbaatar"` and quiet hours 22:00-07:00: night in Ulaanbaatar
    (14:00-23:00 UTC), not in Greenwich; a channel's own `timezone` still wins."""
    from datetime import UTC, datetime

    from gateway.channels.dispatcher import in_quiet_hours

    path = tmp_path / "gateway.toml"
    channels = (
        '[[alerts.channels]]\ntype = "mqtt"\nname = "residents"\nquiet_hours = "22:00-07:00"\n'
        '[[alerts.channels]]\ntype = "mqtt"\nname = "abroad"\nquiet_hours = "22:00-07:00"\n'
        'timezone = "Europe/Berlin"\n'
    )
    path.write_text('[site]\ntimezone = "Asia/Ulaanbaatar"\n' + channels)
    by = {c.label: c for c in load(path).alerts.channels}
    assert by["residents"].timezone == "Asia/Ulaanbaatar" and by["abroad"].timezone == "Europe/Berlin"
    night_here = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 23:00 in Ulaanbaatar, 16:00 in Berlin
    assert in_quiet_hours(by["residents"], night_here) and not in_quiet_hours(by["abroad"], night_here)
    morning_here = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)  # 08:30 in Ulaanbaatar, 01:30 in Berlin
    assert not in_quiet_hours(by["residents"], morning_here) and in_quiet_hours(by["abroad"], morning_here)
    path.write_text(channels)  # no [site] zone: UTC, as before
    assert load(path).alerts.channels[0].timezone == "UTC"
