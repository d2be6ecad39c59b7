"""`$filter` and `$orderby` text in the read seam's terms (gateway/web/sta/filter.py), table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.stores.reader import AllOf, AnyOf, Compare, Negation
from gateway.web.sta.filter import QueryError, parse_filter, parse_orderby

T = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("result gt 5", Compare("value", "gt", 5.0)),
        ("5 lt result", Compare("value", "gt", 5.0)),
        ("result le -3.5", Compare("value", "le", -3.5)),
        ("phenomenonTime ge 2026-11-22T10:00:00Z", Compare("time", "ge", T)),
        ("resultTime lt 2026-11-22T18:00:00+08:00", Compare("time", "lt", T)),
        ("phenomenonTime eq 2026-11-22", Compare("time", "eq", T - timedelta(hours=10))),
        (
            "phenomenonTime gt 2026-11-22T10:00:00Z and (result lt 1 or not (result eq 7))",
            AllOf(
                (
                    Compare("time", "gt", T),
                    AnyOf((Compare("value", "lt", 1.0), Negation(Compare("value", "eq", 7.0)))),
                )
            ),
        ),
    ],
)
def test_a_filter_becomes_a_condition(text: str, condition: object) -> None:
    assert parse_filter(text) == condition


def test_times_are_utc_whatever_offset_they_came_with() -> None:
    c = parse_filter("phenomenonTime gt 2026-11-22T18:00:00+08:00")
    assert isinstance(c, Compare) and c.operand == T and c.operand.tzinfo == UTC  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("result", "not Identifier"),
        ("not result eq 7", "with a literal"),
        ("result eq null", "with a number"),
        ("result gt 1 and " * 64 + "result gt 1", "more than 64"),
        ("result gt 1 " + " " * 2000, "longer than"),
        ("result add 1 gt 2", "with a literal"),
    ],
)
def test_what_cannot_be_answered_says_why(text: str, words: str) -> None:
    with pytest.raises(QueryError, match=words):
        parse_filter(text)


def test_orderby_names_known_properties_and_directions() -> None:
    allowed = frozenset({"phenomenonTime", "id"})
    assert parse_orderby("phenomenonTime desc, id", allowed) == [("phenomenonTime", True), ("id", False)]
    for bad in ("result", "phenomenonTime down", "", "a b c"):
        with pytest.raises(QueryError):
            parse_orderby(bad, allowed)
