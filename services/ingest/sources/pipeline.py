"""The one pipeline every helpdesk request goes through: verify -> parse -> map -> validate.

Pure of HTTP and Kafka, so the route (routes.py), ``slawatch sources test`` and the tests
share it; publishing is the route's last step, through the ingest publisher.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from slawatch.services.ingest.settings import IngestSettings
from slawatch.services.ingest.sources import ADAPTERS
from slawatch.services.ingest.sources.base import Delivery, Malformed, Settings, Translation
from slawatch.services.ingest.sources.mapping import Resolved, SourceMapping, load_mapping, resolve
from slawatch.shared.bounds import MAX_JSON_DEPTH, json_depth
from slawatch.shared.events import TicketEvent, ticket_event_adapter


class BadBody(Exception):
    """400: not JSON, too deep."""


@dataclass
class Refused(Exception):
    """422 with the refused fields: ``detail`` items are ``{index, field, message}``."""

    message: str
    detail: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Outcome:
    events: list[TicketEvent]
    ignored: str | None = None


def source_settings(settings: IngestSettings, system: str) -> Settings:
    extra: dict[str, Any] = {}
    if system == "zoho-desk":
        extra = {
            "org_id": settings.source_zoho_desk_org_id,
            "webhook_id": settings.source_zoho_desk_webhook_id,
            "jwks_url": settings.source_zoho_desk_jwks_url,
        }
    return Settings(settings.source_secret(system), settings.source_replay_window_s, extra)


def load_mappings(settings: IngestSettings) -> dict[str, Resolved]:
    """Every system's mapping (defaults + its file); MappingError lists each bad line."""
    out = {}
    for system, adapter in ADAPTERS.items():
        path = settings.source_mapping(system)
        model: SourceMapping | None = load_mapping(path, system) if path is not None else None
        out[system] = resolve(system, adapter.defaults, model)
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_body(system: str, body: bytes) -> Any:
    adapter = ADAPTERS[system]
    if adapter.prepare is not None:
        body = adapter.prepare(body)
    if json_depth(body) > MAX_JSON_DEPTH:
        raise BadBody(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        document = json.loads(body, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        hint = ""
        if system == "freshdesk" and b"{{" not in body and b"triggered_event" in body:
            hint = " (put {{triggered_event}} in quotes, as in the template of docs/sources.md)"
        raise BadBody(f"body is not valid JSON: {exc}{hint}") from None
    expected = list if adapter.body_kind == "array" else dict
    if not isinstance(document, (list, dict)) or (
        expected is dict and not isinstance(document, dict)
    ):
        raise Refused(
            f"expected a JSON {adapter.body_kind}",
            [{"index": None, "field": "(body)", "message": f"expected an {adapter.body_kind}"}],
        )
    return document


def validate(translation: Translation) -> list[TicketEvent]:
    events, problems = [], []
    for index, raw in enumerate(translation.events):
        try:
            events.append(ticket_event_adapter.validate_python(raw))
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                loc = [p for p in error["loc"] if p not in (raw.get("type"),)]
                problems.append(
                    {
                        "index": index,
                        "field": ".".join(str(p) for p in loc) or "(event)",
                        "message": error["msg"],
                    }
                )
    if problems:
        raise Refused("the payload maps to events slawatch refuses; nothing was accepted", problems)
    return events


def translate(system: str, delivery: Delivery, document: Any, mapping: Resolved) -> Outcome:
    """Map a verified, parsed delivery; Refused (422) names the native field that is wrong."""
    try:
        translation = ADAPTERS[system].translate(delivery, document, mapping)
    except Malformed as bad:
        raise Refused(
            f"{system} payload: {bad.field}: {bad.message}",
            [{"index": None, "field": bad.field, "message": bad.message}],
        ) from None
    return Outcome(validate(translation), translation.ignored)


def delivery(system: str, headers: Mapping[str, str], body: bytes, at: datetime) -> Delivery:
    return Delivery(system, {k.lower(): v for k, v in headers.items()}, body, at)
