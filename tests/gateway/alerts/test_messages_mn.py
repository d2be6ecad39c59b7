"""Alerts the engine raises, reminds and clears, rendered in Mongolian from their stored message id
and parameters: the words are Mongolian, the numbers and ids the record's own."""

from __future__ import annotations

from contract.i18n import Texts
from gateway.alerts.messages import render, subject
from tests.contract.test_i18n_mn import english_words
from tests.gateway.alerts.test_messages import _engine_events

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
        assert e.node in text.lower()  # the renderer capitalises the first letter, an id too
        if e.value is not None and e.state == "raised":
            assert f"{e.value:.1f}" in text
        title = subject(e.to_json(), mn)
        assert _foreign(title, *e.rule.split("-")) == [], title
