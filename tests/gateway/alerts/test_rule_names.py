"""What a person reads of a rule and of who acknowledged it (issue 18): a subject names the rule by
what it watches, or by the rule's own `title`, in the reader's language, never by its id; a name,
an id or an address is written as it was typed, never capitalised; a planned stop is worded as a
notice, without the reminders it does not have."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contract.i18n import Texts
from gateway.alerts import messages
from gateway.alerts.config import AlertsConfig
from gateway.alerts.engine import Engine
from gateway.alerts.events import AlertEvent
from gateway.alerts.messages import EN, render, subject
from tests.alert_helpers import T0, Feed, rules
from tests.contract.test_i18n_mn import english_words
from tests.fakes.clock import FakeClock
from tests.gateway.alerts.test_messages import _every_event

MN = Texts("mn")
DATA = {"haul", "road", "up", "down", "MNS", "Site", "plan", "tsagaan"}
"""Ids (the node, the site) and a rule's own `standard` text ("Site plan"): data, not words."""


def _foreign(text: str) -> list[str]:
    return [w for w in english_words(text) if w not in DATA]


def _acknowledged(by: str) -> list[AlertEvent]:
    """The acknowledged event of every kind, acknowledged by `by`."""
    out = []
    for _, e in _every_event():
        if e.state == "acknowledged" and not e.late:
            params = {**e.msg_params, "acked_by": by}
            out.append(e.with_state("acknowledged", acked_by=by, msg_params=params))
    return out


@pytest.mark.parametrize("by", ["partner@ngo.example", "oyuna", "oYuna b."])
def test_an_acknowledgement_keeps_the_name_as_it_was_typed_in_both_languages(by: str) -> None:
    events = _acknowledged(by)
    assert len({e.msg_id for e in events}) >= 6  # every kind: threshold, NowCast, offline, stop ...
    for e in events:
        assert render(e.msg_id, e.msg_params, MN).startswith(f"{by} хүлээн авсан: "), e.msg_id
        assert render(e.msg_id, e.msg_params, EN).startswith(f"Acknowledged by {by}: "), e.msg_id
        for t in (EN, MN):
            assert messages.details(e.to_json(), t)[-1] == t("alert.detail.acked", by=by)


def test_only_a_word_of_the_language_file_is_capitalised() -> None:
    events = {(e.msg_id, e.state): e for r, e in _every_event() if not e.late and r.name != "pm10-fault"}
    offline = events[("alert.offline.raised", "raised")]
    assert render(offline.msg_id, offline.msg_params, EN).startswith("haul-road (tsagaan) is offline")
    assert render(offline.msg_id, offline.msg_params, MN).startswith("haul-road (tsagaan) холбоо тасарсан")
    fault = events[("alert.sensor_fault.raised", "raised")]
    assert render(fault.msg_id, fault.msg_params, EN).startswith("A sensor at haul-road")  # a word
    late = next(e for _, e in _every_event() if e.late and e.msg_id == "alert.offline.raised")
    assert render(late.msg_id, late.msg_params, EN).startswith("Late (from replayed data): haul-road")


def test_a_subject_names_the_rule_by_what_it_watches_not_by_its_id() -> None:
    seen = 0
    for rule, e in _every_event():
        doc = e.to_json()
        for t in (EN, MN):
            title = subject(doc, t)
            assert rule.name not in title, title
            assert messages.rule_name(doc, t) in title
        assert _foreign(subject(doc, MN)) == [], subject(doc, MN)
        seen += 1
    assert seen > 100
    by_rule = {(r.name, e.state): e.to_json() for r, e in _every_event() if not e.late}
    doc = by_rule[("us-epa-pm25-24h", "raised")]
    assert subject(doc, EN) == "WARNING raised: PM2.5 24-hour mean, US EPA at haul-road"
    assert subject(doc, MN) == "АНХААРУУЛГА эхэлсэн: haul-road дээр PM2.5 24 цагийн дундаж, АНУ-ын EPA"
    assert messages.rule_name(by_rule[("mns-4585-2016-pm10-24h", "raised")], MN) == (
        "PM10 24 цагийн дундаж, MNS 4585:2016"
    )
    assert (
        messages.rule_name(by_rule[("who-2021-pm25-24h", "raised")], MN)
        == "PM2.5 24 цагийн дундаж, ДЭМБ 2021"
    )
    nowcast = by_rule[("us-epa-nowcast-very-unhealthy", "raised")]
    assert messages.rule_name(nowcast, EN) == "PM2.5 NowCast: Very Unhealthy or worse"
    assert messages.rule_name(by_rule[("river", "raised")], EN) == "Turbidity 15-minute mean over up"
    offline = next(e.to_json() for _, e in _every_event() if e.msg_id == "alert.offline.raised")
    assert messages.rule_name(offline, MN) == "холбоо тасарсан"
    assert messages.rule_name(by_rule[("faulty", "raised")], EN) == "sensor fault"
    assert messages.rule_name(by_rule[("pm10-fault", "raised")], MN) == "PM10 мэдрэгчийн гэмтэл"
    # the id stays where machines read it
    assert doc["rule"] == "us-epa-pm25-24h" and doc["id"].startswith("tsagaan.haul-road.")


def test_an_event_stored_before_message_ids_is_named_by_its_rule_id() -> None:
    doc = {"rule": "pm25-1h", "state": "raised", "severity": "warning", "node": "haul-road"}
    assert subject(doc, MN) == "АНХААРУУЛГА эхэлсэн: haul-road дээр pm25-1h"


SCHOOL = {
    "name": "school-dust",
    "type": "threshold",
    "metric": "pm2_5",
    "limit": 50,
    "clear_after": "3m",
    "title": {"en": "Dust at the school", "mn": "Сургуулийн тоос"},
}


def _school_events(table: dict[str, object]) -> list[AlertEvent]:
    clock = FakeClock(T0)
    feed = Feed(Engine(rules(table), clock=clock), clock)
    feed.series("haul-road", T0, [20.0] * 2 + [90.0] * 3 + [10.0] * 5)
    assert feed.states() == ["raised", "cleared"]
    return feed.events


def test_a_rules_own_title_names_it_in_the_readers_language() -> None:
    events = _school_events(SCHOOL)
    raised = events[0].to_json()
    assert raised["msg_params"]["title"] == SCHOOL["title"]  # kept with the event: read in ten years
    assert subject(raised, EN) == "WARNING raised: Dust at the school at haul-road"
    assert subject(raised, MN) == "АНХААРУУЛГА эхэлсэн: haul-road дээр Сургуулийн тоос"
    assert raised["rule"] == "school-dust"
    # titled in English only: a Mongolian reader gets the name from what it watches, not English
    english_only = _school_events({**SCHOOL, "title": {"en": "Dust at the school"}})[0].to_json()
    assert subject(english_only, MN) == "АНХААРУУЛГА эхэлсэн: haul-road дээр PM2.5"
    assert _foreign(subject(english_only, MN)) == []


@pytest.mark.parametrize(
    ("title", "error"),
    [({"xx": "Dust"}, r"no translation xx\.toml"), ({"en": "  "}, r"title\.en is empty")],
)
def test_a_title_in_an_unknown_language_or_empty_is_refused(title: dict[str, str], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        AlertsConfig.model_validate({"rules": [{**SCHOOL, "title": title}]})


def _planned_stop() -> list[AlertEvent]:
    """A node that says it stopped, then reads again: the real engine's notice and its return."""
    clock = FakeClock(T0)
    engine = Engine(rules({"name": "quiet", "type": "offline", "after": "2m"}), clock=clock)
    events = engine.on_status("tsagaan", "haul-road", "online")
    events += engine.on_status("tsagaan", "haul-road", "stopped")
    clock.advance(3600)
    events += engine.tick()
    events += engine.on_status("tsagaan", "haul-road", "online")
    clock.advance(1)
    feed = Feed(engine, clock)
    feed.series("haul-road", clock.now, [10.0])
    return [*events, *feed.events]


def test_a_planned_stop_is_worded_as_a_notice_without_reminders_in_both_languages() -> None:
    events = _planned_stop()
    assert [(e.state, e.msg_id, e.severity) for e in events] == [
        ("raised", "alert.stop.stopped", "info"),
        ("cleared", "alert.stop.back", "info"),
    ]
    stop, back = (e.to_json() for e in events)
    assert subject(stop, EN) == "INFO notice: planned stop at haul-road"
    assert subject(back, EN) == "INFO ended: planned stop at haul-road"
    assert subject(stop, MN) == "МЭДЭЭЛЭЛ мэдэгдэл: haul-road дээр төлөвлөсөн зогсолт"
    assert subject(back, MN) == "МЭДЭЭЛЭЛ дууссан: haul-road дээр төлөвлөсөн зогсолт"
    for t, raised_word, reminders in ((EN, "raised", "reminders"), (MN, "эхэлсэн", "сануулга")):
        text = messages.full_text(stop, t, ack_url="https://gw.example/ack/t0ken")
        assert reminders not in text.lower() and raised_word not in subject(stop, t), text
        assert t("alert.detail.ack_link_notice", url="https://gw.example/ack/t0ken") in text
        assert not messages.text_of(back, t).startswith(t("alert.cleared", text=""))  # says it itself
    # an alarm still says that acknowledging stops its reminders
    offline = next(e.to_json() for _, e in _every_event() if e.msg_id == "alert.offline.raised")
    assert "(reminders stop)" in messages.full_text(offline, EN, ack_url="https://gw.example/ack/x")
