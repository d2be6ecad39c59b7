"""Residents' observations through the dashboard (docs/api.md, "Observations"): the form, the
submission, and what is public once a monitor accepted it.

Viewing needs no account; submitting needs an observer code (`minewatch-gateway observers add`)
or a monitor's session (gateway/web/monitor.py).
The submission is guarded in the order a cheap attack is cheapest to refuse: the body's size from
its Content-Length (uvicorn never reads past it), a cross-site origin, the CSRF token (a cookie and
the same value in the form: another site can make a browser send the cookie but cannot read it to
put it in the form), the number of photos, the code, its rate, then the fields and the photos (up
to MAX_PHOTOS, each at most photos.MAX_BYTES and all at most photos.MAX_TOTAL_BYTES), each of which
Pillow must read as a picture and which is re-encoded without its metadata; one refused refuses
the observation, and nothing is stored. Text holding markup (a tag) is refused; the text is stored
as typed and escaped wherever it is shown. Nothing is public until a monitor accepts it
(`observations accept`, or the dashboard's /moderate). The observation is a point in InfluxDB
(gateway/observations/records.py).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from contract.wire import ID_PATTERN
from gateway.observations import near, photos, records
from gateway.observations.records import KINDS, MAX_PHOTOS, PLACES, DecisionRecord, FieldRecords, Observation
from gateway.observations.store import RATE_PER_HOUR, ObservationStore, RateLimited, UnknownCode
from gateway.timerange import format_time
from gateway.web.api import paged_json
from gateway.web.context import Context
from gateway.web.entries import dumps
from gateway.web.pages import REFRESH_S, render
from gateway.web.params import NodesQuery, validate
from gateway.web.session import CSRF_COOKIE, monitor_of, same_origin
from gateway.web.views import page_of

MAX_BODY = photos.MAX_TOTAL_BYTES + 64 * 1024  # the photos and the form's text fields
TEXT_MAX = 1000
MARKUP = re.compile(r"<\s*[A-Za-z/!?]")
"""A tag, a comment or a declaration begins so. A resident describing what they saw writes none;
"PM2.5 < 35" and "<5 m" stay words. Refused at the form, and escaped wherever a text is shown
all the same (a record written before this check, or by hand)."""
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class Submission(BaseModel):
    """The form's fields; the photos come apart."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: uuid.UUID  # made by the phone, so a submission its queue sends twice is stored once
    kind: str
    text: str = Field(default="", max_length=TEXT_MAX)
    at: datetime | None = None
    # with no `at`: seen this many seconds before it arrived, counted on the phone, so a queued
    # observation keeps its moment however wrong the phone's clock is (the gateway's clock is used)
    age_s: float | None = Field(default=None, ge=0, le=30 * 86400)
    site: str | None = Field(default=None, pattern=ID_PATTERN)
    node: str | None = Field(default=None, pattern=ID_PATTERN)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    place: str | None = None  # with a position: "position" (the phone's) or "map" (a point chosen)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"one of {', '.join(KINDS)}")
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.replace("\n", " ").replace("\r", " ").replace("\t", " ").isprintable():
            raise ValueError("control characters are not allowed")
        if MARKUP.search(value):
            raise ValueError("markup such as <script> or <img> is not taken: write the text without tags")
        return value

    @field_validator("at", mode="before")
    @classmethod
    def _empty_at(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("site", "node", "lat", "lon", "place", "age_s", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _where(self) -> Submission:
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("at: give a time with its offset (the phone sends UTC)")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        if (self.node is None) != (self.site is None):
            raise ValueError("site and node go together")
        if self.node is None and self.lat is None:
            raise ValueError("say where: a node, or a position")
        if self.place is not None and self.place not in PLACES:
            raise ValueError(f"place: one of {', '.join(PLACES)}")
        if self.place is not None and (self.node is None if self.place == "node" else self.lat is None):
            raise ValueError("place: it must name what is given (a node, or a position)")
        return self

    def where(self) -> str:
        return self.place or ("node" if self.node is not None else "position")


def _store(request: Request) -> ObservationStore:
    ctx: Context = request.app.state.ctx
    if ctx.observations is None or ctx.records is None:
        raise HTTPException(404, "observations are not kept by this dashboard")
    return ctx.observations


def _records(request: Request) -> FieldRecords:
    ctx: Context = request.app.state.ctx
    _store(request)
    assert ctx.records is not None
    return ctx.records


def _token(request: Request) -> str:
    """The visitor's CSRF token: the one its cookie already holds (so a form the phone kept
    offline still matches), else a new one."""
    held = request.cookies.get(CSRF_COOKIE, "")
    return held if _TOKEN.match(held) else secrets.token_urlsafe(24)


def form_page(request: Request) -> HTMLResponse:
    ctx: Context = request.app.state.ctx
    _store(request)
    token = _token(request)
    nodes = sorted(ctx.nodes(ctx.clock()))
    placed = [
        {"site": site, "node": node, "lat": st.lat, "lon": st.lon}
        for site, node in nodes
        if (st := ctx.board.get(site, node)) is not None and st.lat is not None and st.lon is not None
    ]
    monitor = monitor_of(request)
    page = render(
        request,
        "observe.html",
        kinds=KINDS,
        max_photos=MAX_PHOTOS,
        nodes=nodes,
        csrf=token,
        map_json=json.dumps(placed).replace("</", "<\\/"),
        monitor=monitor.monitor if monitor else None,
        rate_per_hour=RATE_PER_HOUR,
    )
    page.set_cookie(CSRF_COOKIE, token, max_age=90 * 86400, httponly=True, samesite="strict", path="/")
    page.headers["cache-control"] = "no-store"
    return page


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


async def _known(field: FieldRecords, sent: object) -> Response | None:
    """The answer to an id already stored ("already received"), else None."""
    try:
        obs_id = str(uuid.UUID(sent)) if isinstance(sent, str) else ""
    except ValueError:
        return None
    if not obs_id or await run_in_threadpool(records.find, field.reader, obs_id) is None:
        return None
    return JSONResponse(SubmittedOut(id=obs_id, state="already received").model_dump(), 200)


async def submit(request: Request) -> Response:
    """A submission; the rate slot its code claimed is given back unless it was stored."""
    claimed: list[int] = []
    stored = False
    try:
        answer = await _submit(request, claimed)
        stored = answer.status_code == 201
        return answer
    finally:
        if not stored and claimed and (codes := request.app.state.ctx.observations) is not None:
            codes.release(claimed[0])


async def _submit(request: Request, claimed: list[int]) -> Response:
    store = _store(request)
    field = _records(request)
    ctx: Context = request.app.state.ctx
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return _refuse(411, "send the form with its length")
    if int(length) > MAX_BODY:
        return _refuse(413, f"at most {MAX_BODY // 1024} KB: the page makes photos smaller")
    if not same_origin(request):
        return _refuse(403, "only this dashboard's own form may submit")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _refuse(415, "send multipart/form-data, as the form does")
    try:
        # one file more than allowed is parsed, so that too many are refused with our own words
        # (Starlette's limit answers in its own) before anything is read into memory whole
        form = await request.form(max_files=MAX_PHOTOS + 1, max_fields=20, max_part_size=64 * 1024)
    except HTTPException as exc:
        return _refuse(400, f"the form could not be read: {exc.detail}")
    try:
        token = request.cookies.get(CSRF_COOKIE, "")
        sent = form.get("csrf")
        if not token or not isinstance(sent, str) or not secrets.compare_digest(token, sent):
            return _refuse(403, "the form has expired: open it again")
        uploads = [u for u in form.getlist("photo") if isinstance(u, UploadFile) and u.filename]
        if len(uploads) > MAX_PHOTOS:
            return _refuse(400, f"photo: at most {MAX_PHOTOS} photos in one observation")
        # an id stored already answers so whatever its code's state now (revoked, at its limit):
        # the phone resends when a reply was lost, and must not show a stored one as refused
        if (known := await _known(field, form.get("id"))) is not None:
            return known
        code = form.get("code")
        now = ctx.clock()
        monitor = monitor_of(request)
        code_id: int | None = None
        if monitor is not None and not code:  # a monitor logged in needs no code, and has no rate
            observer = f"monitor:{monitor.monitor}"
        else:
            try:
                code_id = store.observer_of(code if isinstance(code, str) else "")
                claimed.append(store.claim(code_id, now))  # counted and taken at once
            except UnknownCode as exc:
                return _refuse(401, str(exc))
            except RateLimited as exc:
                return _refuse(429, str(exc))
            observer = f"code:{code_id}"
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            sub = Submission.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "form"
            return _refuse(400, f"{where}: {first['msg']}")
        at = sub.at or now - timedelta(seconds=sub.age_s or 0)
        if at > now + timedelta(minutes=5) or at < now - timedelta(days=30):
            return _refuse(400, "at: within the last 30 days, not in the future")
        received: list[bytes] = []
        for n, upload in enumerate(uploads, 1):
            data = await upload.read(photos.MAX_BYTES + 1)
            if len(data) > photos.MAX_BYTES:
                return _refuse(413, f"photo {n}: the photo is too large")
            received.append(data)
        if sum(map(len, received)) > photos.MAX_TOTAL_BYTES:
            return _refuse(
                413, f"the photos are too large together: at most {photos.MAX_TOTAL_BYTES // 1024} KB"
            )
    finally:
        await form.close()
    clean: list[bytes] = []
    for n, data in enumerate(received, 1):
        try:
            clean.append(await run_in_threadpool(photos.clean, data))  # seconds of CPU: not on the loop
        except photos.NotAnImage as exc:
            return _refuse(415, f"photo {n}: {exc}" if len(received) > 1 else str(exc))
    obs = Observation(
        id=str(sub.id),
        observer=observer,
        kind=sub.kind,
        text=sub.text,
        at=at,
        site=sub.site,
        node=sub.node,
        lat=sub.lat,
        lon=sub.lon,
        place=sub.where(),
        received=now,
        photo_received_sha256=None,
        photo_sha256=None,
        photos_received_sha256=tuple(photos.sha256(d) for d in received),
        photos_sha256=tuple(photos.sha256(d) for d in clean),
        state="pending",
    )
    if sub.site is None:  # a position: the nearest node's site (and node), else the only site
        obs = near.attach(obs, ctx.board, ctx.nodes(now))
    if not await run_in_threadpool(field.add, obs, clean):
        return JSONResponse(SubmittedOut(id=obs.id, state="already received").model_dump(), 200)
    done = SubmittedOut(
        id=obs.id,
        state="pending",
        photo_received_sha256=obs.photo_received_sha256,
        photos_received_sha256=list(obs.photos_received_sha256),
    )
    return JSONResponse(done.model_dump(), 201)


class DecisionOut(BaseModel):
    """One monitor's decision, as anyone may see it: the monitor is named, the observer never."""

    decision: str
    by: str
    at: str  # RFC 3339 UTC
    why: str


class ObservationOut(BaseModel):
    """An observation a monitor accepted, as anyone may see it (the observer is not named)."""

    id: str
    kind: str
    text: str
    at: str  # RFC 3339 UTC: when it was seen
    site: str | None
    node: str | None
    lat: float | None
    lon: float | None
    place: str  # "node", "position" (the phone's) or "map" (a point chosen on the site's map)
    near_node: str | None = None  # a position's nearest node of `site` within 2 km, else null
    photo: str | None  # the first photo's path on this server, re-encoded without metadata
    photo_sha256: str | None  # of the first photo served
    photos: list[str]  # every photo's path, in the order sent (the first is `photo`)
    photos_sha256: list[str]  # of each photo served, in the same order
    accepted_by: str | None
    accepted_at: str | None
    why: str | None  # the accepting monitor's reason
    decisions: list[DecisionOut] = []  # every decision on it, oldest first (who, when, why)


class SubmittedOut(BaseModel):
    id: str
    state: Literal["pending", "already received"]
    photo_received_sha256: str | None = None  # of the bytes the gateway received (the first photo)
    photos_received_sha256: list[str] = []  # of each photo's bytes, in the order sent


def photo_paths(o: Observation) -> list[str]:
    """Where this server serves each of the observation's photos (the first also as photo.jpg)."""
    return [f"/observations/{o.id}/photos/{n}.jpg" for n in range(1, len(o.photos_sha256) + 1)]


def public_doc(o: Observation, decided: Sequence[DecisionRecord] = ()) -> dict[str, Any]:
    return ObservationOut(
        id=o.id,
        kind=o.kind,
        text=o.text,
        at=format_time(o.at),
        site=o.site,
        node=o.node,
        lat=o.lat,
        lon=o.lon,
        place=o.place,
        near_node=o.near_node,
        photo=f"/observations/{o.id}/photo.jpg" if o.photo_sha256 else None,
        photo_sha256=o.photo_sha256,
        photos=photo_paths(o),
        photos_sha256=list(o.photos_sha256),
        accepted_by=o.decided_by,
        accepted_at=format_time(o.decided_at) if o.decided_at else None,
        why=o.why,
        decisions=[
            DecisionOut(decision=d.decision, by=d.by, at=format_time(d.at), why=d.why) for d in decided
        ],
    ).model_dump()


async def observations_api(request: Request) -> Response:
    if request.method == "POST":
        return await submit(request)
    field = _records(request)
    q: NodesQuery = validate(NodesQuery, request.query_params)
    # a page of the accepted ones, oldest first; the total and the next page in the headers
    page = page_of(records.listed(field.reader, "accepted", site=q.site), q.offset, q.limit)
    decided = records.decisions_of(field.reader, [o.id for o in page.items]) if page.items else {}
    body = dumps([public_doc(o, decided.get(o.id, [])) for o in page.items]).encode()
    return paged_json(request, page, body)


def observations_page(request: Request) -> HTMLResponse:
    accepted = list(reversed(records.listed(_records(request).reader, "accepted")))
    return render(request, "observations.html", observations=accepted, refresh_s=REFRESH_S)


def photo(request: Request) -> Response:
    field = _records(request)
    found = records.find(field.reader, str(request.path_params["id"]))
    # a monitor sees a pending one's photo to decide on it; anyone else only an accepted one's
    shown = found is not None and (found.state == "accepted" or monitor_of(request) is not None)
    n = int(request.path_params.get("n", 1))
    path = field.photo(found, n) if found is not None and shown else None
    if path is None or not path.exists():
        return _refuse(404, "no such photo")
    if found is None or found.state != "accepted":
        return FileResponse(path, media_type="image/jpeg", headers={"cache-control": "no-store"})
    # an accepted photo may be withdrawn ("a face in the photo"): a browser or proxy keeps it, but
    # asks each time (no-cache) with its hash (the ETag), so it costs a 304 unchanged and is gone
    # (404) as soon as a monitor withdraws it, where a max-age kept it served for a day
    etag = f'"{path.stem}"'
    headers = {"cache-control": "no-cache", "etag": etag}
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="image/jpeg", headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match names `etag` (weakly compared, as RFC 9110 13.1.2 asks) or is `*`."""
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def service_worker(request: Request) -> Response:
    """Served from the root so that it may keep the form for a phone without signal."""
    text = resources.files("gateway.web").joinpath("static/observe-sw.js").read_text("utf-8")
    return Response(text, media_type="text/javascript", headers={"cache-control": "no-cache"})


ROUTES = [
    Route("/observe", form_page),
    Route("/observations", observations_page),
    Route("/observations/{id}/photo.jpg", photo),  # the first, as before several were taken
    Route("/observations/{id}/photos/{n:int}.jpg", photo),
    Route("/api/v1/observations", observations_api, methods=["GET", "POST"]),
    Route("/observe-sw.js", service_worker),
]
