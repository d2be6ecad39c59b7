"""`$filter` and `$orderby` of SensorThings (OData 4 syntax) in the read seam's terms.

The filter text is parsed by odata-query (an OData 4 grammar and AST, `odata_query.grammar`), and
its tree is translated into a `gateway.stores.reader.Condition` on a reading's time and value: a
literal becomes a typed datetime or float, never text pasted into a query. What this gateway can
answer is checked here, so that anything else is a 400 with the reason, never a 500:
`phenomenonTime`/`resultTime` (the same instant here, the end of the averaging window) compared
with a datetime, `result` compared with a number, `eq ne gt ge lt le`, `and or not`, parentheses.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from gateway.stores.reader import AllOf, AnyOf, Compare, Comparison, Condition, Negation

MAX_FILTER_CHARS = 2000
MAX_COMPARISONS = 64
"""Each time compared cuts the period in two for InfluxDB (gateway/stores/timesplit.py): bounded."""

TIME_PROPERTIES = frozenset({"phenomenonTime", "resultTime"})

_OPS: dict[type[Any], Comparison] = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.Lt: "lt",
    ast.LtE: "le",
}
_MIRROR: dict[Comparison, Comparison] = {
    "eq": "eq",
    "ne": "ne",
    "gt": "lt",
    "ge": "le",
    "lt": "gt",
    "le": "ge",
}


class QueryError(ValueError):
    """A query option this service cannot answer; the message says what to change (HTTP 400)."""


def parse_filter(text: str) -> Condition:
    """The `$filter` of an Observations request as a Condition on time and value."""
    if len(text) > MAX_FILTER_CHARS:
        raise QueryError(f"$filter is longer than {MAX_FILTER_CHARS} characters")
    if not text.strip():
        raise QueryError("$filter is empty")
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(text))
    except ODataException as exc:
        raise QueryError(f"$filter is not OData: {exc}") from None
    except (RecursionError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        # the parser's own actions (a literal it cannot convert) raise plain errors
        raise QueryError(f"$filter cannot be read: {type(exc).__name__}") from None
    if tree is None:
        raise QueryError("$filter is empty")
    counter = [0]
    try:
        return _condition(tree, counter)
    except RecursionError:
        raise QueryError("$filter is nested too deeply") from None


def _condition(node: Any, counter: list[int]) -> Condition:
    if isinstance(node, ast.BoolOp):
        left, right = _condition(node.left, counter), _condition(node.right, counter)
        if isinstance(node.op, ast.And):
            return AllOf((left, right))
        return AnyOf((left, right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return Negation(_condition(node.operand, counter))
    if isinstance(node, ast.Compare):
        counter[0] += 1
        if counter[0] > MAX_COMPARISONS:
            raise QueryError(f"$filter has more than {MAX_COMPARISONS} comparisons")
        return _compare(node)
    raise QueryError(
        "$filter supports comparisons (eq ne gt ge lt le) of phenomenonTime, resultTime or result "
        f"joined by and, or, not and parentheses; not {type(node).__name__}"
    )


def _compare(node: ast.Compare) -> Compare:
    op = _OPS.get(type(node.comparator))
    if op is None:
        raise QueryError(f"$filter: the operator {type(node.comparator).__name__} is not supported")
    left, right = node.left, node.right
    if not isinstance(left, ast.Identifier) and isinstance(right, ast.Identifier):
        left, right, op = right, left, _MIRROR[op]  # `5 lt result` is `result gt 5`
    if not isinstance(left, ast.Identifier) or left.namespace:
        raise QueryError("$filter: compare phenomenonTime, resultTime or result with a literal")
    if left.name in TIME_PROPERTIES:
        return Compare("time", op, _time(right, left.name))
    if left.name == "result":
        return Compare("value", op, _number(right))
    raise QueryError(
        f"$filter: {left.name!r} cannot be filtered on; use phenomenonTime, resultTime or result"
    )


def _time(node: Any, name: str) -> datetime:
    if not isinstance(node, ast.DateTime | ast.Date):
        raise QueryError(f"$filter: compare {name} with a time such as 2026-11-22T10:00:00Z")
    try:
        value = node.py_val
    except (ValueError, OverflowError) as exc:
        raise QueryError(f"$filter: {node.val!r} is not a valid time: {exc}") from None
    if not isinstance(value, datetime):  # a date alone: its midnight, UTC
        value = datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _number(node: Any) -> float:
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1.0, node.operand
    if not isinstance(node, ast.Integer | ast.Float):
        raise QueryError("$filter: compare result with a number")
    try:
        value = sign * float(node.val)
    except (ValueError, OverflowError):
        raise QueryError(f"$filter: {node.val!r} is not a number") from None
    if not math.isfinite(value):
        raise QueryError(f"$filter: {node.val!r} is not a finite number")
    return value


def parse_orderby(text: str, allowed: frozenset[str]) -> list[tuple[str, bool]]:
    """`$orderby=a desc,b` as [(property, descending)], each property one of `allowed`."""
    out: list[tuple[str, bool]] = []
    for item in text.split(","):
        words = item.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise QueryError(f"$orderby: {item.strip()!r} is not `property [asc|desc]`")
        if words[0] not in allowed:
            raise QueryError(
                f"$orderby: {words[0]!r} cannot be ordered on here; use {', '.join(sorted(allowed))}"
            )
        out.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return out
