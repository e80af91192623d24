"""Chatwoot: an account webhook (Settings > Integrations > Webhooks) with a secret.

Signature, confirmed from Chatwoot's source (chatwoot/chatwoot ``lib/webhooks/trigger.rb``,
``Webhooks::Trigger#request_headers``): when the webhook has a secret, Chatwoot sends
``X-Chatwoot-Timestamp: <Unix seconds>`` and ``X-Chatwoot-Signature: sha256=<hex
HMAC-SHA256(secret, "<timestamp>.<body>")>``, the body being exactly the JSON it posts
(``payload.to_json``). ``X-Chatwoot-Delivery`` is sent when the job has a delivery id: a
UUID the listener draws when it enqueues the job (``delivery_id: SecureRandom.uuid``), so a
retry of the job repeats it (account webhooks are not retried: chatwoot/chatwoot issue
15920); without the header a hash of the body stands in. Account webhooks are signed from
Chatwoot v4.11.2 (pull request 13573; a maintainer dates it in issue 13862), API-inbox and
agent-bot webhooks from v4.13.0 (pull request 13892). Chatwoot waits 5 s for an answer
(``WEBHOOK_TIMEOUT``).

Payloads are Chatwoot's (app/listeners/webhook_listener.rb: ``event`` plus the
conversation's ``webhook_data`` — Conversations::EventDataPresenter#push_data — or the
message's, which embeds its conversation; ``changed_attributes`` on updates). A
conversation's ``id`` is its display id, unique only within its account, so the ticket id
is namespaced by the inbox (an inbox belongs to one account and a conversation never
leaves its inbox): ``chatwoot:<inbox_id>:<display_id>``. CSAT answers arrive as
``message_updated`` of an ``input_csat`` message.
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
    split_tags,
    text,
)
from slawatch.services.ingest.sources.mapping import Resolved

SIGNATURE = "X-Chatwoot-Signature"
TIMESTAMP = "X-Chatwoot-Timestamp"
DELIVERY = "X-Chatwoot-Delivery"

DEFAULTS = {
    # Conversation#status: open, resolved, pending (bot), snoozed.
    "statuses": {"open": "open", "resolved": "solved", "pending": "new", "snoozed": "on_hold"},
    # Conversation#priority: low, medium, high, urgent (nil: none).
    "priorities": {"low": "low", "medium": "normal", "high": "high", "urgent": "urgent"},
    "channels": {
        "channel::webwidget": "chat",
        "channel::email": "email",
        "channel::api": "api",
        "channel::whatsapp": "chat",
        "channel::twiliosms": "chat",
        "channel::sms": "chat",
        "channel::telegram": "chat",
        "channel::line": "chat",
        "channel::facebookpage": "social",
        "channel::twitterprofile": "social",
        "channel::instagram": "social",
        "channel::tiktok": "social",
        "channel::voice": "phone",
    },
}
_CONVERSATION_EVENTS = {
    "conversation_created",
    "conversation_status_changed",
    "conversation_updated",
}
_MESSAGE_EVENTS = {"message_created", "message_updated"}


async def verify(delivery: Delivery, settings: Settings) -> None:
    secret = sig.need_secret(settings, "SLAWATCH_SOURCE_CHATWOOT_SECRET")
    signature = sig.header(delivery, SIGNATURE)
    stamp = sig.header(delivery, TIMESTAMP)
    if not stamp.isdigit() or len(stamp) > 12:
        raise sig.Unauthorized(f"{TIMESTAMP} is not a Unix time")
    moment = instant(int(stamp), TIMESTAMP)
    sig.check_fresh(moment, delivery.received_at, settings.replay_window_s, TIMESTAMP)
    expected = sig.hmac_digest(secret, stamp.encode() + b"." + delivery.body, "sha256")
    sig.check_prefixed_hex(signature, "sha256=", expected, SIGNATURE)


def _ticket(conversation: Any, mapping: Resolved, where: str) -> tuple[str, str]:
    display = require(conversation, "id")
    inbox = text(dig(conversation, "inbox_id"))
    if inbox is None:
        raise Malformed(
            f"{where}.inbox_id", "required (conversation ids are unique per account only)"
        )
    native = f"{inbox}:{display}"
    return native, mapping.ticket(native)


def _when(value: Any, where: str, fallback: datetime) -> datetime:
    return instant(value, where) if value not in (None, "", 0) else fallback


def _fields(conversation: Any, mapping: Resolved, body: Any) -> dict[str, Any]:
    return {
        "priority": mapping.priority(text(conversation.get("priority")), "priority"),
        "group": text(dig(conversation, "meta.team.name")),
        "assignee": text(dig(conversation, "meta.assignee.email"))
        or text(dig(conversation, "meta.assignee.name")),
        "tags": split_tags(conversation.get("labels")),
        "customer_tier": mapping.tier(body),
    }


def translate(delivery: Delivery, document: Any, mapping: Resolved) -> Translation:
    body = mapping_object(document)
    kind = text(body.get("event"))
    if kind is None:
        raise Malformed("event", "required")
    stamp = text(delivery.header(TIMESTAMP))
    sent_at = instant(int(stamp), TIMESTAMP) if stamp and stamp.isdigit() else delivery.received_at
    delivery_id = text(delivery.header(DELIVERY)) or delivery.body_hash
    if kind in _CONVERSATION_EVENTS:
        native, ticket_id = _ticket(body, mapping, "(body)")
        channel = mapping.channel_of(text(body.get("channel")))
        key = f"chatwoot:{native}"
        fields = _fields(body, mapping, body)
        status = mapping.status(text(body.get("status")), "status")
        if kind == "conversation_created":
            data = {**fields, "status": status, "customer_id": text(dig(body, "meta.sender.id"))}
            at = _when(body.get("created_at"), "created_at", sent_at)
            return Translation(
                [event(f"{key}:created", "ticket.created", ticket_id, at, channel, data)]
            )
        at = _when(body.get("updated_at"), "updated_at", sent_at)
        if kind == "conversation_status_changed":
            return Translation(
                [
                    event(
                        f"{key}:{delivery_id}:status",
                        "ticket.status_changed",
                        ticket_id,
                        at,
                        channel,
                        {"status": status},
                    )
                ]
            )
        changed = body.get("changed_attributes")
        names: set[str] = set()
        if isinstance(changed, list):
            for item in changed:
                if isinstance(item, dict):
                    names.update(str(k) for k in item)
        elif isinstance(changed, dict):
            names.update(str(k) for k in changed)
        events = []
        if names & {"assignee_id", "team_id", "assignee_agent_bot_id"}:
            data = {"assignee": fields["assignee"], "group": fields["group"]}
            events.append(
                event(
                    f"{key}:{delivery_id}:assigned", "ticket.assigned", ticket_id, at, channel, data
                )
            )
        updated = {}
        if "priority" in names and fields["priority"] is not None:
            updated["priority"] = fields["priority"]
        if "label_list" in names or "cached_label_list" in names:
            updated["tags"] = fields["tags"] or []
        if updated:
            events.append(
                event(
                    f"{key}:{delivery_id}:fields", "ticket.updated", ticket_id, at, channel, updated
                )
            )
        if not events:
            return Translation(ignored=f"{kind} (no field slawatch uses changed)")
        return Translation(events)
    if kind in _MESSAGE_EVENTS:
        conversation = body.get("conversation")
        if not isinstance(conversation, dict):
            raise Malformed("conversation", "required")
        native, ticket_id = _ticket(conversation, mapping, "conversation")
        channel = mapping.channel_of(text(conversation.get("channel")))
        message_id = require(body, "id")
        at = _when(body.get("created_at"), "created_at", sent_at)
        key = f"chatwoot:{native}:message:{message_id}"
        if kind == "message_updated":
            if text(body.get("content_type")) != "input_csat":
                return Translation(ignored="message_updated")
            rating = dig(body, "content_attributes.submitted_values.csat_survey_response.rating")
            if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
                raise Malformed(
                    "content_attributes.submitted_values.csat_survey_response.rating",
                    "expected 1-5",
                )
            at = _when(body.get("updated_at"), "updated_at", sent_at)
            return Translation(
                [event(f"{key}:csat", "survey.responded", ticket_id, at, channel, {"csat": rating})]
            )
        message_type = text(body.get("message_type"))
        if message_type in ("activity", "template", "2", "3"):
            return Translation(ignored=f"message_created ({message_type})")
        if message_type in ("incoming", "0"):
            role = "customer"
        elif message_type in ("outgoing", "1"):
            role = "system" if text(dig(body, "sender.type")) == "agent_bot" else "agent"
        else:
            raise Malformed("message_type", f"unknown message type {str(message_type)[:40]!r}")
        data = {"author_role": role, "public": body.get("private") is not True}
        return Translation([event(key, "message.created", ticket_id, at, channel, data)])
    return Translation(ignored=kind[:64])


ADAPTER = Adapter("chatwoot", "Chatwoot", verify, translate, defaults=DEFAULTS)
