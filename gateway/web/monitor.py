"""The monitors' side of the dashboard (docs/api.md, "Monitor accounts"): log in and out, moderate
residents' observations, record maintenance visits.

Every form that writes passes the same gate, cheapest refusal first: a small body by its
Content-Length, this dashboard's own origin, a form content type, a live session (except the login
form), then the CSRF token: the login form's is the visitor's `mw_csrf` cookie sent back in the
form, the others' the session's own token. A refused form answers its page again with the reason,
in the gateway's language, and nothing is stored. A decision records who (the session's account),
when (the dashboard's clock) and why (required); a visit is checked as `maintenance add` checks it.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from contract.i18n import Texts
from gateway import maintenance
from gateway.observations import records
from gateway.observations.accounts import BadLogin, LockedOut, Session
from gateway.observations.records import AlreadyDecided
from gateway.timerange import QueryArgumentError
from gateway.web.context import Context
from gateway.web.observe import _token
from gateway.web.pages import render
from gateway.web.session import CSRF_COOKIE, monitor_of, same_origin, set_session

FORM_MAX = 16 * 1024
"""A monitor's form is a few short fields: anything larger is not one."""
WHY_MAX = 500
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""An observation's id: a UUID the phone made, as the form's model reads it."""


class Refused(Exception):
    """A form refused: the page shows `key` (an i18n key) and answers `status`."""

    def __init__(self, status: int, key: str, **params: Any) -> None:
        super().__init__(key)
        self.status, self.key, self.params = status, key, params


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    if ctx.accounts is None or ctx.records is None:
        raise HTTPException(404, "monitor accounts are not kept by this dashboard")
    return ctx


async def _form(request: Request) -> FormData:
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise Refused(411, "monitor.error_length")
    if int(length) > FORM_MAX:
        raise Refused(413, "monitor.error_length")
    if not same_origin(request):
        raise Refused(403, "monitor.error_origin")
    kind = request.headers.get("content-type", "")
    if not kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise Refused(415, "monitor.error_length")
    return await request.form(max_files=0, max_fields=20, max_part_size=FORM_MAX)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _session_form(request: Request, form: FormData) -> Session:
    session = monitor_of(request)
    if session is None:
        raise Refused(401, "monitor.error_session")
    if not secrets.compare_digest(_field(form, "csrf"), session.csrf):
        raise Refused(403, "monitor.error_csrf")
    return session


def _next(target: str) -> str:
    """Only a path on this site (never `//host` or a scheme): an open redirect is a phishing aid."""
    ok = target.startswith("/") and not target.startswith(("//", "/\\")) and target.isprintable()
    return target if ok else "/moderate"


# logging in and out


def login_page(request: Request, *, status: int = 200, error: str | None = None) -> HTMLResponse:
    _ctx(request)
    token = _token(request)
    page = render(
        request,
        "login.html",
        status,
        csrf=token,
        error=error,
        next=_next(request.query_params.get("next", "/moderate")),
    )
    page.set_cookie(CSRF_COOKIE, token, max_age=90 * 86400, httponly=True, samesite="strict", path="/")
    page.headers["cache-control"] = "no-store"
    return page


async def login(request: Request) -> Response:
    ctx = _ctx(request)
    if request.method == "GET":
        return login_page(request)
    texts = ctx.texts
    try:
        form = await _form(request)
        held = request.cookies.get(CSRF_COOKIE, "")
        if not held or not secrets.compare_digest(held, _field(form, "csrf")):
            raise Refused(403, "monitor.error_csrf")
        assert ctx.accounts is not None
        address = request.client.host if request.client else "?"
        name, password = _field(form, "name"), form.get("password")
        try:
            session = await run_in_threadpool(
                ctx.accounts.login, name, password if isinstance(password, str) else "", address, ctx.clock()
            )
        except BadLogin:
            raise Refused(401, "monitor.error_login") from None
        except LockedOut as exc:
            wait = max(int((exc.retry_after - ctx.clock()).total_seconds() // 60) + 1, 1)
            raise Refused(429, "monitor.error_locked", minutes=wait) from None
    except Refused as exc:
        page = login_page(request, status=exc.status, error=texts(exc.key, **exc.params))
        if exc.status == 429:
            page.headers["retry-after"] = str(exc.params.get("minutes", 1) * 60)
        return page
    done = RedirectResponse(_next(_field(form, "next")), 303)
    set_session(done, request, session)
    return done


async def logout(request: Request) -> Response:
    ctx = _ctx(request)
    try:
        form = await _form(request)
        session = _session_form(request, form)
    except Refused as exc:
        return render(request, "error.html", exc.status, message=ctx.texts(exc.key, **exc.params))
    assert ctx.accounts is not None
    ctx.accounts.logout(session.token, ctx.clock())
    done = RedirectResponse("/", 303)
    set_session(done, request, None)
    return done


# moderation


def _must_log_in(path: str) -> Response:
    return RedirectResponse(f"/login?next={path}", 303)


MODERATE_DAYS = 30
"""/moderate shows the observations made in this many days (`?days=` 1–366)."""
MODERATE_PAGE = 50
"""Observations on one page of /moderate: the pending first, then the accepted (to withdraw)."""


def _moderate_args(request: Request) -> tuple[int, int]:
    """`days` and `page` from the query, each a small positive integer (else the default)."""

    def number(name: str, default: int, top: int) -> int:
        text = request.query_params.get(name, "")
        return min(int(text), top) if text.isdigit() and int(text) >= 1 else default

    return number("days", MODERATE_DAYS, 366), number("page", 1, 10_000)


def _observer_names(ctx: Context, found: list[records.Observation]) -> dict[str, str]:
    """Who sent each observation, for the monitors only: the code's number and the name the
    operator gave it (`observers list`, `observers revoke --id N`), or the monitor's account."""
    names = {o.id: o.name for o in ctx.observations.observers()} if ctx.observations else {}
    out = {}
    for o in found:
        kind, _, who = o.observer.partition(":")
        if kind == "code" and who.isdigit():
            out[o.id] = ctx.texts("monitor.observer_code", n=who, name=names.get(int(who), "?"))
        elif kind == "monitor":
            out[o.id] = ctx.texts("monitor.observer_monitor", name=who)
    return out


def moderate_page(request: Request, *, status: int = 200, error: str | None = None) -> Response:
    ctx = _ctx(request)
    session = monitor_of(request)
    if session is None:
        return _must_log_in("/moderate")
    assert ctx.records is not None
    days, page_no = _moderate_args(request)
    since = ctx.clock() - timedelta(days=days)
    # every pending observation, whatever its age: one made weeks ago on a phone that was offline
    # arrives dated then, and selecting by that time hid it while it waited. Then the accepted ones
    # decided in the last `days`, which a monitor may withdraw. Newest first in each, paged.
    found = records.listed(ctx.records.reader)
    shown = [o for o in reversed(found) if o.state == "pending"]
    shown += [
        o
        for o in reversed(found)
        if o.state == "accepted" and o.decided_at is not None and o.decided_at > since
    ]
    pages = max(1, -(-len(shown) // MODERATE_PAGE))
    page_no = min(page_no, pages)
    on_page = shown[(page_no - 1) * MODERATE_PAGE : page_no * MODERATE_PAGE]
    decided = records.decisions_of(ctx.records.reader, [o.id for o in found])
    by_id = {o.id: o for o in found}
    recent = sorted(
        (
            (d, by_id[d.observation])
            for ds in decided.values()
            for d in ds
            if d.observation in by_id and d.at > since
        ),
        key=lambda p: p[0].at,
        reverse=True,
    )[:50]
    page = render(
        request,
        "moderate.html",
        status,
        session=session,
        pending=[o for o in on_page if o.state == "pending"],
        accepted=[o for o in on_page if o.state == "accepted"],
        observers=_observer_names(ctx, on_page),
        recent=recent,
        error=error,
        done=request.query_params.get("done"),
        days=days,
        page_no=page_no,
        pages=pages,
    )
    page.headers["cache-control"] = "no-store"
    return page


async def decide(request: Request) -> Response:
    ctx = _ctx(request)
    assert ctx.records is not None
    obs_id = str(request.path_params["id"])
    try:
        form = await _form(request)
        session = _session_form(request, form)
        decision: Any = _field(form, "decision")
        why = _field(form, "why")
        if decision not in records.DECIDED:
            raise Refused(400, "monitor.error_decision")
        if not why or len(why) > WHY_MAX or not why.replace("\n", " ").replace("\r", " ").isprintable():
            raise Refused(400, "monitor.error_why", max=WHY_MAX)
        if not _ID.match(obs_id) or await run_in_threadpool(records.find, ctx.records.reader, obs_id) is None:
            raise Refused(404, "monitor.error_no_observation")
        try:
            await run_in_threadpool(
                ctx.records.decide,
                obs_id,
                decision,
                session.monitor,
                why,
                ctx.clock(),
            )
        except AlreadyDecided:
            raise Refused(409, "monitor.error_twice") from None
    except Refused as exc:
        if exc.status == 401:
            return render(request, "error.html", 401, message=ctx.texts(exc.key))
        return moderate_page(request, status=exc.status, error=ctx.texts(exc.key, **exc.params))
    return RedirectResponse(f"/moderate?done={obs_id}", 303)


# maintenance visits


def _at(text: str, t: Texts) -> datetime | None:
    """A form's `datetime-local` value, read in the site's zone (`[site] timezone`, which the form
    names), as UTC: a monitor types the time on the clock on the wall."""
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise Refused(400, "monitor.error_time") from None
    return (at.replace(tzinfo=t.zone) if at.tzinfo is None else at).astimezone(UTC)


def visit_page(request: Request, *, status: int = 200, error: str | None = None) -> Response:
    ctx = _ctx(request)
    session = monitor_of(request)
    if session is None:
        return _must_log_in("/maintenance")
    now = ctx.clock()
    page = render(
        request,
        "visit.html",
        status,
        session=session,
        nodes=sorted(ctx.nodes(now)),
        kinds=maintenance.KINDS,
        error=error,
        default_at=f"{ctx.texts.local(now):%Y-%m-%dT%H:%M}",
        zone=ctx.texts.zone_of(now),
    )
    page.headers["cache-control"] = "no-store"
    return page


async def add_visit(request: Request) -> Response:
    ctx = _ctx(request)
    assert ctx.records is not None
    try:
        form = await _form(request)
        session = _session_form(request, form)
        now = ctx.clock()
        place = _field(form, "node").split("/")
        if len(place) != 2 or tuple(place) not in set(ctx.nodes(now)):
            raise Refused(400, "monitor.error_node")
        at = _at(_field(form, "at"), ctx.texts)
        if at is None:
            raise Refused(400, "monitor.error_time")
        visit = maintenance.Visit(
            site=place[0],
            node=place[1],
            kind=_field(form, "kind"),
            at=at,
            by=_field(form, "by") or session.monitor,
            note=_field(form, "note"),
            flag_from=_at(_field(form, "flag_from"), ctx.texts),
            flag_to=_at(_field(form, "flag_to"), ctx.texts),
            recorded=now,
            entered_by=session.monitor,
        )
        try:
            maintenance.check(visit, now)  # what `maintenance add` refuses, refused here
            await run_in_threadpool(maintenance.record, ctx.records.store, ctx.records.reader, visit)
        except maintenance.AlreadyRecorded:
            raise Refused(409, "monitor.error_visit_twice") from None
        except QueryArgumentError as exc:
            raise Refused(400, "monitor.error_visit", detail=_visit_detail(str(exc), ctx)) from None
    except Refused as exc:
        if exc.status == 401:
            return render(request, "error.html", 401, message=ctx.texts(exc.key))
        return visit_page(request, status=exc.status, error=ctx.texts(exc.key, **exc.params))
    return RedirectResponse(f"/node/{visit.site}/{visit.node}#maintenance", 303)


_VISIT_RULES = (
    ("--kind", "monitor.visit_kind"),
    ("in the future", "monitor.visit_future"),
    ("--by", "monitor.visit_by"),
    ("--note", "monitor.visit_note"),
    ("go together", "monitor.visit_window"),
    ("--flag-to must be after", "monitor.visit_window"),
    ("within", "monitor.visit_reach"),
)


def _visit_detail(message: str, ctx: Context) -> str:
    """The rule `maintenance.check` named, in the page's language (its own words are the CLI's)."""
    for needle, key in _VISIT_RULES:
        if needle in message:
            return ctx.texts(key, days=maintenance.REACH.days, max=maintenance.NOTE_MAX)
    return ""


ROUTES = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/moderate", moderate_page),
    Route("/moderate/{id}", decide, methods=["POST"]),
    Route("/maintenance", visit_page),
    Route("/maintenance/new", add_visit, methods=["POST"]),
]
