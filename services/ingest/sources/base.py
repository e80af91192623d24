"""What every helpdesk adapter shares: the delivery, the refusals, and small mapping helpers.

An adapter is two pure steps over one delivery (the raw request) — ``verify`` (is it from
the system?) and ``translate`` (which slawatch events does it mean?) — so that the HTTP
route, ``slawatch sources test`` and the tests run exactly the same code. Translations
return plain event dicts; the pipeline validates them against the one event contract
(shared/events.py), so an adapter cannot publish something ``POST /v1/events`` would refuse.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slawatch.services.ingest.sources.mapping import Resolved


@dataclass(frozen=True)
class Delivery:
    """One webhook request as it arrived: headers (lower-case names), raw body, receipt time."""

    system: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def body_hash(self) -> str:
        """A stable id for systems that send none: a retry carries the same bytes."""
        return hashlib.sha256(self.body).hexdigest()[:24]


class Unauthorized(Exception):
    """401: the request is not provably from the system. The reason is safe to show: it never
    contains the secret or the expected signature."""


class Malformed(Exception):
    """422: the body is JSON but not what the system sends; ``field`` names the native field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class Unavailable(Exception):
    """503: something needed to verify the request (Zoho Desk's key set) cannot be reached."""


@dataclass
class Translation:
    """The events a delivery means, or why it means none (an event type slawatch does not use:
    acknowledged with 2xx so the helpdesk keeps the webhook, and counted)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ignored: str | None = None


@dataclass(frozen=True)
class Settings:
    """What an adapter's verify step may read: secrets and the replay window."""

    secret: str | None
    replay_window_s: int
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Adapter:
    system: str  # the URL segment: /v1/sources/{system}
    title: str  # the product's name, for docs and OpenAPI
    verify: Callable[[Delivery, Settings], Awaitable[None]]
    translate: Callable[[Delivery, Any, Resolved], Translation]
    body_kind: str = "object"  # JSON type of the body: "object" or "array"
    defaults: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Bytes -> bytes before JSON parsing, for a system known to write one thing wrong.
    prepare: Callable[[bytes], bytes] | None = None
    # The answer once the broker acked: 202, unless the system counts anything but one
    # particular success status as a failed delivery.
    accepted_status: int = 202


# ------------------------------------------------------------------ payload helpers


def dig(document: Any, path: str, default: Any = None) -> Any:
    """``dig(doc, "issue.fields.priority.name")``; list indexes as numbers; None if absent."""
    value = document
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return default
        if value is None:
            return default
    return value


def text(value: Any) -> str | None:
    """A scalar as a string, None for absent/empty (an unfilled placeholder renders empty)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    out = str(value).strip()
    return out or None


def require(document: Any, path: str) -> str:
    value = text(dig(document, path))
    if value is None:
        raise Malformed(path, "required")
    return value


def mapping_object(document: Any, what: str = "(body)") -> Mapping[str, Any]:
    if not isinstance(document, Mapping):
        raise Malformed(what, "expected a JSON object")
    return document


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_JIRA_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def instant(value: Any, field_name: str) -> datetime:
    """An instant in any form the systems send: RFC 3339 / ISO 8601 strings (also Jira's
    ``+0100`` offsets), or Unix times in seconds or milliseconds (numbers or digit strings).
    Naive strings are refused: a helpdesk that drops the offset cannot be placed in time."""
    if isinstance(value, bool) or value is None:
        raise Malformed(field_name, "expected a time")
    if isinstance(value, str) and re.fullmatch(r"\d{9,13}(\.\d+)?", value.strip()):
        value = float(value)
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 10**11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise Malformed(field_name, "time out of range") from None
    if not isinstance(value, str) or not _ISO.match(value.strip()):
        raise Malformed(field_name, "expected an ISO 8601 time or a Unix time")
    raw = _JIRA_OFFSET.sub(r"\1:\2", value.strip().replace(" UTC", "Z"))
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Malformed(field_name, "not a valid time") from None
    if moment.tzinfo is None:
        raise Malformed(field_name, "time without an offset")
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise Malformed(field_name, "time out of range") from None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event(
    event_id: str,
    type_: str,
    ticket_id: str,
    occurred_at: datetime,
    channel: str,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """One slawatch event; empty optional fields are left out (the contract's defaults apply)."""
    return {
        "event_id": event_id[:128],
        "type": type_,
        "ticket_id": ticket_id,
        "occurred_at": iso(occurred_at),
        "channel": channel,
        "data": {k: v for k, v in data.items() if v is not None},
    }


def snapshot_events(
    stamp: str,
    ticket_id: str,
    occurred_at: datetime,
    channel: str,
    fields: Mapping[str, Any],
    status: str | None,
) -> list[dict[str, Any]]:
    """What a delivery carrying the ticket's whole current state (Zendesk, Zammad) says
    changed: its set fields as one ``ticket.updated`` and its status as a
    ``ticket.status_changed``. Their ids derive from the delivery's ``stamp``, so a
    retried delivery is a duplicate downstream."""
    events: list[dict[str, Any]] = []
    changed = {k: v for k, v in fields.items() if v is not None}
    if changed:
        events.append(
            event(f"{stamp}:fields", "ticket.updated", ticket_id, occurred_at, channel, changed)
        )
    if status is not None:
        events.append(
            event(
                f"{stamp}:status",
                "ticket.status_changed",
                ticket_id,
                occurred_at,
                channel,
                {"status": status},
            )
        )
    return events


def split_tags(value: Any) -> list[str] | None:
    """Tags as a list: from a JSON list, or a space/comma separated string (placeholders)."""
    if value is None:
        return None
    if isinstance(value, list):
        items = [text(v) for v in value]
    else:
        items = [t for t in re.split(r"[\s,]+", text(value) or "")]
    return [t for t in items if t][:64]
