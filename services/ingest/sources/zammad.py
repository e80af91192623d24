"""Zammad: a webhook (Manage > Webhook) called by a trigger on ticket creation and update.

Signature (Zammad's own code: lib/user_agent.rb ``set_signature`` and
app/jobs/trigger_webhook_job.rb in zammad/zammad; Zammad admin docs "Webhook"): with a
signature token the request carries ``X-Hub-Signature: sha1=<hex HMAC-SHA1(token, raw
body)>``; ``X-Zammad-Delivery`` is the job's id, the same on each of its retries;
``X-Zammad-Trigger`` names the trigger. Nothing is timestamped.

The default payload is ``{"ticket": {...}, "article": {...}}`` (TriggerWebhookJob::
RecordPayload: the ticket's attributes with the names of its state, priority and group,
and the owner/customer/organization records; the article of the update, if any). There is
no event type: a delivery carries the ticket's current state, so it becomes the state
events it implies with ids that make repeats harmless (``ticket.created`` once per ticket,
``message.created`` once per article) plus the current status and fields.
"""

from __future__ import annotations

import re
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

SIGNATURE = "X-Hub-Signature"
DELIVERY = "X-Zammad-Delivery"

DEFAULTS = {
    "statuses": {
        "new": "new",
        "open": "open",
        "pending reminder": "pending",
        "pending close": "pending",
        "closed": "closed",
        "merged": "closed",
        "removed": "closed",
    },
    # "1 low", "2 normal", "3 high": the number is stripped before the lookup.
    "priorities": {"low": "low", "normal": "normal", "high": "high", "urgent": "urgent"},
    "channels": {
        "email": "email",
        "phone": "phone",
        "web": "web",
        "chat": "chat",
        "sms": "chat",
        "telegram personal-message": "chat",
        "whatsapp message": "chat",
        "twitter status": "social",
        "twitter direct-message": "social",
        "facebook feed post": "social",
        "facebook feed comment": "social",
        "note": "other",
    },
}
_SENDER = {"customer": "customer", "agent": "agent", "system": "system"}


async def verify(delivery: Delivery, settings: Settings) -> None:
    secret = sig.need_secret(settings, "SLAWATCH_SOURCE_ZAMMAD_SECRET")
    signature = sig.header(delivery, SIGNATURE)
    expected = sig.hmac_digest(secret, delivery.body, "sha1")
    sig.check_prefixed_hex(signature, "sha1=", expected, SIGNATURE)


def _name(value: Any) -> str | None:
    """An association as Zammad sends it: a record (``{"name": ...}``) or its name."""
    return text(dig(value, "name")) if isinstance(value, dict) else text(value)


def _owner(ticket: Any) -> str | None:
    owner = ticket.get("owner")
    if isinstance(owner, dict):
        if text(owner.get("id")) == "1":  # user 1 is Zammad's "-" (nobody)
            return None
        return text(owner.get("email")) or text(owner.get("login"))
    value = text(owner)
    return None if value in (None, "-") else value


def translate(delivery: Delivery, document: Any, mapping: Resolved) -> Translation:
    body = mapping_object(document)
    ticket = body.get("ticket")
    if not isinstance(ticket, dict):
        raise Malformed("ticket", "required")
    native = require(ticket, "id")
    ticket_id = mapping.ticket(native)
    created_at = instant(ticket.get("created_at"), "ticket.created_at")
    updated_at = instant(ticket.get("updated_at") or ticket.get("created_at"), "ticket.updated_at")
    channel = mapping.channel_of(text(ticket.get("create_article_type")))
    state = _name(ticket.get("state"))
    status = mapping.status(state, "ticket.state")
    raw_priority = _name(ticket.get("priority"))
    priority = mapping.priority(
        re.sub(r"^\d+\s+", "", raw_priority) if raw_priority else None, "ticket.priority"
    )
    fields = {
        "priority": priority,
        "group": _name(ticket.get("group")),
        "assignee": _owner(ticket),
        "tags": split_tags(ticket.get("tags")) if "tags" in ticket else None,
        "customer_tier": mapping.tier(body),
    }
    key = f"zammad:{native}"
    stamp = f"{key}:{text(delivery.header(DELIVERY)) or delivery.body_hash}"
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
                "customer_id": text(dig(ticket, "customer.id")) or text(ticket.get("customer_id")),
                "subject": text(ticket.get("title")),
            },
        )
    ]
    article = body.get("article")
    if isinstance(article, dict) and text(article.get("id")) is not None:
        sender = (_name(article.get("sender")) or "").lower()
        if sender not in _SENDER:
            raise Malformed("article.sender", f"unknown sender {sender[:40]!r}")
        first = text(article.get("id")) == text(dig(ticket, "article_ids.0"))
        if not (first and sender == "customer"):  # the opening message is the ticket itself
            internal = article.get("internal")
            events.append(
                event(
                    f"{key}:article:{article['id']}",
                    "message.created",
                    ticket_id,
                    instant(
                        article.get("created_at") or ticket.get("updated_at"), "article.created_at"
                    ),
                    channel,
                    {"author_role": _SENDER[sender], "public": internal is not True},
                )
            )
    if updated_at != created_at:
        events += snapshot_events(stamp, ticket_id, updated_at, channel, fields, status)
    return Translation(events)


ADAPTER = Adapter("zammad", "Zammad", verify, translate, defaults=DEFAULTS)
