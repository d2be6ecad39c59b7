"""A site's timeline: the accepted observations and the maintenance visits of a period, newest
first, on one page (docs/api.md). What a monitor reads beside the charts to tie what people saw and
did to the readings of the same hour; it needs no account, like every page that only reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from contract.wire import ID_PATTERN
from gateway import maintenance
from gateway.maintenance import Visit
from gateway.observations import records
from gateway.observations.records import Observation
from gateway.timerange import format_time
from gateway.web.context import Context
from gateway.web.pages import REFRESH_S, render
from gateway.web.params import validate
from gateway.web.views import half_open

MAX_DAYS = 366
AROUND = timedelta(minutes=30)
"""A field record's link opens the readings this long either side of it: the hour it belongs to."""


class TimelineQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(pattern=ID_PATTERN)
    days: int = Field(default=30, ge=1, le=MAX_DAYS)


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    node: str | None
    observation: Observation | None = None
    visit: Visit | None = None


def entries(ctx: Context, site: str, start: datetime, end: datetime) -> list[Entry]:
    """Both kinds of field record in (start, end], newest first."""
    seen = records.listed(ctx.reader, "accepted", start, end, site=site)
    done = maintenance.visits(ctx.reader, site, start, end)
    out = [Entry(o.at, o.node, observation=o) for o in seen]
    out += [Entry(v.at, v.node, visit=v) for v in done]
    return sorted(out, key=lambda e: (e.at, e.node or ""), reverse=True)


def readings_link(
    site: str | None,
    node: str | None,
    at: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
) -> str | None:
    """The dashboard's CSV download of the readings of the hour around `at` (and of a visit's
    marked window, `start` to `end`), at `node`, or at every node of `site` for a position near
    none: the node page charts only the last 24 h and 7 d, a download any hour of the last years.
    None without a site (nothing to narrow the readings to)."""
    if not site:
        return None
    lo = min(at - AROUND, start) if start else at - AROUND
    hi = max(at + AROUND, end) if end else at + AROUND
    query = {
        "site": site,
        **({"node": node} if node else {}),
        "start": format_time(lo),
        "end": format_time(hi),
    }
    return "/download/readings.csv?" + urlencode(query)


def timeline_page(request: Request) -> HTMLResponse:
    ctx: Context = request.app.state.ctx
    q: TimelineQuery = validate(TimelineQuery, request.query_params, dict(request.path_params))
    now = ctx.clock()
    start, end = half_open(now - timedelta(days=q.days), now)
    found = entries(ctx, q.site, start, end)
    zone = ctx.texts.zone_of(now)
    return render(
        request,
        "timeline.html",
        site=q.site,
        days=q.days,
        entries=found,
        zone=zone,
        refresh_s=REFRESH_S,  # what people see and do comes in while the page is open
    )


ROUTES = [Route("/sites/{site}/timeline", timeline_page)]
