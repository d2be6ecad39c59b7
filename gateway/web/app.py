"""The dashboard's ASGI app: pages, JSON API, vendored static files. Read-only (GET and HEAD) but for
the forms of residents' observations, of monitors, and of an acknowledgement link's confirmation
(gateway/web/observe.py, gateway/web/monitor.py, gateway/web/ack.py; docs/api.md).

Errors are answered, never leaked: a bad parameter is a 400 with its message, an unreachable
database a 503, an unknown address a 404, each as JSON under /api/ and as a page elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.i18n import Texts
from gateway.alerts import messages
from gateway.alerts.store import AlertStore
from gateway.config import SiteConfig, WebConfig
from gateway.observations.accounts import Accounts
from gateway.observations.records import FieldRecords
from gateway.observations.store import ObservationStore
from gateway.stores import StoreError
from gateway.stores.reader import AlertEvent, Reader
from gateway.web import ack, api, feed, monitor, observe, openapi, pages, timeline
from gateway.web.context import Context, Upstream
from gateway.web.kept import KeptAlerts, KeptLatest
from gateway.web.params import BadRequest
from gateway.web.sta.routes import error as sta_error
from gateway.web.sta.routes import make_routes as sta_routes
from gateway.web.status import StatusBoard

_HERE = Path(__file__).parent
SECURITY_HEADERS = [
    # Everything is served from here: no CDN, no inline script, no framing by other sites.
    (
        b"content-security-policy",
        b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


STATIC_CACHE = "public, max-age=86400"
"""Static files change only with a release: a phone on a slow link fetches them once a day, not on
every page (the uPlot script alone is ~50 KB)."""


class _CachedStatic(StaticFiles):
    """The vendored files, with a `Cache-Control` a phone's browser can keep them by."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["cache-control"] = STATIC_CACHE
        return response


async def _favicon(request: Request) -> Response:
    """Browsers ask for /favicon.ico whatever the page links; answer with the page's SVG icon."""
    return FileResponse(
        _HERE / "static" / "favicon.svg", media_type="image/svg+xml", headers={"cache-control": STATIC_CACHE}
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def relative_location(location: bytes) -> bytes:
    """A redirect's target as a path on this site: Starlette builds it from the request's `Host:`
    header (the slash redirects, `/static` -> `/static/`), which anyone can set, so a scheme and host
    are dropped and leading slashes kept to one (`//evil.example/` would name another host)."""
    parts = urlsplit(location.decode("latin-1"))
    path = "/" + parts.path.lstrip("/\\")
    return urlunsplit(("", "", path, parts.query, parts.fragment)).encode("latin-1")


class SecurityHeaders:
    """Our headers on every response, and every redirect relative (never to the `Host:` sent)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, relative_location(value) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
                message["headers"] = [*headers, *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/sta/"))


def alert_text(event: AlertEvent, texts: Texts) -> str:
    """An alert's sentence in the page's language, from its message id and parameters; an event
    stored before message ids shows its English `message`."""
    doc = {"message": event.message, "msg_id": event.msg_id, "msg_params": event.msg_params}
    return messages.text_of(doc, texts)


def create_app(
    web: WebConfig,
    reader: Reader,
    board: StatusBoard | None = None,
    clock: Callable[[], datetime] = _utc_now,
    keys_dir: Path | None = None,
    kept: KeptLatest | None = None,
    observations: ObservationStore | None = None,
    upstreams: tuple[Upstream, ...] = (),
    site: SiteConfig | None = None,
    records: FieldRecords | None = None,
    accounts: Accounts | None = None,
    alert_store: AlertStore | None = None,
    kept_alerts: KeptAlerts | None = None,
) -> Starlette:
    """`site`: the time zone and friendly names the pages write (gateway.toml `[site]`)."""
    texts = (site or SiteConfig()).texts(web.language)
    ctx = Context(
        web,
        reader,
        board or StatusBoard(),
        clock,
        texts,
        keys_dir=keys_dir,
        kept=kept,
        observations=observations,
        upstreams=upstreams,
        records=records,
        accounts=accounts,
        alerts=alert_store,
        kept_alerts=kept_alerts,
    )

    async def bad_request(request: Request, exc: Exception) -> Response:
        if _is_api(request):
            return JSONResponse({"error": str(exc)}, 400)
        return pages.bad_request_page(request, exc)  # type: ignore[arg-type]

    async def store_down(request: Request, exc: Exception) -> Response:
        if _is_api(request):
            return JSONResponse({"error": "the database does not answer; try again later"}, 503)
        return pages.render(request, "error.html", 503, message=texts("error.database"))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/sta/"):  # the SensorThings error form (gateway/web/sta/)
            return sta_error(exc.status_code, str(exc.detail))
        if _is_api(request):
            return JSONResponse({"error": exc.detail}, exc.status_code)
        message = texts("error.not_found") if exc.status_code == 404 else str(exc.detail)
        return pages.render(request, "error.html", exc.status_code, message=message)

    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.globals["alert_text"] = alert_text
    env.globals["readings_link"] = timeline.readings_link  # a field record's hour of readings
    app = Starlette(
        routes=[
            *pages.ROUTES,
            *feed.ROUTES,  # an Atom feed of a site's alerts, for residents without an account
            *observe.ROUTES,  # residents' observations (docs/api.md)
            *monitor.ROUTES,  # monitors: log in, moderate, record visits (the other forms that write)
            *timeline.ROUTES,  # a site's field records by time
            *ack.ROUTES,  # acknowledgement links: a confirmation page, and its POST (gateway/web/ack.py)
            *api.ROUTES,
            *openapi.ROUTES,
            *sta_routes(),  # OGC SensorThings API 1.1, read-only
            Route("/favicon.ico", _favicon),
            Mount("/static", app=_CachedStatic(directory=_HERE / "static"), name="static"),
        ],
        exception_handlers={
            BadRequest: bad_request,
            StoreError: store_down,
            HTTPException: http_error,
        },
        # gzip for a slow phone link: a node page goes from ~80 KB to ~28 KB on the wire
        middleware=[Middleware(SecurityHeaders), Middleware(GZipMiddleware, minimum_size=1000)],
    )
    app.state.ctx = ctx
    app.state.templates = Jinja2Templates(env=env)
    return app
