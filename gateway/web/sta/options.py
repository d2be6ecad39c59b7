"""The query options of a SensorThings request (`$top`, `$skip`, `$count`, `$select`, `$expand`,
`$filter`, `$orderby`), checked before anything is read; `$expand` may nest options in parentheses
(`Datastreams($top=2;$expand=Observations($top=5))`) and paths (`Datastreams/Observations`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from gateway.web.sta.filter import QueryError

DEFAULT_TOP = 100
MAX_TOP = 1000
"""A page is at most this many entities, whatever `$top` asks: the rest comes by `@iot.nextLink`."""
MAX_SKIP = 10_000_000
MAX_EXPAND_DEPTH = 4
KNOWN = frozenset({"$top", "$skip", "$count", "$select", "$expand", "$filter", "$orderby"})


@dataclass(frozen=True)
class Options:
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    select: tuple[str, ...] | None = None
    expand: tuple[Expand, ...] = ()
    filter: str | None = None
    orderby: str | None = None
    asked_top: bool = False


@dataclass(frozen=True)
class Expand:
    nav: str
    options: Options = field(default_factory=Options)


def _split(text: str, sep: str) -> list[str]:
    """`text` cut at `sep` outside parentheses and single-quoted strings."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth < 0:
                raise QueryError(f"unbalanced parentheses in {text!r}")
        elif not quoted and depth == 0 and ch == sep:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quoted:
        raise QueryError(f"unbalanced parentheses or quotes in {text!r}")
    parts.append(text[start:])
    return parts


def _integer(name: str, value: str, high: int) -> int:
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise QueryError(f"{name} must be a whole number >= 0, not {value!r}")
    number = int(text)
    if number > high:
        raise QueryError(f"{name} must be at most {high}")
    return number


def parse(pairs: Iterable[tuple[str, str]], depth: int = 0) -> Options:
    """Options from query-string pairs; names not starting with `$` are left to others."""
    seen: dict[str, str] = {}
    for name, value in pairs:
        if not name.startswith("$"):
            continue
        if name not in KNOWN:
            raise QueryError(f"{name} is not supported; supported: {', '.join(sorted(KNOWN))}")
        if name in seen:
            raise QueryError(f"{name} is given twice")
        seen[name] = value
    top = _integer("$top", seen["$top"], 10**12) if "$top" in seen else DEFAULT_TOP
    count = seen.get("$count", "false").strip().lower()
    if count not in ("true", "false"):
        raise QueryError("$count must be true or false")
    select = None
    if "$select" in seen:
        select = tuple(s.strip() for s in seen["$select"].split(","))
        if not all(select):
            raise QueryError("$select names properties separated by commas")
    return Options(
        top=min(top, MAX_TOP),
        skip=_integer("$skip", seen["$skip"], MAX_SKIP) if "$skip" in seen else 0,
        count=count == "true",
        select=select,
        expand=_expands(seen["$expand"], depth) if "$expand" in seen else (),
        filter=seen.get("$filter"),
        orderby=seen.get("$orderby"),
        asked_top="$top" in seen,
    )


def _expands(text: str, depth: int) -> tuple[Expand, ...]:
    if depth >= MAX_EXPAND_DEPTH:
        raise QueryError(f"$expand nests deeper than {MAX_EXPAND_DEPTH} levels")
    out = []
    for item in _split(text, ","):
        item = item.strip()
        inner = Options()
        if item.endswith(")") and "(" in item:
            path, _, rest = item.partition("(")
            pairs = []
            for option in _split(rest[:-1], ";"):
                name, eq, value = option.strip().partition("=")
                if not eq:
                    raise QueryError(f"$expand option {option.strip()!r} is not `$name=value`")
                pairs.append((name.strip(), value))
            inner = parse(pairs, depth + 1)
        else:
            path = item
        segments = [s.strip() for s in path.split("/")]
        if not all(s.isascii() and s.isalpha() for s in segments):
            raise QueryError(f"$expand: {item!r} is not a navigation path such as Datastreams/Observations")
        if len(segments) + depth > MAX_EXPAND_DEPTH:
            raise QueryError(f"$expand nests deeper than {MAX_EXPAND_DEPTH} levels")
        expand = Expand(segments[-1], inner)
        for seg in reversed(segments[:-1]):
            expand = Expand(seg, Options(expand=(expand,)))
        out.append(expand)
    return _merged(out)


def _merged(items: list[Expand]) -> tuple[Expand, ...]:
    """`Datastreams,Datastreams/Observations` is one expansion of Datastreams with Observations."""
    merged: dict[str, Expand] = {}
    for e in items:
        old = merged.get(e.nav)
        if old is None:
            merged[e.nav] = e
            continue
        base = old.options if old.options.expand or not e.options.expand else e.options
        both = _merged([*old.options.expand, *e.options.expand])
        merged[e.nav] = Expand(e.nav, replace(base, expand=both))
    return tuple(merged.values())
