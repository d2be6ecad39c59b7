"""The JSON API under /api/v1/ (docs/api.md): nodes, latest values, series, alerts, and its OpenAPI
description, built from the same pydantic models that shape the answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.web.context import Context
from gateway.web.data import AlertEvent
from gateway.web.params import (
    EVERY,
    MAX_SERIES_DAYS,
    AlertsQuery,
    NodeRef,
    SeriesQuery,
    SiteFilter,
    bucket_seconds,
    validate,
)
from gateway.web.views import summaries

UNITS = {
    "pm1_0": "µg/m³",
    "pm2_5": "µg/m³",
    "pm10": "µg/m³",
    "turbidity": "NTU",
    "rh": "%",
    "air_temp": "°C",
    "water_temp": "°C",
    "pressure": "hPa",
}


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


class ErrorOut(_Out):
    error: str


def _json(model: BaseModel | list[Any], status: int = 200) -> JSONResponse:
    if isinstance(model, list):
        return JSONResponse([m.model_dump(mode="json") for m in model], status)
    return JSONResponse(model.model_dump(mode="json"), status)


def _alert_out(a: AlertEvent) -> AlertOut:
    return AlertOut(
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
    )


def nodes(request: Request) -> JSONResponse:
    ctx: Context = request.app.state.ctx
    q: SiteFilter = validate(SiteFilter, request.query_params)
    now = ctx.clock()
    out = [
        NodeOut(
            site=s.site,
            node=s.node,
            lat=s.lat,
            lon=s.lon,
            status=s.state,
            last_reading=s.latest.time,
            age_s=s.age_s,
            offline=s.is_offline,
        )
        for s in summaries(ctx.reader, ctx.board, now, ctx.web.offline_after_s, q.site)
    ]
    return _json(out)


def latest(request: Request) -> JSONResponse:
    ctx: Context = request.app.state.ctx
    q: SiteFilter = validate(SiteFilter, request.query_params)
    out = [
        LatestOut(
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
        )
        for s in summaries(ctx.reader, ctx.board, ctx.clock(), ctx.web.offline_after_s, q.site)
    ]
    return _json(out)


def series(request: Request) -> JSONResponse:
    ctx: Context = request.app.state.ctx
    ref: NodeRef = validate(NodeRef, None, dict(request.path_params))
    q: SeriesQuery = validate(SeriesQuery, request.query_params)
    start, end = q.bounds(ctx.clock(), timedelta(hours=24), MAX_SERIES_DAYS)
    every = bucket_seconds(q, start, end)
    metrics = ctx.reader.metric_fields()
    if q.metric is not None:
        metrics = [m for m in metrics if m == q.metric.value]
    s = ctx.reader.series(ref.site, ref.node, metrics, start, end, every)
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
    found = ctx.reader.alerts(start, end, site=q.site, node=q.node, limit=q.limit)
    return _json([_alert_out(a) for a in found])


def active_alerts(request: Request) -> JSONResponse:
    ctx: Context = request.app.state.ctx
    q: SiteFilter = validate(SiteFilter, request.query_params)
    return _json([_alert_out(a) for a in ctx.reader.active_alerts(ctx.clock(), site=q.site)])


def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


ROUTES = [
    Route("/api/v1/nodes", nodes),
    Route("/api/v1/latest", latest),
    Route("/api/v1/nodes/{site}/{node}/series", series),
    Route("/api/v1/alerts", alerts),
    Route("/api/v1/alerts/active", active_alerts),
    Route("/api/v1/openapi.json", openapi),
]


def _param(
    name: str, where: str, description: str, schema: dict[str, Any], required: bool = False
) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1: the paths by hand, the schemas from the pydantic models."""
    from gateway.schema import ID_PATTERN

    ident = {"type": "string", "pattern": ID_PATTERN}
    time = {"type": "string", "description": "2026-11-22 (UTC midnight) or RFC 3339 with Z or an offset"}
    site_q = _param("site", "query", "only this site", ident)
    models: dict[str, type[BaseModel]] = {
        "Node": NodeOut,
        "Latest": LatestOut,
        "Series": SeriesOut,
        "Alert": AlertOut,
        "Error": ErrorOut,
    }
    schemas: dict[str, Any] = {}
    for name, model in models.items():
        doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(doc.pop("$defs", {}))
        schemas[name] = doc

    def ok(ref: str, array: bool) -> dict[str, Any]:
        schema: dict[str, Any] = {"$ref": f"#/components/schemas/{ref}"}
        if array:
            schema = {"type": "array", "items": schema}
        bad = {
            "description": "a parameter we cannot use; `error` says which and why",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        return {
            "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
            "400": bad,
            "503": {
                "description": "the database does not answer",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        }

    paths = {
        "/api/v1/nodes": {
            "get": {
                "summary": "Every node with a stored reading: position, status, freshness",
                "parameters": [site_q],
                "responses": ok("Node", True),
            }
        },
        "/api/v1/latest": {
            "get": {
                "summary": "The latest reading of every node, with AQI and turbidity level",
                "parameters": [site_q],
                "responses": ok("Latest", True),
            }
        },
        "/api/v1/nodes/{site}/{node}/series": {
            "get": {
                "summary": "Means per bucket of each metric of one node, with the limits that apply",
                "parameters": [
                    _param("site", "path", "site id", ident, True),
                    _param("node", "path", "node id", ident, True),
                    _param("start", "query", "start (inclusive); default end − 24 h", time),
                    _param("end", "query", "end (exclusive); default now", time),
                    _param(
                        "every",
                        "query",
                        "bucket length; default: about 600 points or fewer",
                        {"type": "string", "enum": list(EVERY)},
                    ),
                    _param("metric", "query", "only this metric", {"type": "string", "enum": list(UNITS)}),
                ],
                "responses": ok("Series", False),
            }
        },
        "/api/v1/alerts": {
            "get": {
                "summary": "Alert events, newest first",
                "parameters": [
                    _param("start", "query", "default end − 30 days", time),
                    _param("end", "query", "default now", time),
                    site_q,
                    _param("node", "query", "only this node", ident),
                    _param(
                        "limit",
                        "query",
                        "at most this many events (1–1000, default 200)",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                    ),
                ],
                "responses": ok("Alert", True),
            }
        },
        "/api/v1/alerts/active": {
            "get": {
                "summary": "The latest event of every alert not cleared",
                "parameters": [site_q],
                "responses": ok("Alert", True),
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "minewatch public API",
            "version": "1",
            "description": "Read-only access to community air-dust and water-turbidity readings. "
            "Times are UTC. See docs/api.md.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
