"""Alerts the engine raises, reminds and clears, rendered in Mongolian from their stored message id
and parameters: the words are Mongolian (the standards' names too), the numbers and ids the
record's own, the times local with their zone."""

from __future__ import annotations

import re

from contract.i18n import Texts
from gateway.alerts import messages
from gateway.alerts.messages import EN, render, subject
from tests.contract.test_i18n_mn import english_words
from tests.gateway.alerts.test_messages import _engine_events, _every_event
from tests.gateway.alerts.test_messages_local import PLACES, UTC_TIME

NAMES = {"tsagaan", "haul", "road", "river", "up", "down", "MNS", "WHO"}


def _foreign(text: str, *also: str) -> list[str]:
    return [w for w in english_words(text) if w.lower() not in NAMES and w not in also]


"""Site and node ids, and standards' names: data, not words."""


def test_every_event_reads_in_mongolian_with_its_numbers() -> None:
    mn = Texts("mn")
    events = _engine_events()
    assert {e.state for e in events} >= {"raised", "reminder", "cleared"}
    for e in events:
        assert e.msg_id is not None
        text = render(e.msg_id, e.msg_params, mn)
        assert text != e.message
        assert _foreign(text) == [], text
        assert e.node in text  # an id is written as it is, never capitalised
        if e.value is not None and e.state == "raised":
            assert f"{e.value:.1f}" in text
        title = subject(e.to_json(), mn)
        assert _foreign(title) == [] and e.rule not in title, title  # the rule by its Mongolian name


def _prose(text: str, doc: dict[str, object]) -> str:
    """A message less what a monitor types or reads as data: the alert id, the rule's name, the
    CLI command, a rule's own `standard` ("Site plan"), who acknowledged (a name, capitalised at
    the start of a sentence)."""
    for data in (str(doc["id"]), str(doc["rule"]), "minewatch-gateway ack", "--by", "Site plan"):
        text = text.replace(data, " ")
    return re.sub(re.escape(str(doc.get("acked_by"))), " ", text, flags=re.IGNORECASE)


ENGLISH_STANDARDS = [
    EN(f"{section}.{key}")
    for key in messages.KNOWN_STANDARDS
    for section in ("alert.standard", "standard_name")
    if EN(f"{section}.{key}") != "MNS 4585:2016"  # written so in every language
]


def test_every_event_of_every_kind_in_mongolian_has_no_english_and_local_time() -> None:
    """Every kind the engine emits (every preset's rules, the planned stop) in every state, one by
    one and in a digest, in Mongolian in Ulaanbaatar's time: no English word, the standard by its
    Mongolian name, times with their zone."""
    t = PLACES.texts("mn")
    ids: set[str] = set()
    known: set[str] = set()
    docs = []
    for rule, e in _every_event():
        assert e.msg_id is not None
        ids.add(e.msg_id)
        doc = {**e.to_json(), "message": messages.render(e.msg_id, e.msg_params, EN)}
        docs.append(doc)
        for text in (messages.full_text(doc, t), messages.subject(doc, t)):
            assert _foreign(_prose(text, doc)) == [], text
            assert [name for name in ENGLISH_STANDARDS if name in text] == [], text
            assert UTC_TIME.search(text) is None, text
        text = messages.full_text(doc, t)
        assert "14:00 UTC+08" in text, text  # started 06:00 UTC, in Ulaanbaatar's time with its zone
        key = messages.standard_key(rule.standard or "")
        if key is not None:  # a preset's: the standard's Mongolian name in the details
            assert t(f"standard_name.{key}") in text, text
            known.add(key)
    assert known == set(messages.KNOWN_STANDARDS)
    assert {"alert.stop.stopped", "alert.stop.back", "alert.nowcast.raised", "alert.threshold.above"} <= ids
    assert {d["state"] for d in docs} == {"raised", "reminder", "cleared", "acknowledged"}
    stored = {"US EPA NAAQS", "WHO 2021 guideline", "MNS 4585:2016", "US EPA AQI"}
    assert {d["standard"] for d in docs} >= stored  # the presets' English, as events store it
    title, text = messages.digest(docs, "quiet hours", t)
    assert _foreign(title) == [] and "2026-11-22 15:00 UTC+08" in text  # each event's `ts`, 07:00 UTC
    for doc in docs:
        text = _prose(text, {**doc, "acked_by": "oyuna"})
    assert _foreign(text) == [], text
    assert [name for name in ENGLISH_STANDARDS if name in text] == []
