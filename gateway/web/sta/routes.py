"""The SensorThings API 1.1 routes under /sta/v1.1 (read-only; docs/api.md, "SensorThings API").

Every failure is answered in the standard's form, `{"code": 400, "type": "error", "message": ...}`:
400 for a query this service cannot answer, 404 for no such entity, 503 when the database does
not answer. The catalogue of Things and Datastreams costs a few queries per metric, so it is kept
for `CATALOGUE_TTL_S`; readings are always read fresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway import maintenance
from gateway.observations import records
from gateway.stores import StoreError
from gateway.web.context import Context
from gateway.web.sta.entities import Catalogue, Documents
from gateway.web.sta.filter import QueryError
from gateway.web.sta.options import Options, parse
from gateway.web.sta.service import SETS, NotFound, query_of
from gateway.web.sta.service import Request as StaRequest

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

PREFIX = "/sta/v1.1"
CATALOGUE_TTL_S = 30.0
CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
]


class CatalogueCache:
    """The catalogue, rebuilt when older than `ttl_s` by `monotonic` (a parameter for tests)."""

    def __init__(
        self, ttl_s: float = CATALOGUE_TTL_S, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._built: tuple[float, Catalogue] | None = None

    def get(self, ctx: Context) -> Catalogue:
        with self._lock:
            now = self._monotonic()
            if self._built is None or now - self._built[0] > self._ttl_s:
                at = ctx.clock()
                visits = maintenance.visits(ctx.reader, None, EPOCH, at)
                observed = records.listed(ctx.reader, "accepted", EPOCH, at)
                cat = Catalogue.build(ctx.reader.streams(at), ctx.board.all(), visits, observed)
                self._built = (now, cat)
            return self._built[1]


def error(code: int, message: str) -> JSONResponse:
    """The standard's error document."""
    return JSONResponse({"code": code, "type": "error", "message": message}, code)


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{PREFIX}"


def make_routes(cache: CatalogueCache | None = None) -> list[Route]:
    catalogue = cache or CatalogueCache()

    async def root(request: Request) -> Response:
        base = _base(request)
        return JSONResponse(
            {
                "value": [{"name": name, "url": f"{base}/{name}"} for name in SETS],
                "serverSettings": {"conformance": CONFORMANCE},
            }
        )

    def answer(request: Request) -> Response:
        """A plain function: Starlette runs it on its thread pool, off the event loop, as the
        reader blocks on the database."""
        ctx: Context = request.app.state.ctx
        path = request.path_params["path"]
        try:
            options = parse(request.query_params.multi_items())
            docs = Documents(_base(request), ctx.web, ctx.texts)
            sta = StaRequest(ctx.reader, catalogue.get(ctx), docs, ctx.clock())
            page = f"{_base(request)}/{path}"

            def url(o: Options) -> str:
                return page + "?" + urlencode(query_of(o))

            return JSONResponse(sta.answer(path, options, url))
        except QueryError as exc:
            return error(400, str(exc))
        except NotFound as exc:
            return error(404, str(exc))
        except StoreError:
            return error(503, "the database does not answer; try again later")

    return [
        Route(PREFIX, root, methods=["GET"]),
        Route(PREFIX + "/", root, methods=["GET"]),
        Route(PREFIX + "/{path:path}", answer, methods=["GET"]),
    ]
