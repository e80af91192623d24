"""``POST /v1/sources/{system}``: one route per helpdesk, mounted on the ingest app.

Answers (docs/sources.md): 202 ``{"accepted": n}`` once the broker acked every event (200
for a system that counts anything else as a failed delivery: Zoho Desk); 200
``{"accepted": 0, "ignored": "<event type>"}`` for a delivery slawatch has no use for (so
the helpdesk keeps the webhook); 401 when the request is not provably from the system;
400/413/415/422 for bodies that cannot be used (nothing published); 503 + Retry-After when
the broker (or Zoho Desk's key set) cannot be reached. Each request is counted in
``slawatch_ingest_source_requests_total{source, outcome}``.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from slawatch.services.ingest.app import (
    Accepted,
    Problem,
    _BadRequest,
    _check_content_type,
    _problem,
    _read_body,
    _stamp,
    serve_directly,
)
from slawatch.services.ingest.metrics import IngestMetrics
from slawatch.services.ingest.publisher import BrokerUnavailable, Publisher
from slawatch.services.ingest.settings import IngestSettings
from slawatch.services.ingest.sources import ADAPTERS
from slawatch.services.ingest.sources.base import Unauthorized, Unavailable
from slawatch.services.ingest.sources.pipeline import (
    BadBody,
    Refused,
    delivery,
    load_mappings,
    parse_body,
    source_settings,
    translate,
)

log = logging.getLogger("slawatch.ingest.sources")


class Ignored(BaseModel):
    accepted: int = Field(0, description="Always 0: nothing in this delivery is an SLA event.")
    ignored: str = Field(description="The event type (or change) slawatch does not use.")


def _responses(system: str) -> dict[int | str, dict[str, Any]]:
    ignored = {"model": Ignored, "description": "Acknowledged; nothing in it that slawatch uses."}
    if ADAPTERS[system].accepted_status == 200:
        # The route's model (Accepted) documents both: an ignored body is also an Accepted.
        ignored = {
            "description": "Accepted once the broker acked every event (`accepted` > 0), or "
            "acknowledged with nothing slawatch uses (`accepted` 0 and `ignored`): this system "
            "counts any other success status as a failed delivery.",
        }
    return {
        200: ignored,
        400: {"model": Problem, "description": "Body is not JSON, or nested too deep."},
        401: {"model": Problem, "description": f"Not provably from {ADAPTERS[system].title}."},
        413: {"model": Problem, "description": "Body too large."},
        415: {"model": Problem, "description": "Content-Type is not JSON."},
        422: {
            "model": Problem,
            "description": "A field of the payload cannot be used; `detail` names it.",
        },
        503: {
            "model": Problem,
            "description": "Broker (or key set) unavailable; retry after Retry-After.",
        },
    }


def mount_sources(
    app: FastAPI, settings: IngestSettings, publisher: Publisher, metrics: IngestMetrics
) -> None:
    """Add one route per system. Mapping files are loaded now: a bad one stops ingest at
    start (MappingError with ``FILE:LINE`` lines) rather than at the first webhook."""
    mappings = load_mappings(settings)
    verifiers = {system: source_settings(settings, system) for system in ADAPTERS}

    async def handle(system: str, request: Request) -> Response:
        outcome = "error"
        try:
            _check_content_type(request.headers.get("content-type"))
            body = await _read_body(request, settings.ingest_max_body_bytes)
            received = delivery(system, dict(request.headers), body, datetime.now(UTC))
            await ADAPTERS[system].verify(received, verifiers[system])
            document = parse_body(system, body)
            result = translate(system, received, document, mappings[system])
            if not result.events:
                outcome = "ignored"
                # The reason may quote the sender's text (an unknown event type): a lone
                # surrogate there cannot be encoded, so it is shown escaped, not a 500.
                reason = (result.ignored or "nothing").encode("utf-8", "backslashreplace")
                log.info("ignored a %s delivery: %s", system, reason.decode())
                return JSONResponse({"accepted": 0, "ignored": reason.decode()})
            try:
                seconds = await publisher.publish(_stamp(result.events, system))
            except BrokerUnavailable as exc:
                outcome = "unavailable"
                log.warning("publish failed, answered 503: %s", exc, extra={"source": system})
                return _problem(
                    503,
                    "broker unavailable: the request was NOT accepted; retry later",
                    headers={"Retry-After": str(settings.ingest_retry_after_s)},
                )
            metrics.publish_seconds.observe(seconds)
            for type_, count in Counter(e.type for e in result.events).items():
                metrics.accepted.labels(type_, system).inc(count)
            outcome = "accepted"
            return JSONResponse(
                {"accepted": len(result.events)}, status_code=ADAPTERS[system].accepted_status
            )
        except Unauthorized as exc:
            outcome = "unauthorized"
            log.info("refused a %s request: %s", system, exc, extra={"source": system})
            return _problem(401, f"not verified as {ADAPTERS[system].title}: {exc}")
        except Unavailable as exc:
            outcome = "unavailable"
            log.warning("cannot verify %s now: %s", system, exc, extra={"source": system})
            return _problem(
                503,
                f"cannot verify the request now ({exc}); it was NOT accepted",
                headers={"Retry-After": str(settings.ingest_retry_after_s)},
            )
        except _BadRequest as bad:
            outcome = bad.reason
            return _problem(bad.status, bad.message)
        except BadBody as exc:
            outcome = "malformed_json"
            return _problem(400, str(exc))
        except Refused as exc:
            outcome = "invalid"
            log.info("refused a %s payload: %s", system, exc.message, extra={"source": system})
            return _problem(422, exc.message, exc.detail)
        finally:
            metrics.source_requests.labels(system, outcome).inc()

    for system, adapter in ADAPTERS.items():
        schema: dict[str, Any] = {"type": adapter.body_kind}
        if adapter.body_kind == "array":
            schema["items"] = {"type": "object"}

        def make(system: str = system):
            async def route(request: Request) -> Response:
                return await handle(system, request)

            return route

        endpoint = make()
        app.post(
            f"/v1/sources/{system}",
            status_code=adapter.accepted_status,
            response_model=Accepted,
            responses=_responses(system),
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                }
            },
            summary=f"{adapter.title}'s own webhook (see docs/sources.md)",
            tags=["sources"],
        )(endpoint)
        serve_directly(app, endpoint)
