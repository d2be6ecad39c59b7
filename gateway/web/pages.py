"""The HTML pages: overview, node, alert history, open-data download. Server-rendered; the only
script draws the charts and the map from data embedded in the page (one request per page)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from contract.i18n import Texts
from contract.wire import format_ts
from gateway import maintenance
from gateway.observations import records
from gateway.timerange import from_ms
from gateway.web.context import Context
from gateway.web.episodes import episodes
from gateway.web.levels import ADVICE_SOURCE_URL
from gateway.web.opendata import csv_chunks
from gateway.web.params import (
    MAX_CSV_DAYS,
    OVERVIEW_PAGE,
    AlertsQuery,
    BadRequest,
    CsvQuery,
    NodeRef,
    OverviewQuery,
    validate,
)
from gateway.web.session import monitor_of
from gateway.web.views import (
    Chart,
    NodeSummary,
    charts,
    half_open,
    hourly_for,
    overlay,
    paged,
    site_summaries,
    summaries,
)

REFRESH_S = 60
"""How often the overview, node, alerts, timeline and observations pages fetch their data again:
readings come every few minutes and the gateway's copy of the latest is at most seconds old, so a
minute is current enough without a thousand phones asking every few seconds."""
VISIT_KIND = "report.field.kind_"
"""The words of a maintenance visit's kind, shared with the report."""
OBSERVED_KIND = "observe.kind_"


def render(
    request: Request, name: str, status: int = 200, *, texts: Texts | None = None, **values: Any
) -> HTMLResponse:
    """A page in `texts` (default: the dashboard's `[web] language`; an acknowledgement link's
    page speaks its recipient's)."""
    ctx: Context = request.app.state.ctx
    t = texts or ctx.texts
    now = ctx.clock()
    page: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        name,
        {
            "t": t,
            "web": ctx.web,
            "now": now,
            "ts": format_ts,
            "age": t.ago,
            "std_name": lambda key: standard_name(t, key),
            "avg": lambda a: average_text(t, a),
            "signed_in": monitor_of(request),  # the nav's log in / log out
            **values,
        },
        status_code=status,
    )
    return page


def standard_name(t: Texts, key: str, fallback: str = "") -> str:
    """A standard's name in the reader's language (gateway/standards.py keeps the English one)."""
    return t(f"standard_name.{key}") if t.has(f"standard_name.{key}") else fallback or key


def average_text(t: Texts, average: str) -> str:
    """'24h' as people read it: "24-hour", "24 цагийн"."""
    unit = average[-1]
    period = t(f"alert.period.{unit}") if t.has(f"alert.period.{unit}") else unit
    return t("chart.average", n=average[:-1], period=period)


def limit_label(t: Texts, standard: str, average: str) -> str:
    return t("chart.limit_label", title=standard_name(t, standard), average=average_text(t, average))


def _colour(s: NodeSummary) -> str:
    level = s.aqi_level or (s.known.level if s.known else None) or s.turbidity_level
    return level.colour if level else "#666"


DOWNLOAD_LISTED = 100
"""Up to this many nodes, the download form lists each; more, it lists sites and asks for the id."""
ALERTS_SHOWN = 20
"""Active alerts listed on the overview; the rest are one link away (a thousand nodes can have
hundreds at once, and the page must stay light for a phone)."""


def overview(request: Request) -> HTMLResponse:
    """A table of sites, then one page of sensor cards (a site, an id search, `page`), and the map
    of the cards shown: with a thousand nodes, every card at once was 689 KB."""
    ctx: Context = request.app.state.ctx
    q: OverviewQuery = validate(OverviewQuery, request.query_params)
    now = ctx.clock()
    latest = ctx.latest(now)
    active, alerting = ctx.alert_counts(now)
    sites = site_summaries(latest, ctx.board, now, ctx.web.offline_after_s, alerting)
    shown = [r for r in latest if q.site is None or r.site == q.site]
    page = paged(shown, (q.page - 1) * OVERVIEW_PAGE, OVERVIEW_PAGE, q.q)
    card = request.app.state.templates.env.get_template("_macros.html").module.card
    kept = ctx.cards.page(
        page.items,
        hourly_for(ctx.reader, page.items, now, ctx.hourly),
        ctx.board,
        now,
        ctx.web.offline_after_s,
        ctx.texts.ago,
        lambda s, ago: str(card(ctx.texts, s, ago)),
        ctx.pm2_5_limits(),
    )
    nodes = [s for s, _ in kept]
    points = [
        {
            "label": ctx.texts.node_name(s.site, s.node),
            "lat": s.lat,
            "lon": s.lon,
            "colour": _colour(s),
            "offline": s.is_offline,
        }
        for s in nodes
        if s.lat is not None and s.lon is not None
    ]

    def link(offset: int | None) -> str | None:
        if offset is None:
            return None
        query = {"site": q.site or "", "q": q.q, "page": str(offset // OVERVIEW_PAGE + 1)}
        return "/?" + urlencode({k: v for k, v in query.items() if v})

    return render(
        request,
        "overview.html",
        nodes=nodes,
        cards=[Markup(html) for _, html in kept],  # rendered by _macros.html's card, escaped there
        sites=sites,
        query=q,
        page=page,
        prev_link=link(page.prev_offset),
        next_link=link(page.next_offset),
        active=active[:ALERTS_SHOWN],
        more_alerts=max(len(active) - ALERTS_SHOWN, 0),
        map_json=json.dumps(points),
        refresh_s=REFRESH_S,
        advised=any(s.aqi_level or s.known for s in nodes),  # a card shows health advice
        advice_url=ADVICE_SOURCE_URL,
    )


def node_page(request: Request) -> HTMLResponse:
    ctx: Context = request.app.state.ctx
    ref: NodeRef = validate(NodeRef, None, dict(request.path_params))
    now = ctx.clock()
    latest = ctx.latest(now, ref.site, ref.node)
    found = summaries(
        ctx.reader,
        ctx.board,
        now,
        ctx.web.offline_after_s,
        latest=latest,
        hourly_cache=ctx.hourly,
        limits=ctx.pm2_5_limits(),
    )
    if not found:  # no reading stored for it: no such node, whatever the address looks like
        message = ctx.texts("dash.unknown_node", site=ref.site, node=ref.node)
        return render(request, "error.html", 404, message=message)
    day = charts(ctx.reader, ref.site, ref.node, now, timedelta(hours=24), 300, ctx.web.standards)
    week = charts(ctx.reader, ref.site, ref.node, now, timedelta(days=7), 3600, ctx.web.standards)
    flagged = ctx.reader.flagged(ref.site, ref.node, *half_open(now - timedelta(days=7), now))
    counts: dict[str, tuple[int, Any]] = {}
    for when, flags in flagged:
        for flag in flags:
            n, _ = counts.get(flag, (0, when))
            counts[flag] = (n + 1, when)
    history = ctx.reader.alerts(
        *half_open(now - timedelta(days=30), now), site=ref.site, node=ref.node, limit=50
    )
    visits = maintenance.visits(ctx.reader, ref.site, *half_open(now - timedelta(days=30), now), [ref.node])
    visit_marks = [
        {
            "t": int(v.at.timestamp()),
            "from": int(v.flag_from.timestamp()) if v.flag_from else None,
            "to": int(v.flag_to.timestamp()) if v.flag_to else None,
            "label": ctx.texts(VISIT_KIND + v.kind),
        }
        for v in visits
    ]
    month = now - timedelta(days=30)
    observed = records.listed(ctx.reader, "accepted", month, now, site=ref.site, nodes=[ref.node])
    observed_marks = [
        {"t": int(o.at.timestamp()), "label": ctx.texts(OBSERVED_KIND + o.kind)} for o in observed
    ]

    def upstream(c: Chart, span: timedelta) -> dict[str, Any] | None:
        pair = ctx.upstream(ref.site, ref.node, c.metric)
        if pair is None:
            return None
        return {
            "node": pair.reference,
            "rule": pair.rule,
            "label": ctx.texts("chart.upstream", node=ctx.texts.node_name(ref.site, pair.reference)),
            "values": overlay(ctx.reader, ref.site, pair.reference, c, now, span),
        }

    def chart_data(items: list[Chart], span: timedelta) -> str:
        return json.dumps(
            [
                {
                    "metric": c.metric,
                    "label": ctx.texts.label(c.metric),
                    "unit": ctx.texts.unit(c.metric),
                    "times": c.times,
                    "values": c.values,
                    "flagged": c.flagged,
                    "visits": visit_marks,
                    "observed": observed_marks,
                    "limits": [
                        {"value": x.value, "label": limit_label(ctx.texts, x.standard, x.average)}
                        for x in c.limits
                    ],
                    "upstream": upstream(c, span),
                    "zone": ctx.texts.zone_name,  # the time axis in the site's zone, as the page's text
                }
                for c in items
            ]
        ).replace("</", "<\\/")

    return render(
        request,
        "node.html",
        s=found[0],
        day=day,
        week=week,
        day_json=chart_data(day, timedelta(hours=24)),
        week_json=chart_data(week, timedelta(days=7)),
        upstreams={c.metric: ctx.upstream(ref.site, ref.node, c.metric) for c in day + week},
        flag_counts=counts,
        history=episodes(history),  # as /alerts shows them: one per alert, start to end
        visits=list(reversed(visits)),
        observed=list(reversed(observed)),
        refresh_s=REFRESH_S,
    )


def alerts_page(request: Request) -> HTMLResponse:
    ctx: Context = request.app.state.ctx
    q: AlertsQuery = validate(AlertsQuery, request.query_params)
    start, end = q.bounds(ctx.clock(), timedelta(days=30), 366)
    found = ctx.reader.alerts(*half_open(start, end), site=q.site, node=q.node, limit=q.limit)
    return render(
        request,
        "alerts.html",
        alerts=found,
        episodes=episodes(found),
        start=start,
        end=end,
        refresh_s=REFRESH_S,
        live_main=True,
    )


def download_page(request: Request) -> HTMLResponse:
    ctx: Context = request.app.state.ctx
    nodes = ctx.nodes(ctx.clock())
    # A thousand-node fleet gets a list of sites and a box for the node id, not 1,000 options.
    listed = nodes if len(nodes) <= DOWNLOAD_LISTED else []
    sites = sorted({site for site, _ in nodes})
    return render(request, "download.html", nodes=listed, sites=sites, max_days=MAX_CSV_DAYS)


def download_csv(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    for key in request.query_params:
        if len(request.query_params.getlist(key)) > 1:
            raise BadRequest(f"{key}: given more than once; give it once")
    data = dict(request.query_params)
    if data.get("node", "").count("/") == 1:  # the form's select sends "site/node"
        data["site"], data["node"] = data["node"].split("/")
    data = {k: v for k, v in data.items() if v != ""}  # empty form fields mean "default"
    q: CsvQuery = validate(CsvQuery, _Params(data))
    start, end = q.bounds(ctx.clock(), timedelta(days=7), MAX_CSV_DAYS)
    rows = ctx.reader.csv_rows(*half_open(start, end), site=q.site, node=q.node)
    # one query for the visits that may mark the period; none, and every `maintenance` cell is empty
    visits = maintenance.marking(ctx.reader, q.site, start, end, [q.node] if q.node else [])

    def marks(row: dict[str, Any]) -> str:
        at = from_ms(int(row["time"]))
        return ",".join(maintenance.marks_of(visits, str(row["node"]), at, str(row["site"])))

    name = "minewatch-" + "-".join(x for x in (q.site, q.node) if x) + f"-{start:%Y%m%d}-{end:%Y%m%d}.csv"
    name = name.replace("--", "-")
    return StreamingResponse(
        csv_chunks(rows, marks if visits else None),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Link": f'<{ctx.web.licence_url}>; rel="license"',
            "X-Data-Licence": ctx.web.licence,
        },
    )


class _Params(dict[str, str]):
    """A plain dict that answers `getlist` like Starlette's QueryParams (after our own rewrite)."""

    def getlist(self, key: str) -> list[str]:
        return [self[key]]


def bad_request_page(request: Request, exc: BadRequest) -> HTMLResponse:
    ctx: Context = request.app.state.ctx
    return render(request, "error.html", 400, message=ctx.texts("error.bad_request", message=str(exc)))


ROUTES = [
    Route("/", overview),
    Route("/node/{site}/{node}", node_page),
    Route("/alerts", alerts_page),
    Route("/download", download_page),
    Route("/download/readings.csv", download_csv),
]
