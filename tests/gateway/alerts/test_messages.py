"""Alert words are data: every message id the engine emits is in en.toml with the placeholders the
renderer fills, and the stored id and parameters render the stored English sentence again, from the
event itself, from its JSON and from its point read back out of a real influxd."""

from __future__ import annotations

import dataclasses
import itertools
import json
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from contract.i18n import Texts
from gateway.alerts.config import AlertsConfig, AnyRule
from gateway.alerts.engine import Engine
from gateway.alerts.events import AlertEvent
from gateway.alerts.messages import EN, params_of, render, subject, text_of
from gateway.channels.base import ChannelOptions
from gateway.channels.dispatcher import digest
from gateway.config import InfluxConfig
from gateway.stores.backends import open_reader
from gateway.stores.reader import AlertEvent as StoredAlert
from gateway.web.app import alert_text
from tests.alert_helpers import T0, Feed, rules
from tests.fakes.clock import FakeClock
from tests.helpers import Influx

WRAPPERS = ("alert.reminder", "alert.reminder_no_peak", "alert.cleared", "alert.acknowledged", "alert.late")
EVERY_KIND = [
    {"name": "above", "type": "threshold", "metric": "pm2_5", "limit": 50, "average": "24h"},
    {"name": "below", "type": "threshold", "metric": "turbidity", "limit": 5, "direction": "below"},
    {"name": "counts", "type": "threshold", "metric": "pc0_3", "limit": 5, "standard": "Site plan"},
    {
        "name": "river",
        "type": "difference",
        "metric": "turbidity",
        "node": "down",
        "reference": "up",
        "limit": 5,
    },
    {"name": "quiet", "type": "offline"},
    {"name": "faulty", "type": "sensor_fault"},
    {"name": "pm10-fault", "type": "sensor_fault", "metric": "pm10"},
    {"name": "aqi", "type": "nowcast", "category": "very-unhealthy"},
]


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


PRESETS = ["us-epa", "who-2021", "mns-4585-2016"]


def _every_event() -> Iterator[tuple[AnyRule, AlertEvent]]:
    """Each kind's events in every state, late or not, with and without values, of every preset's
    rules and of an offline rule's planned stop too: every id it emits, with the event's fields as
    the engine fills them (`Engine._event`: the stop's reason, the unit, the rule's standard)."""
    cfg = AlertsConfig.model_validate({"presets": PRESETS, "rules": EVERY_KIND})
    for rule in cfg.all_rules():
        metric, average = rule.labels()
        states = ("raised", "reminder", "cleared", "acknowledged")
        reasons = (None, "stopped") if rule.type == "offline" else (None,)
        for state, late, value, category, reason in itertools.product(
            states, (False, True), (None, 61.25), ("usg", None), reasons
        ):
            event = AlertEvent(
                id="tsagaan.haul-road.x.20261122T000000Z",
                state=state,  # type: ignore[arg-type]
                site="tsagaan",
                node="haul-road",
                rule=rule.name,
                rule_type=rule.type,
                metric=metric,
                severity=rule.severity,
                at=datetime(2026, 11, 22, 7, 0, tzinfo=UTC),
                started=datetime(2026, 11, 22, 6, 0, tzinfo=UTC),
                ended=None,
                value=value,
                limit=50.0,
                average=average,
                peak=value,
                late=late,
                message="",
                acked_by="oyuna" if state == "acknowledged" else None,
                category=category if rule.has_category else None,
                msg_params={"reason": reason} if reason else {},
                unit=rule.value_unit(metric),
                standard=rule.standard,
            )
            msg_id, extra = rule.message(event)
            params = {**params_of(event), **event.msg_params, **extra}
            yield rule, event.with_state(event.state, msg_id=msg_id, msg_params=params)


def test_en_toml_has_every_message_id_the_engine_emits_with_the_placeholders_it_fills() -> None:
    seen: set[str] = set()
    for _, e in _every_event():
        seen.add(e.msg_id)
        assert EN.has(e.msg_id), e.msg_id
        filled = render(e.msg_id, e.msg_params, EN)
        assert "{" not in filled and e.msg_id not in filled
    assert {i.split(".")[1] for i in seen} == {
        "threshold",
        "nowcast",
        "difference",
        "offline",
        "stop",
        "sensor_fault",
    }
    for key in (*WRAPPERS, "alert.subject", "alert.digest_subject", "alert.digest_text", "alert.digest_line"):
        assert EN.has(key), key
    assert _fields(EN("alert.acknowledged")) == {"by", "text"}
    assert _fields(EN("alert.subject")) == {"severity", "state", "rule", "node"}


def test_a_message_renders_from_its_parameters_alone() -> None:
    """The parameters are JSON values, not words: after a round trip through JSON they render the same."""
    for _, e in _every_event():
        english = render(e.msg_id, e.msg_params, EN)
        again = json.loads(json.dumps(e.to_json(), ensure_ascii=False))
        assert text_of({**again, "message": english}, EN) == english
        assert AlertEvent.from_json({**again, "message": english}).msg_params == e.msg_params
        assert all(not isinstance(v, dict | list) for v in e.msg_params.values())


def _engine_events() -> list[AlertEvent]:
    clock = FakeClock(T0)
    feed = Feed(
        Engine(
            rules(
                *EVERY_KIND[:3],
                {
                    "name": "inst",
                    "type": "threshold",
                    "metric": "pm2_5",
                    "limit": 50,
                    "remind_every": "5m",
                    "clear_after": "3m",
                },
            ),
            clock=clock,
        ),
        clock,
    )
    end = feed.series("haul-road", T0, [20.0] * 5 + [90.0] * 12 + [10.0] * 10)
    feed.series("haul-road", end, [4.0] * 5 + [9.0] * 20, metric="turbidity")
    assert feed.events
    return feed.events


def test_rendering_the_stored_id_and_parameters_gives_the_stored_english_message() -> None:
    events = _engine_events()
    assert {e.state for e in events} >= {"raised", "reminder", "cleared"}
    for e in events:
        assert e.msg_id and e.message == render(e.msg_id, e.msg_params, EN)
        assert text_of(e.to_json(), EN) == e.message


def test_an_event_read_back_from_influxdb_renders_its_stored_message(influx: Influx) -> None:
    events = _engine_events()
    influx.write([e.to_line() for e in events])
    rows = influx.rows('SELECT * FROM "alert"')
    assert len(rows) == len(events)
    for row in rows:
        assert isinstance(row["msg_params"], str) and row["msg_id"].startswith("alert.")
        assert text_of(row, EN) == row["message"]


def test_an_event_stored_before_message_ids_reads_as_it_was_stored() -> None:
    assert text_of({"message": "PM2.5 90.0 µg/m³ at haul-road (tsagaan) exceeds the limit"}, EN).startswith(
        "PM2.5 90.0"
    )


def test_subjects_and_digests_come_from_the_language_file() -> None:
    doc = next(e for _, e in _every_event() if e.state == "raised").to_json()
    # the rule by its name in the reader's language, its id only in the JSON (`rule_name`)
    assert subject(doc, EN) == "WARNING raised: PM2.5 24-hour mean, US EPA at haul-road"
    assert doc["rule"] == "us-epa-pm25-24h" and doc["rule"] not in subject(doc, EN)
    note = digest([doc, doc], "quiet hours", EN)
    assert note.subject == "2 alert events (quiet hours)"
    assert note.text.splitlines()[0] == "2 alert events held back (quiet hours):"


def test_a_channel_takes_a_language_there_is_a_file_for() -> None:
    assert ChannelOptions(language="en").language == "en"
    assert ChannelOptions(language="mn").language == "mn"
    with pytest.raises(ValueError, match=r"no translation xx\.toml; have: en, mn"):
        ChannelOptions(language="xx")
    assert Texts.languages() == ["en", "mn"]


def test_the_dashboard_renders_an_alert_row_from_its_id_and_an_old_row_from_its_message(
    influx: Influx,
) -> None:
    events = _engine_events()
    influx.write([e.to_line() for e in events])
    reader = open_reader(InfluxConfig(url=influx.url, database=influx.db, api="v1"))  # type: ignore[arg-type]
    try:
        shown = reader.alerts(T0 - timedelta(days=1), T0 + timedelta(days=30), limit=1000)
    finally:
        reader.close()
    assert len(shown) == len(events)
    for row in shown:
        assert row.msg_id and alert_text(row, EN) == row.message
        assert "msg_params" not in row.tags
        old = dataclasses.replace(row, msg_id=None, msg_params=None, message="as stored")
        assert isinstance(old, StoredAlert) and alert_text(old, EN) == "as stored"


def test_a_value_said_to_exceed_shows_the_digits_that_make_it_exceed() -> None:
    """50.03 against 50.0 is "50.03", not "50.0 exceeds the limit of 50.0"; the rule (strictly
    above) is written beside it; the all-clear's peak is written the same way (issue 17)."""
    params = {
        "node": "haul-road",
        "site": "tsagaan",
        "metric": "pm2_5",
        "average": "24h",
        "state": "raised",
        "late": False,
        "started": "2026-11-02T18:00:00.000Z",
        "value": 50.03,
        "limit": 50.0,
        "peak": 50.03,
        "acked_by": None,
        "standard": "MNS 4585:2016",
    }
    raised = render("alert.threshold.above", params, EN)
    assert "PM2.5 24-hour mean 50.03 µg/m³" in raised
    assert "exceeds the MNS 4585:2016 limit of 50.0 µg/m³ (strictly above it)" in raised
    cleared = render("alert.threshold.cleared", {**params, "state": "cleared", "value": 40.0}, EN)
    assert "peak 50.03 µg/m³" in cleared
    assert "peak 92.5 µg/m³" in render(
        "alert.threshold.cleared", {**params, "state": "cleared", "peak": 92.48}, EN
    )  # far from the limit: the metric's one decimal, as the report writes it
    mn = render("alert.threshold.above", params, Texts("mn"))
    assert "50.03" in mn and "(хэмжээнээс их)" in mn
