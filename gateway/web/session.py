"""The two cookies the dashboard sets, and the checks every form that writes shares.

`mw_csrf` is the visitor's CSRF token for the observation form (double submit: another site can
make a browser send the cookie but cannot read it to put it in the form). `mw_session` names a
monitor's session (gateway/observations/accounts.py); a monitor's forms carry that session's own
CSRF token. Both cookies are HttpOnly and SameSite=Strict, and Secure when the dashboard is reached
over HTTPS (behind a TLS proxy that says so in the scheme), so no script and no other site's page
can use them.
"""

from __future__ import annotations

from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import Response

from gateway.observations.accounts import SESSION_TTL, Session
from gateway.web.context import Context

CSRF_COOKIE = "mw_csrf"
SESSION_COOKIE = "mw_session"


def same_origin(request: Request) -> bool:
    """The request comes from this dashboard's own pages: a browser says so in Sec-Fetch-Site and
    Origin, which a page elsewhere cannot forge. Our `Referrer-Policy: no-referrer` makes a browser
    send `Origin: null` with a form it posts, so "null" passes only with Sec-Fetch-Site same-origin.
    Behind a reverse proxy that rewrites Host (nginx's default `proxy_set_header Host $proxy_host`),
    the scheme and Host seen here are the proxy's, not the browser's: `[web] public_url`'s origin,
    the address people reach the dashboard by, is this dashboard's own origin too."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site not in (None, "same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin == "null":
        return fetch_site == "same-origin"
    if origin is None or origin == f"{request.url.scheme}://{request.headers.get('host', '')}":
        return True
    ctx: Context = request.app.state.ctx
    return origin == public_origin(ctx.web.public_url)


def public_origin(url: AnyHttpUrl | None) -> str | None:
    """`scheme://host[:port]` of `url`, as a browser writes it in Origin (no default port)."""
    if url is None:
        return None
    default = {"http": 80, "https": 443}.get(url.scheme)
    port = "" if url.port in (None, default) else f":{url.port}"
    return f"{url.scheme}://{url.host}{port}"


def monitor_of(request: Request) -> Session | None:
    """The monitor whose live session the request's cookie names, else None."""
    ctx: Context = request.app.state.ctx
    if ctx.accounts is None:
        return None
    return ctx.accounts.session(request.cookies.get(SESSION_COOKIE, ""), ctx.clock())


def set_session(response: Response, request: Request, session: Session | None) -> None:
    """The session's cookie on `response` (None: the cookie cleared, as at logout)."""
    secure = request.url.scheme == "https"
    if session is None:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
        return
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
