"""The ingest HTTP API: validate ticket events and publish them to Kafka, keyed by ticket.

A request is all-or-nothing from the client's point of view: either every event is valid
and acked by the broker (202), or the answer says nothing was accepted (4xx/503) and the
client retries. A retry after a partial publish is harmless: consumers dedup on event_id.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.routing import request_response

from slawatch.services.ingest.metrics import IngestMetrics
from slawatch.services.ingest.publisher import BrokerUnavailable, Publisher
from slawatch.services.ingest.settings import IngestSettings
from slawatch.shared.auth import ApiKeys, bearer_token
from slawatch.shared.bounds import MAX_JSON_DEPTH, json_depth
from slawatch.shared.events import (
    EXAMPLES,
    POSTED_TYPES,
    CustomerUpdated,
    PostedEvent,
    TicketEvent,
    partition_key,
    posted_event_adapter,
)
from slawatch.shared.http_errors import METRICS_RESPONSE, ReadyStatus
from slawatch.shared.kafka import broker_reachable

log = logging.getLogger("slawatch.ingest")


class Accepted(BaseModel):
    accepted: int = Field(description="Events acked by the broker.")


class EventProblem(BaseModel):
    index: int | None = Field(
        description="Position in `events` (0 for a single event); null for the whole body."
    )
    field: str = Field(description="Dotted path inside the event, e.g. `data.priority`.")
    message: str


class Problem(BaseModel):
    """Every refusal: nothing of the request was accepted."""

    error: str = Field(description="One sentence.")
    detail: list[EventProblem] | None = Field(
        None, description="422: each refused field; otherwise null."
    )
    accepted: Literal[0] = 0


class _BadRequest(Exception):
    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        detail: Any = None,
        types: list[str] | None = None,
    ) -> None:
        self.status, self.reason, self.message, self.detail = status, reason, message, detail
        # One rejected-event count per event of the request, labelled with its type when known.
        self.types = types or ["unknown"]


def _type_of(item: Any) -> str:
    kind = item.get("type") if isinstance(item, dict) else None
    return kind if kind in POSTED_TYPES else "unknown"


def _problem(
    status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": message, "detail": detail, "accepted": 0}, status_code=status, headers=headers
    )


def _field_errors(exc: ValidationError, batch: bool) -> list[dict[str, Any]]:
    """Turn pydantic errors into {index, field, message}; the union tag is not part of a path."""
    out = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = list(error["loc"])
        index = None
        if batch:
            if loc and loc[0] == "events":
                loc = loc[1:]
            if loc and isinstance(loc[0], int):
                index = loc.pop(0)
        if loc and loc[0] in POSTED_TYPES:
            loc.pop(0)
        field = ".".join(str(p) for p in loc) or ("type" if "tag" in error["type"] else "(event)")
        out.append({"index": index if batch else 0, "field": field, "message": error["msg"]})
    return out


_JSON_TYPES = ("application/json",)


def _check_content_type(header: str | None) -> None:
    """JSON only: absent or application/json (or any +json type); anything else is a 415."""
    if header is None:
        return
    media = header.split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES or (media.startswith("application/") and media.endswith("+json")):
        return
    raise _BadRequest(
        415, "unsupported_media_type", "send JSON with Content-Type: application/json"
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BadRequest(413, "too_large", f"request body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _BadRequest(413, "too_large", f"request body exceeds {limit} bytes")
    return bytes(body)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_precisely(
    body: bytes, max_batch: int
) -> tuple[list[TicketEvent | CustomerUpdated], bool]:
    if json_depth(body) > MAX_JSON_DEPTH:
        raise _BadRequest(400, "too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        decoded = json.loads(body, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _BadRequest(400, "malformed_json", f"body is not valid JSON: {exc}") from None
    if isinstance(decoded, dict) and "events" in decoded:
        if set(decoded) != {"events"}:
            extra = sorted(set(decoded) - {"events"})
            raise _BadRequest(
                422,
                "invalid",
                "unknown top-level field",
                [{"index": None, "field": extra[0], "message": "unknown field"}],
            )
        items = decoded["events"]
        if not isinstance(items, list) or not items:
            raise _BadRequest(
                422,
                "invalid",
                "`events` must be a non-empty array",
                [{"index": None, "field": "events", "message": "expected a non-empty array"}],
            )
        if len(items) > max_batch:
            raise _BadRequest(
                413,
                "too_many",
                f"{len(items)} events in one request; at most {max_batch}",
                types=[_type_of(i) for i in items],
            )
        try:
            return _batch_adapter.validate_python(items), True
        except ValidationError as exc:
            raise _BadRequest(
                422,
                "invalid",
                "validation failed; nothing was accepted",
                _field_errors(exc, batch=True),
                [_type_of(i) for i in items],
            ) from None
    if not isinstance(decoded, dict):
        raise _BadRequest(
            422,
            "invalid",
            'expected an event object or {"events": [...]}',
            [{"index": None, "field": "(body)", "message": "expected an object"}],
        )
    try:
        return [posted_event_adapter.validate_python(decoded)], False
    except ValidationError as exc:
        raise _BadRequest(
            422,
            "invalid",
            "validation failed; nothing was accepted",
            _field_errors(exc, batch=False),
            [_type_of(decoded)],
        ) from None


_batch_adapter: TypeAdapter[list[PostedEvent]] = TypeAdapter(list[PostedEvent])


class _Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[PostedEvent]


_BATCH_START = re.compile(rb'\A\s*\{\s*"events"\s*:')


def _parse(body: bytes, max_batch: int) -> list[TicketEvent | CustomerUpdated]:
    """Validate straight from bytes (pydantic-core parses the JSON); on any problem, redo
    it the slow way, which exists to produce the precise 4xx (index, field, reason)."""
    try:
        if _BATCH_START.match(body):
            events = _Batch.model_validate_json(body).events
        else:
            events = [posted_event_adapter.validate_json(body)]
    except ValidationError:
        events = []
    if not events or len(events) > max_batch:
        events, _ = _parse_precisely(body, max_batch)
    return events


_STAMPED_BY_INGEST = {"received_at", "source"}


def _stamp(events: Sequence[TicketEvent | CustomerUpdated], source: str) -> list[tuple[bytes, bytes]]:
    """(key, value) records with received_at and source set by us, whatever the client sent.

    Splicing the two fields into each event's JSON is 2x cheaper than copying the model,
    and this runs once per event on the hot path.
    """
    received_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    suffix = f',"received_at":"{received_at}","source":{json.dumps(source)}}}'.encode()
    return [
        (
            partition_key(event).encode(),
            event.model_dump_json(exclude_none=True, exclude=_STAMPED_BY_INGEST).encode()[:-1]
            + suffix,
        )
        for event in events
    ]


def _openapi_body() -> dict[str, Any]:
    single = posted_event_adapter.json_schema(ref_template="#/components/schemas/{model}")
    defs = single.pop("$defs", {})
    examples = {
        name.replace(".", "_"): {"summary": name, "value": value}
        for name, value in EXAMPLES.items()
    }
    examples["batch"] = {
        "summary": "a batch (up to SLAWATCH_INGEST_MAX_BATCH events)",
        "value": {"events": list(EXAMPLES.values())},
    }
    return {
        "defs": defs,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            single,
                            {
                                "type": "object",
                                "required": ["events"],
                                "additionalProperties": False,
                                "properties": {
                                    "events": {"type": "array", "minItems": 1, "items": single}
                                },
                            },
                        ]
                    },
                    "examples": examples,
                }
            },
        },
    }


def serve_directly(app: FastAPI, endpoint: Any) -> None:
    """Let the route of ``endpoint`` (a ``(request) -> Response`` function) call it as a
    plain Starlette endpoint, without FastAPI's parameter injection.

    The hot routes take the raw Request and read, validate and answer by themselves, so
    injection has nothing to do, yet it parses query string and cookies on every request:
    about a seventh of the CPU of a single-event POST. The route itself stays as declared
    (path, methods, OpenAPI, middleware, error handlers); only the handler it calls changes.
    """
    for route in app.router.routes:
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            route.app = request_response(endpoint)
            return
    raise LookupError(f"no route serves {endpoint!r}")


def create_app(settings: IngestSettings, api_keys: ApiKeys) -> FastAPI:
    publisher = Publisher(settings)
    metrics = IngestMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await publisher.start()
        yield
        await publisher.stop()

    app = FastAPI(
        title="slawatch ingest",
        version="1",
        summary="Ticket events in; SLA clocks out.",
        lifespan=lifespan,
    )
    app.state.publisher = publisher
    app.state.metrics = metrics
    body_spec = _openapi_body()

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        responses={
            400: {
                "model": Problem,
                "description": f"Body is not JSON, or nested deeper than {MAX_JSON_DEPTH} levels.",
            },
            401: {"model": Problem, "description": "Missing or unknown bearer token."},
            413: {"model": Problem, "description": "Body or batch too large."},
            415: {"model": Problem, "description": "Content-Type is not application/json."},
            422: {
                "model": Problem,
                "description": "Validation failed; `detail` names index and field.",
            },
            503: {
                "model": Problem,
                "description": "Broker unavailable; nothing accepted; retry after Retry-After.",
            },
        },
        openapi_extra={"requestBody": body_spec["requestBody"]},
        summary='Post one ticket event, or {"events": [...]}',
    )
    async def post_events(request: Request) -> Response:
        started = time.perf_counter()
        source = "anonymous"
        status = 500
        try:
            token = bearer_token(request.headers.get("authorization"))
            name = api_keys.identify(token) if token else None
            if name is None:
                raise _BadRequest(401, "unauthorized", "missing or unknown bearer token")
            source = name
            _check_content_type(request.headers.get("content-type"))
            body = await _read_body(request, settings.ingest_max_body_bytes)
            events = _parse(body, settings.ingest_max_batch)
            try:
                seconds = await publisher.publish(_stamp(events, source))
            except BrokerUnavailable as exc:
                for type_, count in Counter(event.type for event in events).items():
                    metrics.rejected.labels(type_, source, "unavailable").inc(count)
                log.warning(
                    "publish failed, answered 503: %s",
                    exc,
                    extra={"source": source, "events": len(events)},
                )
                status = 503
                return _problem(
                    503,
                    "broker unavailable: the request was NOT accepted; retry later",
                    headers={"Retry-After": str(settings.ingest_retry_after_s)},
                )
            metrics.publish_seconds.observe(seconds)
            if log.isEnabledFor(logging.DEBUG):
                for event in events:
                    log.debug(
                        "accepted %s",
                        event.type,
                        extra={
                            "ticket_id": partition_key(event),
                            "event_id": event.event_id,
                            "source": source,
                        },
                    )
            metrics.batch_size.observe(len(events))
            for type_, count in Counter(event.type for event in events).items():
                metrics.accepted.labels(type_, source).inc(count)
            status = 202
            return JSONResponse({"accepted": len(events)}, status_code=202)
        except _BadRequest as bad:
            status = bad.status
            for bad_type, count in Counter(bad.types).items():
                metrics.rejected.labels(bad_type, source, bad.reason).inc(count)
            log.info(
                "rejected a request: %s",
                bad.message,
                extra={"source": source, "status": bad.status},
            )
            headers = {"WWW-Authenticate": "Bearer"} if bad.status == 401 else None
            return _problem(bad.status, bad.message, bad.detail, headers)
        finally:
            metrics.request_seconds.labels(str(status)).observe(time.perf_counter() - started)

    serve_directly(app, post_events)

    # The helpdesks' own webhooks (services/ingest/sources), published the same way.
    from slawatch.services.ingest.sources.routes import mount_sources

    mount_sources(app, settings, publisher, metrics)

    @app.get("/healthz", summary="The process is up.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="The broker is reachable.",
        response_model=ReadyStatus,
        responses={503: {"model": ReadyStatus, "description": "The broker is unreachable."}},
    )
    async def readyz() -> JSONResponse:
        if await broker_reachable(settings):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "broker unreachable"}, status_code=503)

    @app.get(
        "/metrics",
        summary="Prometheus metrics.",
        response_class=Response,
        responses=METRICS_RESPONSE,
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original_openapi()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(body_spec["defs"])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
