"""The OpenAPI 3.1 description of /api/v1/ (served at /api/v1/openapi.json): the paths written
here, the schemas generated from the pydantic models that shape the answers, so they cannot drift."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contract.wire import ID_PATTERN
from gateway.web.api import UNITS, AlertOut, ErrorOut, KeyOut, LatestOut, NodeOut, SeriesOut
from gateway.web.observe import ObservationOut, Submission, SubmittedOut
from gateway.web.params import EVERY


def _param(
    name: str, where: str, description: str, schema: dict[str, Any], required: bool = False
) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1: the paths by hand, the schemas from the pydantic models."""
    ident = {"type": "string", "pattern": ID_PATTERN}
    time = {"type": "string", "description": "2026-11-22 (UTC midnight) or RFC 3339 with Z or an offset"}
    site_q = _param("site", "query", "only this site", ident)

    def paging(what: str) -> list[dict[str, Any]]:
        return [
            _param(
                "limit",
                "query",
                f"at most this many {what} (1–1000, default 100)",
                {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            ),
            _param(
                "offset",
                "query",
                f"skip this many {what} first",
                {"type": "integer", "minimum": 0, "default": 0},
            ),
        ]

    models: dict[str, type[BaseModel]] = {
        "Node": NodeOut,
        "Latest": LatestOut,
        "Series": SeriesOut,
        "Alert": AlertOut,
        "Key": KeyOut,
        "Error": ErrorOut,
        "Observation": ObservationOut,
        "Submitted": SubmittedOut,
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

    def paged(responses: dict[str, Any], what: str) -> dict[str, Any]:
        responses["200"]["headers"] = {
            "X-Total-Count": {"description": f"{what} in all", "schema": {"type": "integer"}},
            "Link": {
                "description": 'the next page, `<...>; rel="next"`, while more follow (RFC 8288)',
                "schema": {"type": "string"},
            },
        }
        return responses

    paths = {
        "/api/v1/nodes": {
            "get": {
                "summary": "Every node with a stored reading: position, status, freshness (a page)",
                "parameters": [site_q, *paging("nodes")],
                "responses": paged(ok("Node", True), "nodes"),
            }
        },
        "/api/v1/latest": {
            "get": {
                "summary": "The latest reading of every node, with AQI and turbidity level (a page)",
                "parameters": [site_q, *paging("nodes")],
                "responses": paged(ok("Latest", True), "nodes"),
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
        "/api/v1/keys": {
            "get": {
                "summary": "The nodes' public Ed25519 keys with their validity, to verify downloads",
                "parameters": [site_q],
                "responses": ok("Key", True),
            }
        },
        "/api/v1/observations": {
            "get": {
                "summary": "Residents' observations a monitor accepted, oldest first, with who "
                "decided and why (a page)",
                "parameters": [site_q, *paging("observations")],
                "responses": paged(ok("Observation", True), "accepted observations"),
            },
            "post": {
                "summary": "Submit an observation (as the /observe form does: an observer code, the "
                "form's CSRF token and its cookie; up to 4 photos, each at most 3 MB and 6 MB in all, "
                "each re-encoded without its metadata); public only once a monitor accepts it",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["csrf", "id", "kind"],
                                "properties": {
                                    "csrf": {"type": "string", "description": "as the form page gives it"},
                                    "code": {
                                        "type": "string",
                                        "description": "the observer code (none with a monitor session)",
                                    },
                                    **Submission.model_json_schema()["properties"],
                                    "photo": {
                                        "type": "array",
                                        "maxItems": 4,
                                        "items": {"type": "string", "format": "binary"},
                                        "description": "up to 4 parts of this name, one per photo",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "stored, pending a monitor's decision",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Submitted"}}
                        },
                    },
                    "200": {"description": "this id was already received: nothing stored again"},
                    **{
                        str(code): {
                            "description": why,
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                            },
                        }
                        for code, why in (
                            (400, "a field we cannot use, or more than 4 photos"),
                            (401, "unknown or revoked observer code"),
                            (403, "not this dashboard's own form (origin or CSRF token)"),
                            (411, "no Content-Length"),
                            (413, "too large"),
                            (415, "not multipart/form-data, or a photo is not a picture"),
                            (429, "too many observations from this code in the last hour"),
                        )
                    },
                },
            },
        },
        "/api/v1/alerts/active": {
            "get": {
                "summary": "The latest event of every alert not cleared, newest first (a page)",
                "parameters": [site_q, *paging("alerts")],
                "responses": paged(ok("Alert", True), "alerts"),
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "minewatch public API",
            "version": "1",
            "description": "Read-only access to community air-dust and water-turbidity readings, "
            "and residents' observations (submitted with an observer code, public once a monitor "
            "accepts them). Times are UTC. See docs/api.md.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


ROUTES = [Route("/api/v1/openapi.json", openapi)]
"""Here rather than beside the other routes in gateway/web/api.py: the document is made from that
module's answer models, so api.py cannot import this one."""
