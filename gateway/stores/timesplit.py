"""A reading filter cut into time pieces, for query languages that cannot OR time ranges.

InfluxDB 1.x answers `time < a OR time > b` with nothing at all (no error) and refuses `time != a`,
so a condition that compares `time` anywhere but in a top-level AND cannot be passed on as it is.
Every time comparison is constant between two of the times it names, so (start, end] is cut at
those times into points and open intervals, the time comparisons are decided on each, and each
piece keeps only its value condition; neighbours left with the same condition are joined again. A
backend then asks for the pieces one after another, oldest first, which keeps the time order its
paging needs. A backend whose language can OR time ranges (SQL) has no need of this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.stores.reader import AllOf, AnyOf, Compare, Condition, Negation

Residue = Condition | bool
"""What is left of a condition once its time comparisons are decided: a value condition, or all
(True) or nothing (False)."""


@dataclass(frozen=True, slots=True)
class Piece:
    """Readings with `start < time` (`start <= time` when `start_closed`) and `time < end`
    (`time <= end` when `end_closed`) that meet `condition` (None: all of them)."""

    start: datetime
    start_closed: bool
    end: datetime
    end_closed: bool
    condition: Condition | None


def _times(condition: Condition | None) -> set[datetime]:
    if condition is None:
        return set()
    if isinstance(condition, Compare):
        return {condition.operand} if isinstance(condition.operand, datetime) else set()
    parts = (condition.part,) if isinstance(condition, Negation) else condition.parts
    return set().union(*(_times(p) for p in parts))


def _compare(left: datetime, op: str, right: datetime) -> bool:
    return {
        "eq": left == right,
        "ne": left != right,
        "gt": left > right,
        "ge": left >= right,
        "lt": left < right,
        "le": left <= right,
    }[op]


def decide(condition: Condition, at: datetime) -> Residue:
    """The condition with every time comparison decided for a reading at `at`."""
    if isinstance(condition, Compare):
        if condition.subject == "time":
            assert isinstance(condition.operand, datetime)
            return _compare(at, condition.op, condition.operand)
        return condition
    if isinstance(condition, Negation):
        inner = decide(condition.part, at)
        return (not inner) if isinstance(inner, bool) else Negation(inner)
    parts = [decide(p, at) for p in condition.parts]
    absorbing = isinstance(condition, AnyOf)  # True ends an OR, False ends an AND
    if absorbing in parts:
        return absorbing
    rest = tuple(p for p in parts if not isinstance(p, bool))
    if not rest:
        return not absorbing
    if len(rest) == 1:
        return rest[0]
    return AnyOf(rest) if absorbing else AllOf(rest)


def split(start: datetime, end: datetime, condition: Condition | None) -> list[Piece]:
    """(start, end] as pieces in time order, each with the value condition that holds on it."""
    cuts = sorted(t for t in _times(condition) if start < t < end)
    # (start, c1), [c1], (c1, c2), ..., [ck], (ck, end), [end]: each with a time to decide it at
    spans: list[tuple[datetime, bool, datetime, bool, datetime]] = []
    low = start
    for cut in [*cuts, end]:
        if cut - low > timedelta(microseconds=1):  # an open interval with room for a reading
            spans.append((low, False, cut, False, low + (cut - low) / 2))
        spans.append((cut, True, cut, True, cut))
        low = cut
    pieces: list[Piece] = []
    for s_time, s_closed, e_time, e_closed, at in spans:
        residue: Residue = True if condition is None else decide(condition, at)
        if residue is False:
            continue
        kept = None if residue is True else residue
        last = pieces[-1] if pieces else None
        if last is not None and last.condition == kept and last.end == s_time and last.end_closed != s_closed:
            pieces[-1] = Piece(last.start, last.start_closed, e_time, e_closed, kept)
        else:
            pieces.append(Piece(s_time, s_closed, e_time, e_closed, kept))
    return pieces
