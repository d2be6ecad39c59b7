"""A site's timeline: the accepted observations and the maintenance visits of a period, newest
first, on one page (docs/api.md). What a monitor reads beside the charts to tie what people saw and
did to the readings of the same hour; it needs no account, like every page that only reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from contract.wire import ID_PATTERN
from gateway import maintenance
from gateway.maintenance import Visit
from gateway.observations import records
from gateway.observations.records import Observation
from gateway.web.context import Context
from gateway.web.pages import REFRESH_S, render
from gateway.web.params import validate
from gateway.web.views import half_open

MAX_DAYS = 366


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
