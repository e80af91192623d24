"""Zoho Desk: a webhook (Setup > Developer Space > Webhooks) subscribed to ticket events.

Authentication: Zoho Desk sends an RS256 JSON Web Token in ``X-ZDesk-JWT``, signed with a
key of the key set it publishes (``https://desk.zoho.com/.well-known/jwks.json``, per data
centre), with issuer ``orgId:<org id>``, audience ``webhookId:<webhook id>`` and a short
expiry (as the issue records it, and as third-party receivers of Zoho Desk webhooks verify
it). The token does not cover the body: a captured token could be replayed with another
body until it expires, which the replay window bounds. What Zoho's own "Desk Webhook
Documentation" (https://desk.zoho.com/support/WebhookDocument.do) confirms: a delivery
counts as received only if answered 200 OK (so accepted deliveries are answered 200, not
202) within 5 s (10 s in a later version of the page), and a 410 removes the subscription
(slawatch never answers 410). The header, RS256, the claims and the key set URL above are
NOT confirmed from a Zoho source: the pages of Zoho's documentation stored here stop before
them, and only third-party receivers of Zoho Desk webhooks agree on them.

Body: a JSON array of events ``{eventType, eventTime (ms), orgId, payload, prevState}``;
one delivery may carry several. Ticket_Add, Ticket_Update (with ``includePrevState``),
Ticket_Thread_Add and Ticket_Comment_Add are used; other types are acknowledged and counted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slawatch.services.ingest.sources import signatures as sig
from slawatch.services.ingest.sources.base import (
    Adapter,
    Delivery,
    Malformed,
    Settings,
    Translation,
    dig,
    event,
    instant,
    require,
    split_tags,
    text,
)
from slawatch.services.ingest.sources.jwks import KeySet, verify_rs256
from slawatch.services.ingest.sources.mapping import Resolved

TOKEN = "X-ZDesk-JWT"
MAX_EVENTS = 100

DEFAULTS = {
    "statuses": {
        "open": "open",
        "escalated": "open",
        "on hold": "on_hold",
        "closed": "closed",
        "resolved": "solved",
    },
    "priorities": {
        "urgent": "urgent",
        "high": "high",
        "medium": "normal",
        "low": "low",
        "-none-": "normal",
    },
    "channels": {
        "email": "email",
        "phone": "phone",
        "web": "web",
        "customer portal": "web",
        "forums": "social",
        "chat": "chat",
        "twitter": "social",
        "facebook": "social",
        "instagram": "social",
        "whatsapp": "chat",
        "telegram": "chat",
    },
}
_KEYSETS: dict[str, KeySet] = {}


def keyset(url: str) -> KeySet:
    if url not in _KEYSETS:
        _KEYSETS[url] = KeySet(url)
    return _KEYSETS[url]


async def verify(delivery: Delivery, settings: Settings) -> None:
    org = settings.extra.get("org_id")
    if not org:
        raise sig.Unauthorized(
            "this source is not configured (SLAWATCH_SOURCE_ZOHO_DESK_ORG_ID is unset)"
        )
    token = sig.header(delivery, TOKEN)
    claims = await verify_rs256(token, keyset(str(settings.extra["jwks_url"])))
    if claims.get("iss") != f"orgId:{org}":
        raise sig.Unauthorized("JWT issuer is not this organisation")
    webhook = settings.extra.get("webhook_id")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if webhook and f"webhookId:{webhook}" not in audiences:
        raise sig.Unauthorized("JWT audience is not this webhook")
    expires = claims.get("exp")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        raise sig.Unauthorized("JWT has no expiry (exp)")
    now = delivery.received_at
    if instant(expires, "exp") < now - timedelta(seconds=5):
        raise sig.Unauthorized("JWT has expired")
    issued = claims.get("iat")
    if isinstance(issued, (int, float)) and not isinstance(issued, bool):
        sig.check_fresh(instant(issued, "iat"), now, settings.replay_window_s, "JWT iat")
    if instant(expires, "exp") > now + timedelta(seconds=settings.replay_window_s + 3600):
        raise sig.Unauthorized("JWT expiry is too far away")


def _person(value: Any) -> str | None:
    return text(dig(value, "email")) or text(dig(value, "emailId")) or text(dig(value, "name"))


def _fields(ticket: Any, mapping: Resolved, body: Any, where: str) -> dict[str, Any]:
    return {
        "priority": mapping.priority(text(ticket.get("priority")), f"{where}.priority"),
        "group": text(dig(ticket, "team.name")) or text(dig(ticket, "department.name")),
        "assignee": _person(ticket.get("assignee")),
        "tags": split_tags(ticket.get("tags")) if "tags" in ticket else None,
        "customer_tier": mapping.tier(body),
    }


def _status(ticket: Any, mapping: Resolved, where: str) -> str | None:
    name = text(ticket.get("status"))
    if name is not None and name.lower() in mapping.statuses:
        return mapping.statuses[name.lower()]
    kind = text(ticket.get("statusType"))  # Open / On Hold / Closed: every status has one
    if kind is not None and kind.lower() in mapping.statuses:
        return mapping.statuses[kind.lower()]
    return mapping.status(name, f"{where}.status")


def _one(item: Any, index: int, mapping: Resolved) -> tuple[list[dict[str, Any]], str | None]:
    where = f"{index}"
    if not isinstance(item, dict):
        raise Malformed(where, "expected an event object")
    kind = require(item, "eventType")
    payload = item.get("payload")
    if kind not in ("Ticket_Add", "Ticket_Update", "Ticket_Thread_Add", "Ticket_Comment_Add"):
        return [], kind[:64]
    if not isinstance(payload, dict):
        raise Malformed(f"{where}.payload", "required")
    at = instant(item.get("eventTime"), f"{where}.eventTime")
    stamp = require(item, "eventTime")
    if kind in ("Ticket_Add", "Ticket_Update"):
        native = require(payload, "id")
        ticket_id = mapping.ticket(native)
        channel = mapping.channel_of(text(payload.get("channel")))
        fields = _fields(payload, mapping, item, f"{where}.payload")
        status = _status(payload, mapping, f"{where}.payload")
        key = f"zoho-desk:{native}"
        if kind == "Ticket_Add":
            created = payload.get("createdTime")
            data = {
                **fields,
                "status": status,
                "customer_id": text(payload.get("contactId")),
                "subject": text(payload.get("subject")),
                "url": text(payload.get("webUrl")),
            }
            when = instant(created, f"{where}.payload.createdTime") if created else at
            return [event(f"{key}:created", "ticket.created", ticket_id, when, channel, data)], None
        before = item.get("prevState") if isinstance(item.get("prevState"), dict) else None
        out: list[dict[str, Any]] = []

        def moved(name: str) -> bool:
            return before is None or name in before and before.get(name) != payload.get(name)

        if moved("assigneeId") or moved("teamId"):
            out.append(
                event(
                    f"{key}:{stamp}:assigned",
                    "ticket.assigned",
                    ticket_id,
                    at,
                    channel,
                    {"assignee": fields["assignee"], "group": fields["group"]},
                )
            )
        updated = {}
        if moved("priority") and fields["priority"] is not None:
            updated["priority"] = fields["priority"]
        if fields["tags"] is not None and moved("tags"):
            updated["tags"] = fields["tags"]
        if fields["customer_tier"] is not None and before is None:
            updated["customer_tier"] = fields["customer_tier"]
        if updated:
            out.append(
                event(f"{key}:{stamp}:fields", "ticket.updated", ticket_id, at, channel, updated)
            )
        if status is not None and (moved("status") or moved("statusType")):
            out.append(
                event(
                    f"{key}:{stamp}:status",
                    "ticket.status_changed",
                    ticket_id,
                    at,
                    channel,
                    {"status": status},
                )
            )
        return out, None if out else f"{kind} (no field slawatch uses changed)"
    native = require(payload, "ticketId")
    ticket_id = mapping.ticket(native)
    channel = (
        mapping.channel if mapping.channel else mapping.channel_of(text(payload.get("channel")))
    )
    message = require(payload, "id")
    key = f"zoho-desk:{native}:{'thread' if kind == 'Ticket_Thread_Add' else 'comment'}:{message}"
    if kind == "Ticket_Thread_Add":
        direction = (text(payload.get("direction")) or "").lower()
        author = (text(dig(payload, "author.type")) or "").upper()
        role = "customer" if direction == "in" or author == "END_USER" else "agent"
        visibility = (text(payload.get("visibility")) or "public").lower()
        created = payload.get("createdTime")
        when = instant(created, f"{where}.payload.createdTime") if created else at
        return [
            event(
                key,
                "message.created",
                ticket_id,
                when,
                channel,
                {"author_role": role, "public": visibility != "private"},
            )
        ], None
    public = payload.get("isPublic") is True
    created = payload.get("commentedTime")
    when = instant(created, f"{where}.payload.commentedTime") if created else at
    return [
        event(
            key,
            "message.created",
            ticket_id,
            when,
            channel,
            {"author_role": "agent", "public": public},
        )
    ], None


def translate(delivery: Delivery, document: Any, mapping: Resolved) -> Translation:
    items = document if isinstance(document, list) else [document]
    if not items:
        raise Malformed("(body)", "expected a non-empty array of events")
    if len(items) > MAX_EVENTS:
        raise Malformed("(body)", f"at most {MAX_EVENTS} events in one delivery")
    events: list[dict[str, Any]] = []
    ignored: list[str] = []
    for index, item in enumerate(items):
        found, why = _one(item, index, mapping)
        events.extend(found)
        if why:
            ignored.append(why)
    return Translation(events, None if events else ", ".join(sorted(set(ignored)))[:200] or "empty")


# "the callback URL must send a 200 OK response back. Event receipt is considered failed if
# the callback URL sends a response other than 200 OK" (Zoho Desk Webhook Documentation).
ADAPTER = Adapter(
    "zoho-desk",
    "Zoho Desk",
    verify,
    translate,
    body_kind="array",
    defaults=DEFAULTS,
    accepted_status=200,
)
