"""The hub's web server (`minewatch-gateway hub serve`): the dashboard, exports, reports and
evidence bundles for every site a reader may see, and the public list of agreements in force.

Who reads is decided per request: an API token (`Authorization: Bearer mwh_...`, or the cookie a
person's browser gets from `/login`) names one jurisdiction, and the request is answered by that
jurisdiction's own dashboard, whose reader queries as the jurisdiction's database role
(gateway/stores/postgres_reader.py): row-level security decides every row it sees. A request
without a token is answered as the jurisdiction `[public] jurisdiction` (hub.toml) names, if any —
what agreements share with it is what is public — and otherwise only the public pages are
served: `/agreements` (HTML and JSON), `/login`, the static files. A malformed, unknown or revoked
token is refused (401), never read as anyone.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from contract.i18n import Texts
from gateway import export
from gateway.config import WebConfig
from gateway.hub import outputs
from gateway.stores.base import StoreError
from gateway.stores.postgres_access import HubAccess
from gateway.stores.postgres_access import Reader as TokenReader
from gateway.stores.postgres_hub import HubStoreError
from gateway.stores.postgres_reader import PostgresReader
from gateway.timerange import QueryArgumentError
from gateway.trust.registry import KeyRecord
from gateway.web.app import SECURITY_HEADERS, SecurityHeaders, create_app

_HERE = Path(__file__).parent
_WEB = _HERE.parent / "web"
COOKIE = "minewatch_hub_token"
PUBLIC_PATHS = ("/agreements", "/agreements.json", "/login", "/logout", "/favicon.ico")


def _now() -> datetime:
    return datetime.now(UTC)


def presented_token(scope: Scope) -> str | None:
    """The token of a request: its `Authorization: Bearer` header, else the login cookie."""
    headers = dict(scope.get("headers") or [])
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer ":
        return str(auth[7:].strip())
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return str(value)
    return None


class Jurisdictions:
    """One dashboard app per jurisdiction, made on its first request, each over a reader of its own
    role; kept for the server's life (their connections are few and reused)."""

    def __init__(self, conninfo: str, web: WebConfig, clock: Callable[[], datetime]) -> None:
        self._conninfo, self._web, self._clock = conninfo, web, clock
        self._apps: dict[str, ASGIApp] = {}
        self._readers: list[PostgresReader] = []
        self._lock = threading.Lock()

    def app(self, jurisdiction: str, role: str) -> ASGIApp:
        with self._lock:
            app = self._apps.get(role)
            if app is None:
                reader = PostgresReader(self._conninfo, role)
                self._readers.append(reader)
                app = _jurisdiction_app(jurisdiction, reader, self._web, self._clock)
                self._apps[role] = app
            return app

    def close(self) -> None:
        for reader in self._readers:
            reader.close()


def _jurisdiction_app(
    jurisdiction: str, reader: PostgresReader, web: WebConfig, clock: Callable[[], datetime]
) -> ASGIApp:
    """The dashboard as the site gateway serves it, over the hub's reader, with the hub's own
    machine endpoints in front: the keys the role may see, and export, report and evidence bundle
    of one site."""
    dashboard = create_app(web, reader, clock=clock)

    async def whoami(request: Request) -> Response:
        return JSONResponse({"jurisdiction": jurisdiction, "role": reader.role})

    async def keys(request: Request) -> Response:
        site = request.query_params.get("site")
        records = await run_in_threadpool(reader.key_records, site)
        return JSONResponse([KeyRecord.model_validate(r).public_doc() for r in records])

    async def export_csv(request: Request) -> Response:
        fmt = request.query_params.get("format", "csv")
        return await _file(request, lambda req, out: outputs.export_file(reader, req, out, fmt), "csv")

    async def report_html(request: Request) -> Response:
        return await _file(request, lambda req, out: outputs.report_file(reader, req, out, clock()), "html")

    async def evidence_zip(request: Request) -> Response:
        return await _file(request, lambda req, out: outputs.evidence_file(reader, req, out, clock()), "zip")

    async def _file(
        request: Request, make: Callable[[export.ExportRequest, Path], object], kind: str
    ) -> Response:
        q = request.query_params
        work = Path(tempfile.mkdtemp(prefix="minewatch-hub-"))
        try:
            req = outputs.request(q.get("site"), q.getlist("node"), q.get("start"), q.get("end"),
                                  q.get("metrics"), q.get("average"))  # fmt: skip
            await run_in_threadpool(outputs.check_known, reader, req)
            out = work / f"{req.site}-{req.start:%Y%m%d}-{req.end:%Y%m%d}.{kind}"
            await run_in_threadpool(make, req, out)
        except QueryArgumentError as exc:
            outputs.remove(work)
            return JSONResponse({"error": str(exc)}, 400)
        except BaseException:
            outputs.remove(work)
            raise
        media = {
            "csv": "text/csv; charset=utf-8",
            "html": "text/html; charset=utf-8",
            "zip": "application/zip",
        }
        return FileResponse(
            out, media_type=media[kind], filename=out.name, background=BackgroundTask(outputs.remove, work),
            headers={"X-Jurisdiction": jurisdiction},
        )  # fmt: skip

    async def store_down(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "the hub database does not answer; try again later"}, 503)

    own = Starlette(
        routes=[
            Route("/api/v1/whoami", whoami),
            Route("/api/v1/keys", keys),
            Route("/api/v1/export.csv", export_csv),
            Route("/api/v1/report.html", report_html),
            Route("/api/v1/evidence.zip", evidence_zip),
        ],
        exception_handlers={StoreError: store_down},
        middleware=[Middleware(SecurityHeaders)],
    )
    paths = {str(getattr(r, "path", "")) for r in own.routes}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # the hub's own endpoints, else the dashboard (which adds its own headers and handlers)
        await (own if scope.get("path") in paths else dashboard)(scope, receive, send)

    return app


class _Dispatch:
    """The public pages; else token -> jurisdiction -> its dashboard; no token: the public
    jurisdiction's, or a refusal."""

    def __init__(
        self, access: HubAccess, apps: Jurisdictions, public: str | None, texts: Texts, pages: ASGIApp
    ) -> None:
        self._access, self._apps, self._public, self._texts = access, apps, public, texts
        self._pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = str(scope.get("path", ""))
        if path in PUBLIC_PATHS or path.startswith("/static/"):
            await self._pages(scope, receive, send)
            return
        try:
            app, refusal = await self._app_for(scope)
        except HubStoreError:
            app, refusal = None, (503, "the hub database does not answer; try again later")
        if app is not None:
            await app(scope, receive, send)
        elif refusal is not None:
            await _answer(scope, receive, send, *refusal)
        else:
            await RedirectResponse("/agreements", 303)(scope, receive, send)

    async def _app_for(self, scope: Scope) -> tuple[ASGIApp | None, tuple[int, str] | None]:
        """The app that answers the request, or why not (status, message); neither: the public
        front page, which is the list of agreements."""
        token = presented_token(scope)
        if token is not None:
            who: TokenReader | None = await run_in_threadpool(self._access.reader_of, token)
            if who is None:
                return None, (401, self._texts("hub_web.bad_token"))
            return self._apps.app(who.jurisdiction, who.role), None
        if self._public is not None:
            role = await run_in_threadpool(self._access.role_of, self._public)
            if role is None:
                return None, (503, self._texts("hub_web.no_public", file="hub.toml [public]"))
            return self._apps.app(self._public, role), None
        if scope.get("path") == "/":
            return None, None
        message = self._texts(
            "hub_web.token_needed", header="Authorization: Bearer", login="/login", agreements="/agreements"
        )
        return None, (401, message)


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    """A refusal, as JSON under /api/ and /sta/, else as a short page pointing to /login."""
    path = str(scope.get("path", ""))
    headers = {"WWW-Authenticate": 'Bearer realm="minewatch-hub"'} if status == 401 else {}
    headers.update({k.decode(): v.decode() for k, v in SECURITY_HEADERS})
    if path.startswith(("/api/", "/sta/")):
        response: Response = JSONResponse({"error": message}, status, headers=headers)
    else:
        response = HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>{status}</title><p>{_escape(message)}</p>"
            f'<p><a href="/login">/login</a> · <a href="/agreements">/agreements</a></p>',
            status,
            headers=headers,
        )
    await response(scope, receive, send)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def create_hub_app(
    conninfo: str, web: WebConfig, public: str | None = None, clock: Callable[[], datetime] = _now
) -> tuple[Starlette, Callable[[], None]]:
    """The hub's app, and what closes its connections. `public`: the jurisdiction whose view a
    request without a token gets (None: only the public pages)."""
    texts = Texts(web.language)
    access = HubAccess(conninfo)
    apps = Jurisdictions(conninfo, web, clock)
    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]))

    def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = env.get_template(name).render(t=texts, web=web, now=clock(), **values)
        return HTMLResponse(html, status)

    async def agreements_page(request: Request) -> Response:
        rows = await run_in_threadpool(access.agreements, clock())
        return page("agreements.html", agreements=rows)

    async def agreements_json(request: Request) -> Response:
        rows = await run_in_threadpool(access.agreements, clock())
        return JSONResponse({"generated": clock().isoformat().replace("+00:00", "Z"), "agreements": rows})

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return page("login.html")
        form = await request.form()
        token = str(form.get("token") or "").strip()
        who = await run_in_threadpool(access.reader_of, token)
        if who is None:
            return page("login.html", 401, error=texts("hub_web.bad_token"))
        response = RedirectResponse("/", 303)
        secure = request.url.scheme == "https"
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/agreements", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def favicon(request: Request) -> Response:
        return FileResponse(_WEB / "static" / "favicon.svg", media_type="image/svg+xml")

    async def store_down(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "the hub database does not answer; try again later"}, 503)

    public_pages = Starlette(
        routes=[
            Route("/agreements", agreements_page),
            Route("/agreements.json", agreements_json),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout),
            Route("/favicon.ico", favicon),
            Mount("/static", app=StaticFiles(directory=_WEB / "static"), name="static"),
        ],
        exception_handlers={HubStoreError: store_down},
        middleware=[Middleware(SecurityHeaders)],  # a jurisdiction's dashboard adds its own
    )
    app = Starlette(routes=[Mount("", app=_Dispatch(access, apps, public, texts, public_pages))])

    def close() -> None:
        apps.close()
        access.close()

    return app, close
