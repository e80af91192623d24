"""Freshdesk: "Trigger webhook" actions of automation rules, with the body of docs/sources.md.

Authentication: Freshdesk's webhook action signs nothing; it can send basic authentication
("Requires authentication": username and password) or custom headers (Freshdesk support,
"Using webhooks in automation rules"). slawatch takes the password of the basic
authentication, or an ``X-Slawatch-Token`` header, as the shared secret.

The body is written by the admin, as JSON with placeholders (``{{ticket.id}}``,
``{{ticket.status}}``, ...). ``{{triggered_event}}`` renders as ``{status:{from:2,to:3}}``
or ``{ticket_action:created}`` — unquoted, so not JSON — which is why the template quotes
it (as Zulip's Freshdesk integration does: zulip/zulip zerver/webhooks/freshdesk/doc.md);
a body where it was left unquoted is repaired before parsing. The body has no event time
and no event id: the receipt time stands for the time, and a hash of the body for the id
(a retry carries the same bytes).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from slawatch.services.ingest.sources import signatures as sig
from slawatch.services.ingest.sources.base import (
    Adapter,
    Delivery,
    Malformed,
    Settings,
    Translation,
    event,
    mapping_object,
    require,
    split_tags,
    text,
)
from slawatch.services.ingest.sources.mapping import Resolved

TOKEN_HEADER = "X-Slawatch-Token"

DEFAULTS = {
    # {{ticket.status}} renders the name; Freshdesk's built-in statuses are 2 Open,
    # 3 Pending, 4 Resolved, 5 Closed (numbers as they appear in {{triggered_event}}).
    "statuses": {
        "open": "open",
        "pending": "pending",
        "resolved": "solved",
        "closed": "closed",
        "waiting on customer": "pending",
        "waiting on third party": "on_hold",
        "2": "open",
        "3": "pending",
        "4": "solved",
        "5": "closed",
    },
    "priorities": {
        "low": "low",
        "medium": "normal",
        "high": "high",
        "urgent": "urgent",
        "1": "low",
        "2": "normal",
        "3": "high",
        "4": "urgent",
    },
    "channels": {
        "email": "email",
        "outbound email": "email",
        "portal": "web",
        "feedback widget": "web",
        "phone": "phone",
        "chat": "chat",
        "whatsapp": "chat",
        "forum": "social",
        "twitter": "social",
        "facebook": "social",
        "ecommerce": "web",
        "bot": "chat",
    },
}
# Freshdesk's satisfaction survey answers (classic 3-point scale).
_CSAT = {
    "extremely satisfied": 5,
    "awesome": 5,
    "satisfied": 4,
    "neutral": 3,
    "not satisfied": 2,
    "unsatisfied": 2,
    "extremely dissatisfied": 1,
    "not good": 1,
}
_UNQUOTED_EVENT = re.compile(rb'("triggered_event"\s*:\s*)(\{[^"\n]*?\}\}?)(\s*[,}])')


async def verify(delivery: Delivery, settings: Settings) -> None:
    secret = sig.need_secret(settings, "SLAWATCH_SOURCE_FRESHDESK_SECRET")
    token = delivery.header(TOKEN_HEADER)
    if token:
        if not sig.same(token.strip().encode(), secret.encode()):
            raise sig.Unauthorized(f"{TOKEN_HEADER} is wrong")
        return
    authorization = sig.header(delivery, "Authorization")
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise sig.Unauthorized("expected basic authentication or an X-Slawatch-Token header")
    try:
        _user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise sig.Unauthorized("basic authentication is not base64 user:password") from None
    if not sep or not sig.same(password.encode(), secret.encode()):
        raise sig.Unauthorized("basic authentication password is wrong")


def repair(body: bytes) -> bytes:
    """Quote an unquoted ``{{triggered_event}}`` value, the one non-JSON thing Freshdesk writes."""
    return _UNQUOTED_EVENT.sub(lambda m: m[1] + b'"' + m[2] + b'"' + m[3], body)


def parse_triggered(value: str) -> tuple[str, str | None, str | None]:
    """``{status:{from:2,to:3}}`` -> (status, 2, 3); ``{ticket_action:created}`` ->
    (ticket_action, None, created). Unquoted names and values, so parsed by hand."""
    inner = value.strip()
    match = re.fullmatch(r"\{\s*([A-Za-z_ ]+?)\s*:\s*(.*)\}", inner, flags=re.S)
    if not match:
        raise Malformed("freshdesk_webhook.triggered_event", "expected {name:value}")
    name, rest = match[1].strip().lower().replace(" ", "_"), match[2].strip()
    change = re.fullmatch(r"\{\s*from\s*:\s*(.*?)\s*,\s*to\s*:\s*(.*?)\s*\}", rest, flags=re.S)
    if change:
        return name, change[1] or None, change[2] or None
    return name, None, rest.strip() or None


def translate(delivery: Delivery, document: Any, mapping: Resolved) -> Translation:
    body = mapping_object(document)
    ticket = body.get("freshdesk_webhook")
    if not isinstance(ticket, dict):
        raise Malformed(
            "freshdesk_webhook", "required (the slawatch body template of docs/sources.md)"
        )
    native = require(ticket, "ticket_id")
    triggered = text(ticket.get("triggered_event"))
    if triggered is None:
        raise Malformed("freshdesk_webhook.triggered_event", "required")
    name, _old, new = parse_triggered(triggered)
    ticket_id = mapping.ticket(native)
    at = delivery.received_at
    channel = mapping.channel_of(text(ticket.get("ticket_source")))
    key = f"freshdesk:{native}:{delivery.body_hash}"
    status_name = text(ticket.get("ticket_status")) or new
    fields = {
        "priority": mapping.priority(
            text(ticket.get("ticket_priority")), "freshdesk_webhook.ticket_priority"
        ),
        "group": text(ticket.get("ticket_group_name")),
        "assignee": text(ticket.get("ticket_agent_email")) or text(ticket.get("ticket_agent_name")),
        "tags": split_tags(ticket.get("ticket_tags")),
        "customer_tier": mapping.tier(body),
    }
    data: dict[str, Any]  # each branch builds the data of its own event type
    if name == "ticket_action" and new == "created":
        data = {
            **fields,
            "status": mapping.status(status_name, "freshdesk_webhook.ticket_status"),
            "customer_id": text(ticket.get("requester_email")),
            "subject": text(ticket.get("ticket_subject")),
            "url": text(ticket.get("ticket_url")),
        }
        return Translation(
            [event(f"freshdesk:{native}:created", "ticket.created", ticket_id, at, channel, data)]
        )
    if name == "status":
        status = mapping.status(status_name, "freshdesk_webhook.ticket_status")
        return Translation(
            [event(key, "ticket.status_changed", ticket_id, at, channel, {"status": status})]
        )
    if name == "priority":
        return Translation(
            [event(key, "ticket.updated", ticket_id, at, channel, {"priority": fields["priority"]})]
        )
    if name in ("group_id", "group", "responder_id", "agent", "agent_id"):
        data = {"group": fields["group"], "assignee": fields["assignee"]}
        return Translation([event(key, "ticket.assigned", ticket_id, at, channel, data)])
    if name in ("note_type", "note_added"):
        public = (new or "").lower() == "public"
        data = {"author_role": "agent", "public": public}
        return Translation([event(key, "message.created", ticket_id, at, channel, data)])
    if name in ("reply_sent", "reply"):
        data = {"author_role": "agent", "public": True}
        return Translation([event(key, "message.created", ticket_id, at, channel, data)])
    if name in ("customer_reply", "reply_received", "requester_reply"):
        data = {"author_role": "customer", "public": True}
        return Translation([event(key, "message.created", ticket_id, at, channel, data)])
    if name in ("customer_feedback", "satisfaction", "survey_result"):
        rating = (text(ticket.get("ticket_satisfaction_rating")) or new or "").lower()
        if rating.isdigit() and 1 <= int(rating) <= 5:
            csat = int(rating)
        elif rating in _CSAT:
            csat = _CSAT[rating]
        else:
            raise Malformed(
                "freshdesk_webhook.ticket_satisfaction_rating", f"unknown rating {rating[:40]!r}"
            )
        return Translation([event(key, "survey.responded", ticket_id, at, channel, {"csat": csat})])
    return Translation(ignored=name[:64])


ADAPTER = Adapter("freshdesk", "Freshdesk", verify, translate, defaults=DEFAULTS, prepare=repair)
