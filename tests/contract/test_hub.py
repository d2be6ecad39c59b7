"""`ForwardBatch.period_unknown` (docs/protocol.md, "Site to hub"): the indices of unsigned readings
whose period the site does not know; anything else is a malformed batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contract.hub import ForwardBatch
from contract.signing import Signer
from tests.alert_helpers import reading

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _batch(period_unknown: list[int], *, signed: bool = False) -> ForwardBatch:
    readings = [reading("a", NOW + timedelta(minutes=i), float(i)) for i in range(3)]
    if signed:
        readings[1] = Signer.generate().sign(readings[1])
    return ForwardBatch(site="tsagaan", batch=1, readings=readings, period_unknown=period_unknown)


def test_unsigned_readings_may_be_marked_without_a_known_period() -> None:
    assert _batch([0, 2]).period_unknown == [0, 2]
    assert ForwardBatch.model_validate_json(_batch([]).model_dump_json()).period_unknown == []
    # a batch from a site that predates the field (or has none to mark) has no mark at all
    assert ForwardBatch.model_validate_json(b'{"site": "tsagaan", "batch": 1}').period_unknown == []


@pytest.mark.parametrize(
    ("marked", "signed", "says"),
    [
        ([3], False, "no reading 3 in a batch of 3"),
        ([-1], False, "no reading -1"),
        ([1], True, "reading 1 is signed"),
    ],
)
def test_a_mark_on_no_reading_or_on_a_signed_one_is_malformed(
    marked: list[int], signed: bool, says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        _batch(marked, signed=signed)


def test_a_visits_marked_window_goes_whole_and_forwards() -> None:
    from contract.hub import ForwardedVisit

    at = NOW - timedelta(hours=1)
    visit = {
        "node": "a",
        "kind": "cleaned",
        "at": at.isoformat(),
        "by": "D. Dorj",
        "recorded": NOW.isoformat(),
    }
    assert ForwardedVisit.model_validate(visit).flag_from is None
    with pytest.raises(ValidationError, match="go together"):
        ForwardedVisit.model_validate({**visit, "flag_from": at.isoformat()})
    with pytest.raises(ValidationError, match="after flag_from"):
        ForwardedVisit.model_validate({**visit, "flag_from": at.isoformat(), "flag_to": at.isoformat()})


def test_an_observation_goes_with_a_decision_and_without_its_observer() -> None:
    from contract.hub import ForwardedObservation

    doc = {"id": "3f6c2b1e-0000-4000-8000-000000000001", "kind": "dust", "at": NOW.isoformat(),
           "received": NOW.isoformat(), "decisions": []}  # fmt: skip
    with pytest.raises(ValidationError, match="at least 1"):
        ForwardedObservation.model_validate(doc)
    decided = [{"decision": "accepted", "by": "monitor B", "at": NOW.isoformat(), "why": "seen"}]
    with pytest.raises(ValidationError, match="observer"):  # who observed stays at the site
        ForwardedObservation.model_validate({**doc, "decisions": decided, "observer": "code:1"})
    with pytest.raises(ValidationError, match="photo_sha256"):
        ForwardedObservation.model_validate({**doc, "decisions": decided, "photo_sha256": "not a hash"})
    assert ForwardedObservation.model_validate({**doc, "decisions": decided}).decisions[0].by == "monitor B"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"photos_received_sha256": ["a1" * 32], "photos_sha256": ["b1" * 32]}, "at least 2"),
        ({"photos_received_sha256": ["a1" * 32] * 5, "photos_sha256": ["b1" * 32] * 5}, "at most 4"),
        ({"photos_received_sha256": ["a1" * 32, "a2" * 32]}, "go together"),
        (
            {"photos_received_sha256": ["a1" * 32, "a2" * 32], "photos_sha256": ["b1" * 32] * 3},
            "one hash per photo",
        ),
        (
            {"photos_received_sha256": ["a9" * 32, "a2" * 32], "photos_sha256": ["b1" * 32, "b2" * 32]},
            "first photo",
        ),
    ],
)
def test_several_photos_travel_as_lists_that_agree_with_the_first(
    change: dict[str, object], message: str
) -> None:
    from contract.hub import ForwardedObservation

    decided = [{"decision": "accepted", "by": "monitor B", "at": NOW.isoformat(), "why": "seen"}]
    doc = {"id": "3f6c2b1e-0000-4000-8000-000000000001", "kind": "dead_fish", "at": NOW.isoformat(),
           "received": NOW.isoformat(), "photo_received_sha256": "a1" * 32, "photo_sha256": "b1" * 32,
           "decisions": decided}  # fmt: skip
    with pytest.raises(ValidationError, match=message):
        ForwardedObservation.model_validate({**doc, **change})
    three = {
        "photos_received_sha256": ["a1" * 32, "a2" * 32, "a3" * 32],
        "photos_sha256": ["b1" * 32, "b2" * 32, "b3" * 32],
    }
    assert ForwardedObservation.model_validate({**doc, **three}).photos_sha256 == three["photos_sha256"]
