"""Every alert message, in each language, in the site's time zone with the zone shown and with the
friendly names of its site and nodes (gateway.toml `[site]`): raised, reminders, acknowledgements,
all-clears and digests. The stored English `message` keeps ids and UTC."""

from __future__ import annotations

import re

import pytest

from gateway.alerts import messages
from gateway.config import SiteConfig
from tests.gateway.alerts.test_messages import _every_event

PLACES = SiteConfig.model_validate(
    {
        "timezone": "Asia/Ulaanbaatar",
        "names": [
            {"site": "tsagaan", "name": {"en": "Tsagaan bag", "mn": "Цагаан баг"}},
            {"site": "tsagaan", "node": "haul-road", "name": {"en": "haul road", "mn": "тээврийн зам"}},
            {"site": "tsagaan", "node": "up", "name": {"en": "river, upstream", "mn": "голын дээд хэсэг"}},
        ],
    }
)
NAMES = {"en": ("haul road (Tsagaan bag)", "river, upstream"), "mn": ("тээврийн зам", "голын дээд хэсэг")}
UTC_TIME = re.compile(r"\d\d:\d\d UTC(?![+-])")


@pytest.mark.parametrize("language", ["en", "mn"])
def test_every_message_is_in_local_time_with_the_zone_and_names(language: str) -> None:
    t = PLACES.texts(language)
    where, upstream = NAMES[language]
    states: set[str] = set()
    for rule, e in _every_event():
        assert e.msg_id is not None
        text = messages.render(e.msg_id, e.msg_params, t)
        states.add(e.state)
        assert where in text, text
        assert "haul-road" not in text and UTC_TIME.search(text) is None, text
        if "{since}" in t(e.msg_id) or e.state != "raised":
            assert "14:00 UTC+08" in text, text  # started 06:00 UTC
        if rule.type == "difference":
            assert upstream in text, text
        assert "haul-road" not in messages.subject({**e.to_json(), "site": "tsagaan"}, t)
        # the record keeps ids and UTC: its English rendering is made without the site's words
        assert "haul road" not in messages.render(e.msg_id, e.msg_params, messages.EN)
    assert states == {"raised", "reminder", "cleared", "acknowledged"}


@pytest.mark.parametrize("language", ["en", "mn"])
def test_a_digest_lists_its_events_in_local_time(language: str) -> None:
    t = PLACES.texts(language)
    docs = [e.to_json() for _, e in list(_every_event())[:3]]
    subject, text = messages.digest(docs, "quiet hours", t)
    lines = [x for x in text.splitlines()[1:] if x.startswith("- ")]  # each event's line, then its details
    assert len(lines) == 3
    assert all("2026-11-22 15:00 UTC+08" in line for line in lines), lines  # `ts` 07:00 UTC
    assert UTC_TIME.search(text) is None and "3" in subject
