"""The JSON API under /api/v1/ (docs/api.md): nodes, latest values, series, alerts, and its OpenAPI
description, built from the same pydantic models that shape the answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract.metrics import METRIC_UNITS
from gateway.stores.reader import AlertEvent, Latest
from gateway.trust.registry import load_dir
from gateway.web.context import Context
from gateway.web.entries import dumps
from gateway.web.params import (
    MAX_SERIES_DAYS,
    ActiveAlertsQuery,
    AlertsQuery,
    NodeRef,
    NodesQuery,
    SeriesQuery,
    SiteFilter,
    bucket_seconds,
    validate,
)
from gateway.web.views import NodeSummary, Paged, bucketed, half_open, hourly_for, page_of, paged

UNITS = {m.value: unit for m, unit in METRIC_UNITS.items()}


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class NodeOut(_Out):
    site: str
    node: str
    lat: float | None
    lon: float | None
    status: str | None
    last_reading: datetime
    age_s: float
    offline: bool


class ValueOut(_Out):
    value: float
    unit: str


class LatestOut(_Out):
    site: str
    node: str
    time: datetime
    seq: int | None
    values: dict[str, ValueOut]
    flags: list[str]
    age_s: float
    offline: bool
    nowcast_pm2_5: float | None
    aqi: int | None
    aqi_category: str | None
    turbidity_level: str | None
    # issue 18: the latest reading's own category (the AQI breakpoints of its concentration; not
    # the EPA's AQI, which is the NowCast's), and whether it is a spike the NowCast lags
    latest_aqi_category: str | None
    spike: bool


class LimitOut(_Out):
    standard: str
    title: str
    value: float
    average: str


class SeriesOut(_Out):
    site: str
    node: str
    start: datetime
    end: datetime
    every_s: int
    times: list[datetime]
    series: dict[str, list[float | None]]
    units: dict[str, str]
    limits: dict[str, list[LimitOut]]


class AlertOut(_Out):
    id: str | None  # the alert's id, shared by all its events: what `ack` and the ack topic take
    time: datetime
    site: str
    node: str
    rule: str
    metric: str
    state: str
    severity: str | None
    value: float | None
    limit: float | None
    average: str | None
    late: bool
    message: str | None
    peak: float | None = None
    started: datetime | None = None
    ended: datetime | None = None
    acked_by: str | None = None


class KeyOut(_Out):
    """A node's public key as a third party needs it to verify downloaded readings."""

    kid: str
    site: str
    node: str
    public_key: str
    fingerprint: str
    created: datetime
    status: str
    since: datetime | None
    valid_from: datetime
    valid_until: datetime | None
    vouches_for: str


class ErrorOut(_Out):
    error: str


def _json(model: BaseModel | list[Any], status: int = 200) -> JSONResponse:
    if isinstance(model, list):
        return JSONResponse([m.model_dump(mode="json") for m in model], status)
    return JSONResponse(model.model_dump(mode="json"), status)


def _alert_out(a: AlertEvent) -> AlertOut:
    return AlertOut(
        id=a.alert_id,
        time=a.time,
        site=a.site,
        node=a.node,
        rule=a.rule,
        metric=a.metric,
        state=a.state,
        severity=a.severity,
        value=a.value,
        limit=a.limit,
        average=a.average,
        late=a.late,
        message=a.message,
        peak=a.peak,
        started=a.started,
        ended=a.ended,
        acked_by=a.acked_by,
    )


def _page(request: Request) -> tuple[Context, Paged[Latest], datetime]:
    """A page of the node list (`limit`, `offset`): a thousand nodes' NowCasts for every request
    made /api/v1/latest 302 KB and 654 ms."""
    ctx: Context = request.app.state.ctx
    q: NodesQuery = validate(NodesQuery, request.query_params)
    now = ctx.clock()
    return ctx, paged(ctx.latest(now, q.site), q.offset, q.limit), now


def paged_json(request: Request, page: Paged[Any], body: bytes) -> Response:
    """The page as a JSON array (`body`), as before paging; the total and the next page in headers
    (`X-Total-Count`, `Link: <...>; rel="next"`), so a client that wants every item follows links."""
    resp = Response(body, media_type=JSONResponse.media_type)
    resp.headers["X-Total-Count"] = str(page.total)
    if page.next_offset is not None:
        params = {**request.query_params, "offset": str(page.next_offset), "limit": str(page.limit)}
        resp.headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return resp


def _node_out(s: NodeSummary) -> NodeOut:
    return NodeOut(
        site=s.site,
        node=s.node,
        lat=s.lat,
        lon=s.lon,
        status=s.state,
        last_reading=s.latest.time,
        age_s=s.age_s,
        offline=s.is_offline,
    )


def _latest_out(s: NodeSummary) -> LatestOut:
    return LatestOut(
        site=s.site,
        node=s.node,
        time=s.latest.time,
        seq=s.latest.seq,
        values={m: ValueOut(value=v, unit=UNITS[m]) for m, v in s.latest.values.items()},
        flags=s.latest.flags,
        age_s=s.age_s,
        offline=s.is_offline,
        nowcast_pm2_5=s.nowcast,
        aqi=s.aqi,
        aqi_category=s.aqi_level.key if s.aqi_level else None,
        turbidity_level=s.turbidity_level.key if s.turbidity_level else None,
        latest_aqi_category=s.latest_level.key if s.latest_level else None,
        spike=s.is_spike,
    )


def nodes(request: Request) -> Response:
    ctx, page, now = _page(request)  # a node's place and freshness, not its air: no NowCast
    body = ctx.entries.json(
        "nodes", _node_out, page.items, {}, ctx.board, now, ctx.web.offline_after_s, nowcast=False
    )
    return paged_json(request, page, body)


def latest(request: Request) -> Response:
    ctx, page, now = _page(request)
    hourly = hourly_for(ctx.reader, page.items, now, ctx.hourly)  # the nodes of the page only
    body = ctx.entries.json(
        "latest",
        _latest_out,
        page.items,
        hourly,
        ctx.board,
        now,
        ctx.web.offline_after_s,
        nowcast=True,
        limits=ctx.pm2_5_limits(),
    )
    return paged_json(request, page, body)


def series(request: Request) -> JSONResponse:
    ctx: Context = request.app.state.ctx
    ref: NodeRef = validate(NodeRef, None, dict(request.path_params))
    q: SeriesQuery = validate(SeriesQuery, request.query_params)
    start, end = q.bounds(ctx.clock(), timedelta(hours=24), MAX_SERIES_DAYS)
    every = bucket_seconds(q, start, end)
    metrics = ctx.reader.metric_fields()
    if q.metric is not None:
        metrics = [m for m in metrics if m == q.metric.value]
    s = bucketed(ctx.reader, ref.site, ref.node, metrics, start, end, every)
    # metrics the database knows but this node has no data for in the range are left out
    s = replace(s, values={m: v for m, v in s.values.items() if any(x is not None for x in v)})
    limits = {
        m: [
            LimitOut(standard=x.standard, title=x.title, value=x.value, average=x.average)
            for x in ctx.limits(m)
        ]
        for m in s.values
    }
    return _json(
        SeriesOut(
            site=ref.site,
            node=ref.node,
            start=start,
            end=end,
            every_s=every,
            times=s.times,
            series=s.values,
            units={m: UNITS[m] for m in s.values},
            limits=limits,
        )
    )


def alerts(request: Request) -> JSONResponse:
    ctx: Context = request.app.state.ctx
    q: AlertsQuery = validate(AlertsQuery, request.query_params)
    start, end = q.bounds(ctx.clock(), timedelta(days=30), MAX_SERIES_DAYS)
    found = ctx.reader.alerts(*half_open(start, end), site=q.site, node=q.node, limit=q.limit)
    return _json([_alert_out(a) for a in found])


def active_alerts(request: Request) -> Response:
    """A page of the active alerts, newest first: with a thousand nodes 2,700 can be active at once,
    which as one answer is 2,700 JSON objects made for every request."""
    ctx: Context = request.app.state.ctx
    q: ActiveAlertsQuery = validate(ActiveAlertsQuery, request.query_params)
    page = page_of(ctx.active_alerts(ctx.clock(), site=q.site), q.offset, q.limit)
    body = dumps([_alert_out(a).model_dump(mode="json") for a in page.items]).encode("utf-8")
    return paged_json(request, page, body)


def keys(request: Request) -> JSONResponse:
    """Every public key the gateway ever registered, retired and revoked ones too: a revoked key
    still vouches for what was stored before it was revoked (docs/trust.md)."""
    ctx: Context = request.app.state.ctx
    q: SiteFilter = validate(SiteFilter, request.query_params)
    records = load_dir(ctx.keys_dir) if ctx.keys_dir is not None else {}
    out = [
        KeyOut.model_validate(r.public_doc())
        for r in sorted(records.values(), key=lambda r: (r.site, r.node, r.created))
        if q.site is None or r.site == q.site
    ]
    return _json(out)


ROUTES = [
    Route("/api/v1/keys", keys),
    Route("/api/v1/nodes", nodes),
    Route("/api/v1/latest", latest),
    Route("/api/v1/nodes/{site}/{node}/series", series),
    Route("/api/v1/alerts", alerts),
    Route("/api/v1/alerts/active", active_alerts),
]
