"""The time cut behind the SensorThings filter on InfluxDB (gateway/stores/timesplit.py): for any
condition and any reading, "in one of the pieces and meeting its value condition" is exactly
"meets the condition", which is what lets the reader page through pieces one query at a time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.stores.reader import AllOf, AnyOf, Compare, Condition, Negation
from gateway.stores.timesplit import Piece, decide, split

T0 = datetime(2026, 11, 22, tzinfo=UTC)
START, END = T0, T0 + timedelta(hours=10)
MS = timedelta(milliseconds=1)

TIMES = st.integers(-60, 660).map(lambda m: T0 + timedelta(minutes=m))
VALUES = st.sampled_from([0.0, 5.0, 10.0, 20.0])
OPS = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])
LEAVES = st.one_of(
    st.builds(lambda op, t: Compare("time", op, t), OPS, TIMES),
    st.builds(lambda op, v: Compare("value", op, v), OPS, VALUES),
)
CONDITIONS = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.builds(lambda a, b: AllOf((a, b)), inner, inner),
        st.builds(lambda a, b: AnyOf((a, b)), inner, inner),
        st.builds(Negation, inner),
    ),
    max_leaves=8,
)


def _holds(condition: Condition, at: datetime, value: float | None) -> bool:
    """Direct evaluation; a missing value meets no value comparison, and NOT is pushed down to the
    comparisons as the InfluxQL renderer does (so NOT (value > 5) is value <= 5, false when missing)."""
    return _eval(condition, at, value, negated=False)


_OPPOSITE = {"eq": "ne", "ne": "eq", "gt": "le", "ge": "lt", "lt": "ge", "le": "gt"}


def _eval(c: Condition, at: datetime, value: float | None, negated: bool) -> bool:
    if isinstance(c, Compare):
        op = _OPPOSITE[c.op] if negated else c.op
        if c.subject == "time":
            left, right = at, c.operand
        elif value is None:
            return False
        else:
            left, right = value, c.operand
        return {"eq": left == right, "ne": left != right, "gt": left > right, "ge": left >= right,
                "lt": left < right, "le": left <= right}[op]  # type: ignore[operator]  # fmt: skip
    if isinstance(c, Negation):
        return _eval(c.part, at, value, not negated)
    results = [_eval(p, at, value, negated) for p in c.parts]
    return any(results) if isinstance(c, AnyOf) != negated else all(results)


def _in(piece: Piece, at: datetime, value: float | None) -> bool:
    after = at >= piece.start if piece.start_closed else at > piece.start
    before = at <= piece.end if piece.end_closed else at < piece.end
    return after and before and (piece.condition is None or _holds(piece.condition, at, value))


@settings(max_examples=400, deadline=None)
@given(
    condition=CONDITIONS, at=TIMES, shift=st.sampled_from([-MS, timedelta(0), MS]), value=st.none() | VALUES
)
def test_the_pieces_hold_exactly_the_readings_the_condition_does(
    condition: Condition, at: datetime, shift: timedelta, value: float | None
) -> None:
    at = at + shift
    pieces = split(START, END, condition)
    inside = START < at <= END
    assert sum(_in(p, at, value) for p in pieces) == int(inside and _holds(condition, at, value))
    assert all(a.end <= b.start for a, b in itertools.pairwise(pieces))  # time order
    for p in pieces:  # what a piece keeps compares values only: deciding times changes nothing
        assert p.condition is None or decide(p.condition, at) == p.condition


def test_a_plain_range_and_value_condition_is_one_piece() -> None:
    c = AllOf((Compare("time", "gt", T0 + timedelta(hours=1)), Compare("value", "ge", 5.0)))
    assert split(START, END, c) == [
        Piece(T0 + timedelta(hours=1), False, END, True, Compare("value", "ge", 5.0))
    ]


def test_or_of_two_ranges_is_two_pieces_and_ne_a_time_is_a_hole() -> None:
    a, b = T0 + timedelta(hours=2), T0 + timedelta(hours=8)
    either = AnyOf((Compare("time", "lt", a), Compare("time", "ge", b)))
    assert split(START, END, either) == [Piece(START, False, a, False, None), Piece(b, True, END, True, None)]
    hole = Compare("time", "ne", a)
    assert split(START, END, hole) == [Piece(START, False, a, False, None), Piece(a, False, END, True, None)]
    assert split(START, END, Compare("time", "gt", END)) == []
