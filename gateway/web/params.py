"""Query-string and path input, validated with pydantic before anything reaches InfluxDB.

A bad value is a `BadRequest` (HTTP 400 with a message naming the parameter), never a 500 and never
part of a query: ids must match the contract's identifier pattern, times must parse, `every` comes
from an allow-list, and ranges are bounded so one request cannot ask for millions of points.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from contract.metrics import Metric
from contract.wire import ID_PATTERN

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
EVERY: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "10m": 600,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "3h": 10_800,
    "6h": 21_600,
    "12h": 43_200,
    "1d": 86_400,
}
Every = Literal["1m", "5m", "10m", "15m", "30m", "1h", "3h", "6h", "12h", "1d"]
MAX_BUCKETS = 5000
MAX_SERIES_DAYS = 366
MAX_CSV_DAYS = 31
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$")
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class BadRequest(ValueError):
    """Input we refuse; the message says which parameter and what is expected."""


def parse_time(value: Any) -> datetime:
    """`2026-11-22` (UTC midnight) or RFC 3339 with `Z` or an offset; nothing looser."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a date or an RFC 3339 time")
    if _DATE_RE.match(value):
        ts = datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
    elif _TIME_RE.match(value):
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError("expected 2026-11-22 or 2026-11-22T10:00:00Z (UTC or with an offset)")
    if not _EARLIEST <= ts < _LATEST:
        raise ValueError("time must be between 2000 and 2100")
    return ts.astimezone(UTC)


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteRef(_Query):
    site: Identifier


class NodeRef(_Query):
    site: Identifier
    node: Identifier


class Range(_Query):
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> datetime:
        return parse_time(value)

    def bounds(self, now: datetime, default: timedelta, max_days: int) -> tuple[datetime, datetime]:
        end = self.end or now
        start = self.start or end - default
        if start >= end:
            raise BadRequest("start must be before end")
        if end - start > timedelta(days=max_days):
            raise BadRequest(f"the range from start to end may be at most {max_days} days")
        return start, end


class SeriesQuery(Range):
    every: Every | None = None
    metric: Metric | None = None


class AlertsQuery(Range):
    site: Identifier | None = None
    node: Identifier | None = None
    limit: int = Field(default=200, ge=1, le=1000)


class SiteFilter(_Query):
    site: Identifier | None = None


API_PAGE = 100
"""Nodes per answer of /api/v1/nodes and /api/v1/latest, and alerts per answer of
/api/v1/alerts/active, unless `limit` says otherwise."""
OVERVIEW_PAGE = 50
"""Sensor cards per overview page: 50 cards and their map stay well under the 200 KB page budget."""


class NodesQuery(SiteFilter):
    """A page of the node list: `offset` nodes skipped, then at most `limit`, in site and node order."""

    limit: int = Field(default=API_PAGE, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class ActiveAlertsQuery(NodesQuery):
    """A page of the active alerts: `offset` alerts skipped, then at most `limit`, newest first."""


class OverviewQuery(_Query):
    """The overview's filter and page; an empty form field means "any"."""

    site: Identifier | None = None
    q: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{0,32}$")] = ""
    page: int = Field(default=1, ge=1, le=100_000)

    @field_validator("site", mode="before")
    @classmethod
    def _any_site(cls, value: Any) -> Any:
        return None if value == "" else value


class CsvQuery(Range):
    site: Identifier | None = None
    node: Identifier | None = None


def auto_every(start: datetime, end: datetime) -> int:
    """The smallest allowed bucket that keeps a chart at about 600 points or fewer."""
    span = (end - start).total_seconds()
    for seconds in EVERY.values():
        if span / seconds <= 600:
            return seconds
    return EVERY["1d"]


def bucket_seconds(query: SeriesQuery, start: datetime, end: datetime) -> int:
    every = EVERY[query.every] if query.every else auto_every(start, end)
    if (end - start).total_seconds() / every > MAX_BUCKETS:
        raise BadRequest(f"every={query.every} gives more than {MAX_BUCKETS} points: choose a longer every")
    return every


def validate(model: type[Any], query: Any, path: dict[str, Any] | None = None) -> Any:
    """Build `model` from a Starlette QueryParams (repeated keys refused) and path params."""
    data: dict[str, Any] = dict(path or {})
    for key in query or ():
        values = query.getlist(key)
        if len(values) > 1:
            raise BadRequest(f"{key}: given {len(values)} times; give it once")
        if key in data:
            raise BadRequest(f"{key}: not accepted in the query string here")
        data[key] = values[0]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "query"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown parameter"
        elif err["type"] == "string_pattern_mismatch":
            msg = "must be an id: lowercase letters, digits, - and _, at most 32 characters"
        out.append(f"{where}: {msg}")
    return "; ".join(out)
