"""One error shape for the monitor's and notifier's HTTP APIs, and its OpenAPI description.

A refused request answers ``{"detail": [{"field": ..., "message": ...}]}`` (400, 413, 422)
or ``{"detail": "..."}`` (401, 403, 404): the shape docs/monitor.md and
docs/notifications.md promise. FastAPI's own validation errors (``loc``/``msg``/``type``,
echoing the input) are turned into the same shape by one handler, and the OpenAPI
documents exactly these models, so that generated clients and contract tests hold.

:class:`BodyLimits` bounds request bodies before any parsing: at most ``max_bytes``
(413) and JSON nested at most ``slawatch.shared.bounds.MAX_JSON_DEPTH`` deep (400), because
parsing is where deep nesting does its harm (recursion).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slawatch.shared.bounds import MAX_JSON_DEPTH, json_depth

_WHERE = ("query", "path", "body", "header", "cookie")


class FieldProblem(BaseModel):
    field: str = Field(description="The parameter or body field, dotted (`match.kind`).")
    message: str


class ValidationProblem(BaseModel):
    """400, 413, 422: what was refused, field by field; nothing was changed."""

    detail: list[FieldProblem]


class Problem(BaseModel):
    """401, 403, 404: one sentence."""

    detail: str


class ReadyStatus(BaseModel):
    """/readyz: ``ready``, or why not (503)."""

    status: str
    partitions: list[int] | None = None
    lagging_partitions: list[int] | None = None


# /metrics answers Prometheus' text format, not JSON.
METRICS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}

_DESCRIPTIONS = {
    400: "The body is not JSON, or nested deeper than the documented limit.",
    401: "Missing or unknown bearer token.",
    403: "Writes are disabled here (no API keys configured).",
    404: "No such resource.",
    413: "The body exceeds the documented size limit.",
    422: "A parameter or body field was refused; `detail` names each one.",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each code with its model and description."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        model = Problem if code in (401, 403, 404) else ValidationProblem
        out[code] = {"model": model, "description": _DESCRIPTIONS[code]}
    return out


def field_name(loc: Sequence[int | str]) -> str:
    """``("query", "limit")`` -> ``limit``; ``("body", "match", "kind")`` -> ``match.kind``."""
    parts = list(loc)
    if parts and parts[0] in _WHERE:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "(body)"


def problems(errors: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic / FastAPI error dicts as {field, message}; the input is never echoed."""
    return [
        {"field": field_name(e.get("loc", ())), "message": str(e.get("msg", ""))} for e in errors
    ]


def refuse(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": [{"field": field, "message": message}]}, status_code=status)


async def _validation_failed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return refuse(400, "(body)", "body is not valid JSON")
    return JSONResponse({"detail": problems(errors)}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's answer, except that a body FastAPI could not parse (not UTF-8, a number
    past Python's digit limit) says so in the documented 400 shape, not as a bare string."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and isinstance(exc.detail, str):
        return refuse(400, "(body)", exc.detail)
    return await http_exception_handler(request, exc)


def install(app: FastAPI, *, max_body_bytes: int) -> None:
    """The shared validation-error handler and body limits, on one app.

    Call it before adding routes: the unknown-query-parameter check is a router-wide
    dependency, which FastAPI attaches to the routes added (or included) after it.
    """
    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(BodyLimits, max_bytes=max_body_bytes)
    app.router.dependencies.append(Depends(refuse_unknown_query))


_KNOWN_QUERY = "_slawatch_known_query"  # attribute of a route: its query parameters, cached


def _takes_many(annotation: Any) -> bool:
    """``list[str]``, ``list[str] | None``, ``Annotated[list[...], ...]``: repeatable."""
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    if origin is Annotated:
        return _takes_many(get_args(annotation)[0])
    return origin in (Union, UnionType) and any(_takes_many(a) for a in get_args(annotation))


def _known_query(route: Any) -> tuple[frozenset[str], frozenset[str]]:
    """(every query parameter the route takes, those that take one value only)"""
    known = getattr(route, _KNOWN_QUERY, None)
    if known is None:
        names: set[str] = set()
        single: set[str] = set()
        pending = [route.dependant]
        while pending:  # the route's own parameters and its dependencies'
            dependant = pending.pop()
            for param in dependant.query_params:
                names.add(param.alias)
                if not _takes_many(param.field_info.annotation):
                    single.add(param.alias)
            pending.extend(dependant.dependencies)
        known = (frozenset(names), frozenset(single))
        setattr(route, _KNOWN_QUERY, known)
    return known


async def refuse_unknown_query(request: Request) -> None:
    """422 for a query parameter the route does not take, as the event contract refuses an
    unknown field: a misspelt filter (``?asignee=``) must not silently widen a listing; and
    for a one-value parameter given twice (FastAPI would silently keep the last).
    Routes that take no query parameters ignore the query string."""
    route = request.scope.get("route")
    if route is None or not hasattr(route, "dependant"):
        return
    known, single = _known_query(route)
    if not known:
        return
    for name in request.query_params:
        if name not in known:
            message = "unknown query parameter"
        elif name in single and len(request.query_params.getlist(name)) > 1:
            message = "given more than once; it takes one value"
        else:
            continue
        raise RequestValidationError(
            [{"loc": ("query", name), "msg": message, "type": "extra_forbidden"}]
        )


class BodyLimits:
    """ASGI middleware: refuse a body over ``max_bytes`` (413) or nested deeper than
    MAX_JSON_DEPTH (400) before the app parses it; otherwise hand the body on unchanged."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        too_large = f"request body exceeds {self.max_bytes} bytes"
        if declared.isdigit() and int(declared) > self.max_bytes:
            await refuse(413, "(body)", too_large)(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await refuse(413, "(body)", too_large)(scope, receive, send)
                return
        if json_depth(bytes(body)) > MAX_JSON_DEPTH:
            await refuse(400, "(body)", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")(
                scope, receive, send
            )
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)
