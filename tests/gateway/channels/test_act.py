"""Every message, on every channel, carries what a monitor needs to act on it: the alert id, the
value with its unit, the limit and its source, the place, since when, and one way to acknowledge it
(an acknowledgement link per recipient when the gateway has a public address; else the CLI and
the MQTT topic). Real Apprise to a real HTTP receiver, tokens in a real alert store."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contract.i18n import Texts
from gateway.alerts.links import AckLinks, digest
from gateway.alerts.messages import details, full_text
from gateway.alerts.store import AlertStore
from gateway.channels.apprise_channel import Apprise, AppriseOptions
from gateway.channels.dispatcher import Worker, single
from tests.contract.test_i18n_mn import english_words
from tests.fakes.clock import FakeClock
from tests.gateway.alerts.test_messages import _engine_events
from tests.receivers import HttpReceiver

LINK = re.compile(r"https://air\.tsagaan\.example/ack/([A-Za-z0-9_-]{32})")
TOPIC = "minewatch/v1/tsagaan/haul-road/alert/ack"


def _doc(state: str = "raised", **more: Any) -> dict[str, Any]:
    return {
        "schema": 1,
        "id": "tsagaan.haul-road.pm25-instant.20261122T101500Z",
        "state": state,
        "site": "tsagaan",
        "node": "haul-road",
        "rule": "pm25-instant",
        "type": "threshold",
        "metric": "pm2_5",
        "severity": "warning",
        "ts": "2026-11-22T10:15:00.000Z",
        "started": "2026-11-22T10:15:00.000Z",
        "ended": None,
        "value": 90.0,
        "limit": 50.0,
        "average": "instant",
        "peak": 112.4,
        "late": False,
        "acked_by": None,
        "message": "PM2.5 90.0 µg/m³ at haul-road (tsagaan) exceeds the limit of 50.0 µg/m³",
        "unit": "µg/m³",
        "standard": None,
        "ack_topic": TOPIC,
        **more,
    }


def test_without_links_a_message_says_how_to_acknowledge_with_the_cli_and_mqtt() -> None:
    text = single(_doc()).text
    assert "Alert id: tsagaan.haul-road.pm25-instant.20261122T101500Z" in text
    assert "Value: 90.0 µg/m³; limit: 50.0 µg/m³ (rule pm25-instant)" in text  # no standard: the rule
    assert "Place: haul-road (tsagaan)" in text and "Since: 2026-11-22 10:15 UTC" in text
    assert "minewatch-gateway ack tsagaan.haul-road.pm25-instant.20261122T101500Z --by YOUR-NAME" in text
    assert (
        '{"id": "tsagaan.haul-road.pm25-instant.20261122T101500Z", "by": "YOUR-NAME"}'
        f" to the MQTT topic {TOPIC}" in text
    )


def test_an_offline_alert_counts_minutes_and_an_ended_one_offers_no_ack() -> None:
    offline = _doc(metric="status", unit="min", value=47.0, limit=30.0, rule="offline-30m")
    assert "Value: 47 min; limit: 30 min (rule offline-30m)" in details(offline, Texts("en"))
    cleared = details(_doc("cleared", ended="2026-11-22T11:00:00.000Z"), Texts("en"))
    assert "Ended: 2026-11-22 11:00 UTC" in cleared and not any("acknowledge" in x for x in cleared)
    acked = details(_doc("reminder", acked_by="S. Saraa"), Texts("en"))
    assert acked[-1] == "Acknowledged by S. Saraa"


def test_every_engine_event_in_mongolian_carries_the_details_in_mongolian() -> None:
    mn = Texts("mn")
    for e in _engine_events():
        doc = {**e.to_json(), "ack_topic": f"minewatch/v1/{e.site}/{e.node}/alert/ack"}
        text = full_text(doc, mn, "https://air.tsagaan.example/ack/" + "A" * 32)
        assert (
            mn("alert.detail.id", id=e.id) in text
            and mn("alert.detail.place", where=f"{e.node} ({e.site})") in text
        )
        words = english_words(text.replace(e.id, " ").replace("https://air.tsagaan.example/ack/", " "))
        data = {"haul", "road", "river", "up", "down", "tsagaan", "MNS", "WHO", "A", *e.rule.split("-")}
        assert [w for w in words if w not in data and not w.startswith("A" * 8)] == [], text


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


def test_apprise_gets_its_own_links_in_a_digest_each_recorded_with_its_recipient(
    receiver: HttpReceiver, tmp_path: Path
) -> None:
    store = AlertStore(tmp_path / "alerts.sqlite")
    clock = FakeClock(datetime(2026, 11, 22, 6, tzinfo=UTC))
    links = AckLinks(store, "https://air.tsagaan.example/", 3 * 86400, clock)
    opts = AppriseOptions(
        type="apprise",
        urls=[f"json://127.0.0.1:{receiver.port}/notify"],
        recipient="night watch",
        rate_limit=1,
    )
    w = Worker(opts, Apprise(opts), store, clock, threading.Event(), sleep=lambda s: None, links=links)
    first, second = _doc(), _doc(id="tsagaan.haul-road.pm10-instant.20261122T101600Z", rule="pm10-instant")
    cleared = _doc("cleared", id="tsagaan.haul-road.old.20261122T090000Z", rule="old")
    for n, doc in enumerate((first, second, cleared), 1):
        w.process((n, doc))
    clock.now += timedelta(hours=1, minutes=1)
    w.flush_due()
    messages = [b["message"] for b in receiver.json_bodies()]
    assert len(messages) == 2  # the first alone, then the other two as one digest
    assert len(LINK.findall(messages[0])) == 1
    assert len(LINK.findall(messages[1])) == 1  # the cleared one has nothing left to acknowledge
    assert "tsagaan.haul-road.pm10-instant.20261122T101600Z" in messages[1]
    for message, alert in zip(messages, (first, second), strict=True):
        token = LINK.findall(message)[0]
        found = store.token(digest(token))
        assert found is not None and found.alert_id == alert["id"] and found.recipient == "night watch"
        assert found.expires - found.created == 3 * 86400 and found.used is None
    assert token not in (tmp_path / "alerts.sqlite").read_bytes().decode("latin-1")  # kept hashed
    store.close()
