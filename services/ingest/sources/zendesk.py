"""Zendesk: a webhook connected to a trigger, with the body template of docs/sources.md.

Signature (Zendesk, "Verifying webhook authenticity",
https://developer.zendesk.com/documentation/webhooks/verifying/): the request carries
``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(signing secret,
``X-Zendesk-Webhook-Signature-Timestamp`` + raw body)); the timestamp (ISO 8601) bounds
replays.

The body is written by the admin (Zendesk renders the trigger's JSON with placeholders, see
Zendesk's "Placeholders reference"); slawatch ships the template. Each delivery carries
the ticket's current state and its latest comment, not what changed, so one delivery
becomes the state events it implies, each with an id that makes repeats harmless:
``ticket.created`` (once per ticket, at its creation time), the latest comment as
``message.created`` (once per comment), and the current status, fields and satisfaction.
The engine ignores a status that did not change. Event subscriptions
(``zen:event-type:...`` bodies) are acknowledged and counted as ignored.
"""

from __future__ import annotations

from datetime import datetime
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
    mapping_object,
    require,
    snapshot_events,
    split_tags,
    text,
)
from slawatch.services.ingest.sources.mapping import Resolved

SIGNATURE = "X-Zendesk-Webhook-Signature"
TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"

DEFAULTS = {
    # {{ticket.status}} renders the status' name; new/open/pending/hold/solved/closed.
    "statuses": {
        "new": "new",
        "open": "open",
        "pending": "pending",
        "on-hold": "on_hold",
        "on hold": "on_hold",
        "hold": "on_hold",
        "solved": "solved",
        "closed": "closed",
    },
    "priorities": {"urgent": "urgent", "high": "high", "normal": "normal", "low": "low"},
    # {{ticket.via}}: the channel's name.
    "channels": {
        "mail": "email",
        "email": "email",
        "web form": "web",
        "web widget": "web",
        "help center": "web",
        "chat": "chat",
        "messaging": "chat",
        "native messaging": "chat",
        "whatsapp": "chat",
        "voice": "phone",
        "phone call (incoming)": "phone",
        "phone call (outgoing)": "phone",
        "web service (api)": "api",
        "api": "api",
        "twitter": "social",
        "facebook": "social",
        "instagram direct": "social",
    },
}
# {{satisfaction.current_rating}}: Zendesk's CSAT is good/bad.
_CSAT = {"good": 5, "bad": 1}


async def verify(delivery: Delivery, settings: Settings) -> None:
    secret = sig.need_secret(settings, "SLAWATCH_SOURCE_ZENDESK_SECRET")
    signature = sig.header(delivery, SIGNATURE)
    stamp = sig.header(delivery, TIMESTAMP)
    try:
        moment = instant(stamp, TIMESTAMP)
    except Malformed:
        raise sig.Unauthorized(f"{TIMESTAMP} is not a time") from None
    sig.check_fresh(moment, delivery.received_at, settings.replay_window_s, TIMESTAMP)
    expected = sig.hmac_digest(secret, stamp.encode() + delivery.body, "sha256")
    sig.check_base64(signature, expected, SIGNATURE)


def _author_role(comment: Any, ticket: Any) -> str:
    role = (text(dig(comment, "author_role")) or "").lower()
    if role in ("end-user", "end_user", "enduser", "customer"):
        return "customer"
    if role in ("agent", "admin", "light agent"):
        return "agent"
    author, requester = text(dig(comment, "author_id")), text(dig(ticket, "requester_id"))
    if author is not None and requester is not None:
        return "customer" if author == requester else "agent"
    raise Malformed("comment.author_role", "cannot tell whether the author is an agent")


def _public(comment: Any) -> bool:
    value = text(dig(comment, "public"))
    return value is None or value.lower() not in ("false", "0", "no")


def translate(delivery: Delivery, document: Any, mapping: Resolved) -> Translation:
    body = mapping_object(document)
    kind = text(body.get("type"))
    if kind is not None and kind.startswith("zen:event-type:"):
        return Translation(ignored=kind)
    ticket = body.get("ticket")
    if not isinstance(ticket, dict):
        raise Malformed("ticket", "required (the slawatch body template of docs/sources.md)")
    native = require(ticket, "id")
    ticket_id = mapping.ticket(native)
    channel = mapping.channel_of(text(ticket.get("via")))
    created_at = instant(ticket.get("created_at"), "ticket.created_at")
    updated_at = (
        instant(ticket["updated_at"], "ticket.updated_at")
        if text(ticket.get("updated_at"))
        else created_at
    )
    status = mapping.status(text(ticket.get("status")), "ticket.status")
    priority = mapping.priority(text(ticket.get("priority")), "ticket.priority")
    tier = mapping.tier(body)
    fields = {
        "priority": priority,
        "group": text(ticket.get("group")),
        "assignee": text(ticket.get("assignee")),
        "tags": split_tags(ticket.get("tags")),
        "customer_tier": tier,
    }
    key = f"zendesk:{native}"
    events = [
        event(
            f"{key}:created",
            "ticket.created",
            ticket_id,
            created_at,
            channel,
            {
                **fields,
                "status": status,
                "customer_id": text(ticket.get("requester_id")),
                "subject": text(ticket.get("subject")),
                "url": text(ticket.get("url")),
            },
        )
    ]
    if updated_at == created_at:
        return Translation(events)
    stamp = f"{key}:{delivery.body_hash}"
    comment = body.get("comment")
    comment_id = text(dig(comment, "id"))
    if comment_id is not None:
        at = instant(dig(comment, "created_at") or updated_at.isoformat(), "comment.created_at")
        if _same_update(at, updated_at):
            events.append(
                event(
                    f"{key}:comment:{comment_id}",
                    "message.created",
                    ticket_id,
                    at,
                    channel,
                    {"author_role": _author_role(comment, ticket), "public": _public(comment)},
                )
            )
    events += snapshot_events(stamp, ticket_id, updated_at, channel, fields, status)
    rating = (text(ticket.get("satisfaction")) or "").lower()
    if rating in _CSAT:
        events.append(
            event(
                f"{key}:satisfaction:{rating}",
                "survey.responded",
                ticket_id,
                updated_at,
                channel,
                {"csat": _CSAT[rating]},
            )
        )
    return Translation(events)


def _same_update(comment_at: datetime, updated_at: datetime) -> bool:
    """The latest comment belongs to this update (Zendesk stamps both with the update's time,
    to the second); an update without a new comment repeats an older one, already sent."""
    return comment_at.replace(microsecond=0) == updated_at.replace(microsecond=0)


ADAPTER = Adapter("zendesk", "Zendesk", verify, translate, defaults=DEFAULTS)
