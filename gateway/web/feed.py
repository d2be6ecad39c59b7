"""An Atom 1.0 feed of a site's alerts, so residents can follow them in any feed reader without an
account (RFC 4287). Built with the standard library's ElementTree: every text is escaped by it.

Links are relative paths (resolved against the feed's own address, RFC 4287 §3.5 and RFC 3986), never
built from the request's `Host:` header, which anyone can set (as the redirects in app.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contract.wire import format_ts
from gateway.alerts import messages
from gateway.stores.reader import AlertEvent
from gateway.web.context import Context
from gateway.web.params import SiteRef, validate
from gateway.web.views import half_open

ATOM = "http://www.w3.org/2005/Atom"
FEED_DAYS = 30
FEED_ENTRIES = 50
"""The newest alerts of the last 30 days: a feed reader polls, it does not page back."""
TAG = "tag:minewatch,2026:"
"""Ids are tag URIs (RFC 4151): permanent whatever host name the gateway is reached by."""

ET.register_namespace("", ATOM)


def _add(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{name}", attrs)
    element.text = text
    return element


def _doc(e: AlertEvent) -> dict[str, object]:
    """A stored event as the message renderers read an event's JSON (gateway/alerts/messages.py)."""
    params = messages.params_of_row(e.msg_params)
    return {
        "id": e.alert_id,
        "message": e.message,
        "msg_id": e.msg_id,
        "msg_params": params,
        "severity": e.severity or "",
        "state": e.state,
        "rule": e.rule,
        "site": e.site,  # the subject names the node by its friendly name, which needs its site
        "node": e.node,
        "metric": e.metric,
        "average": e.average,
        "value": e.value,
        "limit": e.limit,
        "unit": e.unit,
        "started": format_ts(e.started) if e.started else None,
        "ended": format_ts(e.ended) if e.ended else None,
        "acked_by": e.acked_by,
        "standard": params.get("standard"),  # the limit's source, as the rule named it
    }


def atom(site: str, events: list[AlertEvent], now: datetime, ctx: Context) -> bytes:
    """The feed document; `updated` is the newest alert's time (or `now` when there is none)."""
    t = ctx.texts
    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": t("lang")})
    _add(feed, "id", f"{TAG}site/{site}/alerts")
    _add(feed, "title", t("dash.feed_title", site=t.site_name(site)))
    _add(feed, "subtitle", t("dash.feed_subtitle", days=FEED_DAYS))
    _add(feed, "updated", format_ts(events[0].time if events else now))
    _add(feed, "link", rel="self", type="application/atom+xml", href=f"/sites/{site}/alerts.atom")
    _add(feed, "link", rel="alternate", type="text/html", href=f"/alerts?site={site}")
    author = _add(feed, "author")
    _add(author, "name", ctx.web.attribution)
    _add(feed, "rights", ctx.web.licence)
    for e in events:
        entry = _add(feed, "entry")
        stamp = int(e.time.timestamp() * 1000)
        doc = _doc(e)
        _add(entry, "id", f"{TAG}alert/{e.site}/{e.node}/{e.rule}/{e.state}/{stamp}")
        _add(entry, "title", messages.subject(doc, t))
        _add(entry, "updated", format_ts(e.time))
        _add(entry, "link", rel="alternate", type="text/html", href=f"/node/{e.site}/{e.node}")
        sentence = messages.text_of(doc, t)
        _add(entry, "summary", sentence)
        # What the messages carry under the sentence (the alert id, value and limit with their
        # source, the place, since when, who acknowledged), one line each; a feed reader cannot
        # acknowledge, so not how to.
        lines = messages.details(doc, t, how_to_ack=False) if e.alert_id else []
        _add(entry, "content", "\n".join([sentence, "", *lines]) if lines else sentence, type="text")
        if e.severity and t.has(f"alert.severity.{e.severity}"):
            _add(entry, "category", term=e.severity, label=t(f"alert.severity.{e.severity}"))
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def site_alerts(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    ref: SiteRef = validate(SiteRef, None, dict(request.path_params))
    now = ctx.clock()
    events = ctx.reader.alerts(
        *half_open(now - timedelta(days=FEED_DAYS), now), site=ref.site, limit=FEED_ENTRIES
    )
    return Response(atom(ref.site, events, now, ctx), media_type="application/atom+xml; charset=utf-8")


ROUTES = [Route("/sites/{site}/alerts.atom", site_alerts)]
