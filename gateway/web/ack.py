"""The page an acknowledgement link opens (gateway/alerts/links.py): `/ack/<token>`.

A GET only shows what would be acknowledged, and as whom, with a button: mail scanners and chat
apps open links to preview them, and a preview must acknowledge nothing. The button POSTs the same
address; that POST is the acknowledgement. It is refused from another site (`Sec-Fetch-Site`,
`Origin`) and without the CSRF value of the visitor's cookie, and it is idempotent: the token is
spent in the same transaction that writes the ack request (the row `minewatch-gateway ack` writes,
with the token's recipient as `by`), so a second tap, a reload or a second tab finds it used and is
told what became of the first. The running gateway applies the request within about a second, as
for the CLI; the page waits for that a few seconds and says what happened. An unknown, expired or
used token, or an alert that has ended, is a plain page saying so, never an error. Every page of a
token, its outcomes too, speaks the language its recipient reads, kept with the token.

The dashboard runs in its own process; it reaches the gateway's alert state through the alert
store (`<data_dir>/alerts.sqlite`, WAL), read-only but for the ack request and the token's use.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from contract.i18n import Texts
from gateway.alerts import messages
from gateway.alerts.links import TOKEN_PATTERN, digest
from gateway.alerts.store import AckToken, AlertStore
from gateway.web.context import Context
from gateway.web.pages import render
from gateway.web.session import CSRF_COOKIE

MAX_BODY = 2048  # the form has one field
ACK_WAIT_S = 5.0  # how long the confirmation waits for the gateway to apply the request
POLL_S = 0.1
_CSRF_PATTERN = TOKEN_PATTERN


def _when(t: Texts, at: float) -> str:
    """A token's moment as every page writes a time: in the site's zone, with the zone shown."""
    return t.time(datetime.fromtimestamp(at, UTC))


def _page(request: Request, t: Texts, status: int, outcome: str, message: str, **values: Any) -> HTMLResponse:
    page = render(request, "ack.html", status, texts=t, outcome=outcome, message=message, **values)
    page.headers["cache-control"] = "no-store"  # a token's page is for its recipient only
    page.headers["x-robots-tag"] = "noindex"
    return page


def _alert(store: AlertStore, alert_id: str, t: Texts) -> dict[str, Any] | None:
    """The alert as its latest event tells it: the sentence and the details, without a way to
    acknowledge (the page is that way)."""
    events = store.events(alert_id)
    if not events:
        return None
    doc = events[-1]
    return {
        "id": alert_id,
        "severity": doc.get("severity"),
        "sentence": messages.text_of(doc, t),
        "lines": messages.details(doc, t, how_to_ack=False),
        "planned_stop": messages.is_planned_stop(doc),  # a notice: no reminders to stop
    }


def _result_page(
    request: Request, store: AlertStore, found: AckToken, t: Texts, *, just_now: bool
) -> HTMLResponse:
    """What became of a token's acknowledgement request."""
    alert = _alert(store, found.alert_id, t)
    result = store.ack_result(found.ack) if found.ack is not None else None
    if result is None:
        return _page(request, t, 202, "recorded", t("ack_link.recorded"), alert=alert)
    if result != "acknowledged":
        return _page(request, t, 200, "not-applied", t("ack_link.not_applied"), alert=alert)
    if just_now:
        return _page(request, t, 200, "done", t("ack_link.done", name=found.recipient), alert=alert)
    when = _when(t, found.used or found.created)
    used = t("ack_link.used", when=when, name=found.recipient)
    return _page(request, t, 200, "used", used, alert=alert)


def _found(request: Request) -> AckToken | None:
    """The token's record, if the address holds one of ours."""
    ctx: Context = request.app.state.ctx
    token = str(request.path_params["token"])
    if ctx.alerts is None or not TOKEN_PATTERN.match(token):
        return None
    return ctx.alerts.token(digest(token))


def _texts(request: Request, found: AckToken | None) -> Texts:
    """The words of a token's pages: its recipient's language (kept with the token), else the
    dashboard's (a token made before tokens kept one, or no token at all)."""
    ctx: Context = request.app.state.ctx
    if found is None or found.language is None or not Texts.exists(found.language):
        return ctx.texts
    return ctx.texts.speaking(found.language)


def _lookup(request: Request) -> tuple[AlertStore, str, AckToken] | HTMLResponse:
    """The store, the token's digest and its record; or the page saying why there is nothing to do."""
    ctx: Context = request.app.state.ctx
    t = ctx.texts
    store = ctx.alerts
    if store is None:
        return _page(request, t, 503, "unavailable", t("ack_link.unavailable"))
    found = _found(request)
    if found is None:
        return _page(request, t, 404, "unknown", t("ack_link.unknown"))
    return store, digest(str(request.path_params["token"])), found


def _still_open(request: Request, store: AlertStore, found: AckToken) -> HTMLResponse | None:
    """None when the token may still acknowledge; else the page saying why not."""
    ctx: Context = request.app.state.ctx
    t = _texts(request, found)
    if found.used is not None:
        return _result_page(request, store, found, t, just_now=False)
    machine = store.machine_of(found.alert_id)
    if machine is None:  # the alert ended: its links end with it
        ended = _alert(store, found.alert_id, t)
        return _page(request, t, 410, "ended", t("ack_link.ended"), alert=ended)
    if ctx.clock().timestamp() > found.expires:
        return _page(request, t, 410, "expired", t("ack_link.expired", when=_when(t, found.expires)))
    if machine.acked_by:
        alert = _alert(store, found.alert_id, t)
        return _page(request, t, 200, "already", t("ack_link.already", by=machine.acked_by), alert=alert)
    return None


def _csrf(request: Request) -> str:
    held = request.cookies.get(CSRF_COOKIE, "")
    return held if _CSRF_PATTERN.match(held) else secrets.token_urlsafe(24)


def confirm_page(request: Request) -> HTMLResponse:
    looked = _lookup(request)
    if isinstance(looked, HTMLResponse):
        return looked
    store, _, found = looked
    closed = _still_open(request, store, found)
    if closed is not None:
        return closed
    t = _texts(request, found)
    token = _csrf(request)
    page = _page(
        request,
        t,
        200,
        "confirm",
        "",
        alert=_alert(store, found.alert_id, t),
        recipient=found.recipient,
        csrf=token,
    )
    page.set_cookie(CSRF_COOKIE, token, max_age=90 * 86400, httponly=True, samesite="strict", path="/")
    return page


def _same_origin(request: Request) -> bool:
    """From this dashboard's own page. Browsers send `Sec-Fetch-Site`, which a page cannot forge:
    it must say `same-origin`. Without it (an old browser), `Origin`, when sent, must be this
    server's or `[web] public_url`'s (behind a TLS proxy). Under our `Referrer-Policy: no-referrer`
    a browser's own form POST says `Origin: null`, which is why the first test comes first."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    ctx: Context = request.app.state.ctx
    allowed = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
    if ctx.web.public_url is not None:
        public = urlsplit(str(ctx.web.public_url))
        allowed.add(f"{public.scheme}://{public.netloc}")
    return origin in allowed


async def confirm(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    t = _texts(request, _found(request))  # a refusal too is in the link's language
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_BODY:
        status = 413 if length and length.isdigit() else 411
        return _page(request, t, status, "forbidden", t("ack_link.forbidden"))
    if not _same_origin(request):
        return _page(request, t, 403, "forbidden", t("ack_link.forbidden"))
    looked = _lookup(request)
    if isinstance(looked, HTMLResponse):
        return looked
    store, token_digest, found = looked
    async with request.form(max_files=0, max_fields=4, max_part_size=MAX_BODY) as form:
        sent = form.get("csrf")
    held = request.cookies.get(CSRF_COOKIE, "")
    if not held or not isinstance(sent, str) or not secrets.compare_digest(held, sent):
        return _page(request, t, 403, "forbidden", t("ack_link.forbidden"))
    closed = _still_open(request, store, found)
    if closed is not None:
        return closed
    ack = store.use_token(token_digest, ctx.clock().timestamp())
    spent = store.token(token_digest) or found
    if ack is None:  # spent meanwhile by another tap: say what became of that one
        return _result_page(request, store, spent, t, just_now=False)
    deadline = asyncio.get_running_loop().time() + ACK_WAIT_S
    while store.ack_result(ack) is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(POLL_S)
    return _result_page(request, store, spent, t, just_now=True)


async def ack_link(request: Request) -> Response:
    if request.method == "POST":
        return await confirm(request)
    return confirm_page(request)


ROUTES = [Route("/ack/{token}", ack_link, methods=["GET", "POST"])]
