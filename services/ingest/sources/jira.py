"""Jira Service Management: a Jira admin webhook (System > WebHooks) with a secret.

Signature (Atlassian, "Webhooks: Secure admin webhooks",
https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks): a
webhook registered with a secret carries ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret,
raw body)>`` (the WebSub "method=signature" format). ``X-Atlassian-Webhook-Identifier`` is
the same on every retry of a delivery, so it makes the event ids (no timestamp is signed:
replays are harmless duplicates downstream).

Payloads are Jira's (``webhookEvent``, ``timestamp`` in ms, ``issue``, ``changelog``,
``comment``; shapes as in Atlassian's webhook docs and the real deliveries kept by Zulip's
Jira integration, zulip/zulip zerver/webhooks/jira/fixtures). A Service Management comment
tells internal from public with ``jsdPublic``, and a portal customer's account has
``accountType: customer``.
"""

from __future__ import annotations

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

SIGNATURE = "X-Hub-Signature"
DELIVERY = "X-Atlassian-Webhook-Identifier"

DEFAULTS = {
    # Service Management's default workflow, plus Jira's generic statuses.
    "statuses": {
        "open": "open",
        "to do": "open",
        "waiting for support": "open",
        "in progress": "open",
        "work in progress": "open",
        "escalated": "open",
        "reopened": "open",
        "waiting for customer": "pending",
        "pending": "on_hold",
        "waiting for approval": "on_hold",
        "resolved": "solved",
        "done": "solved",
        "completed": "solved",
        "closed": "closed",
        "canceled": "closed",
        "cancelled": "closed",
        "declined": "closed",
    },
    "priorities": {
        "highest": "urgent",
        "blocker": "urgent",
        "critical": "urgent",
        "high": "high",
        "major": "high",
        "medium": "normal",
        "low": "low",
        "minor": "low",
        "lowest": "low",
        "trivial": "low",
    },
    "channels": {"email": "email", "portal": "web", "api": "api", "jira": "other"},
}
# A status not listed falls back to its category: every Jira status has one.
_CATEGORY = {"new": "open", "indeterminate": "open", "done": "solved"}
_HANDLED = {"jira:issue_created", "jira:issue_updated", "comment_created"}


async def verify(delivery: Delivery, settings: Settings) -> None:
    secret = sig.need_secret(settings, "SLAWATCH_SOURCE_JIRA_SECRET")
    signature = sig.header(delivery, SIGNATURE)
    expected = sig.hmac_digest(secret, delivery.body, "sha256")
    sig.check_prefixed_hex(signature, "sha256=", expected, SIGNATURE)


def _person(value: Any) -> str | None:
    return (
        text(dig(value, "emailAddress"))
        or text(dig(value, "displayName"))
        or text(dig(value, "accountId"))
    )


def _status(issue: Any, mapping: Resolved, name: str | None = None) -> str | None:
    name = name or text(dig(issue, "fields.status.name"))
    if name is None:
        return None
    if name.lower() in mapping.statuses:
        return mapping.statuses[name.lower()]
    category = text(dig(issue, "fields.status.statusCategory.key"))
    if category in _CATEGORY and name == text(dig(issue, "fields.status.name")):
        return _CATEGORY[category]
    return mapping.status(name, "issue.fields.status.name")


def translate(delivery: Delivery, document: Any, mapping: Resolved) -> Translation:
    body = mapping_object(document)
    kind = text(body.get("webhookEvent"))
    if kind is None:
        raise Malformed("webhookEvent", "required")
    if kind not in _HANDLED:
        return Translation(ignored=kind[:64])
    issue = body.get("issue")
    if not isinstance(issue, dict):
        raise Malformed("issue", "required")
    native = require(issue, "id")
    ticket_id = mapping.ticket(native)
    at = instant(body.get("timestamp"), "timestamp")
    channel = mapping.channel_of(text(dig(issue, "fields.customfield_requestChannel")))
    delivery_id = text(delivery.header(DELIVERY)) or delivery.body_hash
    key = f"jira:{native}:{delivery_id}"
    priority = mapping.priority(
        text(dig(issue, "fields.priority.name")), "issue.fields.priority.name"
    )
    fields = {
        "priority": priority,
        "assignee": _person(dig(issue, "fields.assignee")),
        "tags": split_tags(dig(issue, "fields.labels")),
        "customer_tier": mapping.tier(body),
    }
    data: dict[str, Any]  # each branch builds the data of its own event type
    if kind == "jira:issue_created":
        created = dig(issue, "fields.created")
        data = {
            **fields,
            "status": _status(issue, mapping),
            "customer_id": text(dig(issue, "fields.reporter.accountId")),
            "subject": subject[:1024] if (subject := text(dig(issue, "fields.summary"))) else None,
            "url": _browse_url(issue),
        }
        when = instant(created, "issue.fields.created") if created else at
        return Translation(
            [event(f"jira:{native}:created", "ticket.created", ticket_id, when, channel, data)]
        )
    comment = body.get("comment")
    if kind == "comment_created" or (
        isinstance(comment, dict) and dig(body, "issue_event_type_name") == "issue_commented"
    ):
        if not isinstance(comment, dict):
            raise Malformed("comment", "required for comment_created")
        comment_id = require(comment, "id")
        role = "customer" if text(dig(comment, "author.accountType")) == "customer" else "agent"
        public = dig(comment, "jsdPublic")
        created = dig(comment, "created")
        data = {"author_role": role, "public": public is not False}
        when = instant(created, "comment.created") if created else at
        return Translation(
            [
                event(
                    f"jira:{native}:comment:{comment_id}",
                    "message.created",
                    ticket_id,
                    when,
                    channel,
                    data,
                )
            ]
        )
    events: list[dict[str, Any]] = []
    items = dig(body, "changelog.items") or []
    if not isinstance(items, list):
        raise Malformed("changelog.items", "expected a list")
    for index, item in enumerate(items):
        name = (text(dig(item, "field")) or "").lower()
        suffix = f"{key}:{index}"
        if name == "status":
            status = _status(issue, mapping, text(dig(item, "toString")))
            events.append(
                event(suffix, "ticket.status_changed", ticket_id, at, channel, {"status": status})
            )
        elif name == "priority":
            to = mapping.priority(text(dig(item, "toString")), f"changelog.items.{index}.toString")
            events.append(event(suffix, "ticket.updated", ticket_id, at, channel, {"priority": to}))
        elif name == "assignee":
            data = {"assignee": fields["assignee"]}
            events.append(event(suffix, "ticket.assigned", ticket_id, at, channel, data))
        elif name == "labels":
            events.append(
                event(
                    suffix, "ticket.updated", ticket_id, at, channel, {"tags": fields["tags"] or []}
                )
            )
        elif name == "satisfaction":
            score = text(dig(item, "to")) or text(dig(item, "toString"))
            if score is not None and score.isdigit() and 1 <= int(score) <= 5:
                events.append(
                    event(suffix, "survey.responded", ticket_id, at, channel, {"csat": int(score)})
                )
    if not events:
        return Translation(ignored=f"{kind} (no field slawatch uses changed)")
    return Translation(events)


def _browse_url(issue: Any) -> str | None:
    api, key = text(dig(issue, "self")), text(dig(issue, "key"))
    if api is None or key is None or "/rest/" not in api:
        return None
    return api.split("/rest/", 1)[0] + "/browse/" + key


ADAPTER = Adapter("jira", "Jira Service Management", verify, translate, defaults=DEFAULTS)
