"""Native webhook payloads of the six helpdesks, one ticket's life each, with the source of
every shape next to it, and the signed headers each system would send.

A life: created -> agent public reply -> customer reply -> internal note -> priority,
group and assignee change -> pending -> solved -> reopened -> solved -> satisfaction.
Each step lists the slawatch events it must become (type and the data that matters).
Times are ``t0 + n`` seconds so the monitor test can post the same life as slawatch events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

SECRET = "test-secret-not-a-real-one"


@dataclass
class Step:
    name: str
    body: Any
    expected: list[tuple[str, dict[str, Any]]]
    headers: dict[str, str] = field(default_factory=dict)
    at: int = 0  # seconds after t0 the step happened

    def raw(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


def z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def hub(secret: str, body: bytes, algo: str) -> str:
    return f"{algo}=" + hmac.new(secret.encode(), body, getattr(hashlib, algo)).hexdigest()


# ---------------------------------------------------------------------------- Zendesk
# Body: the slawatch trigger template of docs/sources.md, rendered as Zendesk renders its
# placeholders ({{ticket.status}} -> "Open", {{ticket.priority}} -> "High", {{ticket.tags}}
# space-separated, *_with_timestamp ISO 8601; Zendesk "Placeholders reference"). Headers:
# X-Zendesk-Webhook-Signature(-Timestamp), developer.zendesk.com/documentation/webhooks/verifying/.


def zendesk_sign(body: bytes, secret: str, now: datetime) -> dict[str, str]:
    stamp = z(now)
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Zendesk-Webhook-Id": "01GK8E6BKWMJZD2T8Y5AXJQMG5",
    }


def zendesk_life(t0: datetime) -> list[Step]:
    def body(at: int, status: str, comment: dict | None = None, **over: Any) -> dict:
        ticket = {
            "id": "35436",
            "status": status,
            "priority": "High",
            "group": "Billing",
            "assignee": "",
            "tags": "invoice refund",
            "via": "Mail",
            "organization": "Acme Gold",
            "requester_id": "500",
            "subject": "Charged twice",
            "url": "acme.zendesk.com/agent/tickets/35436",
            "created_at": z(t0),
            "updated_at": z(t0 + timedelta(seconds=at)),
            "satisfaction": "Unoffered",
        }
        ticket.update(over)
        out: dict[str, Any] = {"ticket": ticket}
        if comment:
            out["comment"] = {"created_at": z(t0 + timedelta(seconds=at)), **comment}
        return out

    agent = {"author_id": "900", "author_role": "Agent"}
    customer = {"author_id": "500", "author_role": "End-user"}
    state = ("ticket.created",)
    return [
        Step(
            "creation",
            body(0, "New"),
            [
                (
                    "ticket.created",
                    {
                        "priority": "high",
                        "group": "Billing",
                        "status": "new",
                        "tags": ["invoice", "refund"],
                    },
                )
            ],
            at=0,
        ),
        Step(
            "public agent reply",
            body(1, "Open", {"id": "101", "public": "true", **agent}),
            [
                (state[0], {}),
                ("message.created", {"author_role": "agent", "public": True}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "open"}),
            ],
            at=1,
        ),
        Step(
            "customer reply",
            body(2, "Open", {"id": "102", "public": "true", **customer}),
            [
                (state[0], {}),
                ("message.created", {"author_role": "customer", "public": True}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "open"}),
            ],
            at=2,
        ),
        Step(
            "internal note",
            body(3, "Open", {"id": "103", "public": "false", **agent}),
            [
                (state[0], {}),
                ("message.created", {"author_role": "agent", "public": False}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {}),
            ],
            at=3,
        ),
        Step(
            "priority, group and assignee change",
            body(
                4,
                "Open",
                {
                    "id": "103",
                    "public": "false",
                    **agent,
                    "created_at": z(t0 + timedelta(seconds=3)),
                },
                priority="Urgent",
                group="Billing L2",
                assignee="li.na@acme.example",
            ),
            [
                (state[0], {}),
                (
                    "ticket.updated",
                    {"priority": "urgent", "group": "Billing L2", "assignee": "li.na@acme.example"},
                ),
                ("ticket.status_changed", {"status": "open"}),
            ],
            at=4,
        ),
        Step(
            "status change",
            body(
                5,
                "Pending",
                None,
                priority="Urgent",
                group="Billing L2",
                assignee="li.na@acme.example",
            ),
            [
                (state[0], {}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "pending"}),
            ],
            at=5,
        ),
        Step(
            "solved",
            body(
                6,
                "Solved",
                None,
                priority="Urgent",
                group="Billing L2",
                assignee="li.na@acme.example",
            ),
            [
                (state[0], {}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "solved"}),
            ],
            at=6,
        ),
        Step(
            "reopened",
            body(
                7,
                "Open",
                {"id": "104", "public": "true", **customer},
                priority="Urgent",
                group="Billing L2",
                assignee="li.na@acme.example",
            ),
            [
                (state[0], {}),
                ("message.created", {"author_role": "customer"}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "open"}),
            ],
            at=7,
        ),
        Step(
            "solved again",
            body(
                8,
                "Solved",
                None,
                priority="Urgent",
                group="Billing L2",
                assignee="li.na@acme.example",
            ),
            [
                (state[0], {}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "solved"}),
            ],
            at=8,
        ),
        Step(
            "satisfaction rating",
            body(
                9,
                "Solved",
                None,
                priority="Urgent",
                group="Billing L2",
                assignee="li.na@acme.example",
                satisfaction="Good",
            ),
            [
                (state[0], {}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "solved"}),
                ("survey.responded", {"csat": 5}),
            ],
            at=9,
        ),
    ]


ZENDESK_UNKNOWN = {
    # An event-subscription payload (developer.zendesk.com/api-reference/webhooks/event-types/
    # webhook-event-types/, "Event schema" example).
    "type": "zen:event-type:user.active_changed",
    "account_id": 12514403,
    "id": "2b24ef10-19d4-4740-93cf-8f98ec4776c0",
    "time": "2099-07-04T05:33:18Z",
    "zendesk_event_version": "2022-06-20",
    "subject": "zen:user:6596848315901",
    "detail": {"id": "6596848315901", "role": "end-user"},
    "event": {"current": False, "previous": True},
}

# ---------------------------------------------------------------------------- Freshdesk
# Body: {"freshdesk_webhook": {...}} with the placeholders of docs/sources.md; the shape and
# the rendered {{triggered_event}} values ("{ticket_action:created}", "{status:{from:4,to:6}}",
# "{note_type:private}") as in Zulip's Freshdesk integration (zulip/zulip
# zerver/webhooks/freshdesk/doc.md and fixtures/*.json, captured from Freshdesk).


def freshdesk_sign(body: bytes, secret: str, now: datetime) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"slawatch:{secret}".encode()).decode()}


def freshdesk_life(t0: datetime) -> list[Step]:
    def body(event: str, status: str = "Open", **over: Any) -> dict:
        ticket = {
            "triggered_event": event,
            "ticket_id": "11",
            "ticket_url": "http://acme.freshdesk.com/helpdesk/tickets/11",
            "ticket_subject": "Charged twice",
            "ticket_status": status,
            "ticket_priority": "High",
            "ticket_source": "Email",
            "ticket_group_name": "Billing",
            "ticket_agent_email": "",
            "ticket_tags": "invoice,refund",
            "ticket_company_name": "Acme Gold",
            "requester_email": "requester-bob@example.com",
        }
        ticket.update(over)
        return {"freshdesk_webhook": ticket}

    later = {
        "ticket_priority": "Urgent",
        "ticket_group_name": "Billing L2",
        "ticket_agent_email": "li.na@acme.example",
    }
    return [
        Step(
            "creation",
            body("{ticket_action:created}"),
            [("ticket.created", {"priority": "high", "group": "Billing", "status": "open"})],
            at=0,
        ),
        Step(
            "public agent reply",
            body("{reply_sent:sent}"),
            [("message.created", {"author_role": "agent", "public": True})],
            at=1,
        ),
        Step(
            "customer reply",
            body("{customer_reply:received}"),
            [("message.created", {"author_role": "customer", "public": True})],
            at=2,
        ),
        Step(
            "internal note",
            body("{note_type:private}"),
            [("message.created", {"author_role": "agent", "public": False})],
            at=3,
        ),
        Step(
            "priority change",
            body("{priority:{from:3,to:4}}", **later),
            [("ticket.updated", {"priority": "urgent"})],
            at=4,
        ),
        Step(
            "group and assignee change",
            body("{responder_id:{from:,to:42}}", **later),
            [("ticket.assigned", {"group": "Billing L2", "assignee": "li.na@acme.example"})],
            at=4,
        ),
        Step(
            "status change",
            body("{status:{from:2,to:3}}", "Pending", **later),
            [("ticket.status_changed", {"status": "pending"})],
            at=5,
        ),
        Step(
            "solved",
            body("{status:{from:3,to:4}}", "Resolved", **later),
            [("ticket.status_changed", {"status": "solved"})],
            at=6,
        ),
        Step(
            "reopened",
            body("{status:{from:4,to:2}}", "Open", **later),
            [("ticket.status_changed", {"status": "open"})],
            at=7,
        ),
        Step(
            "solved again",
            body("{status:{from:2,to:4}}", "Resolved", **later),
            [("ticket.status_changed", {"status": "solved"})],
            at=8,
        ),
        Step(
            "satisfaction rating",
            body(
                "{customer_feedback:received}",
                "Resolved",
                ticket_satisfaction_rating="Extremely satisfied",
                **later,
            ),
            [("survey.responded", {"csat": 5})],
            at=9,
        ),
    ]


FRESHDESK_UNKNOWN = {
    "freshdesk_webhook": {"triggered_event": "{ticket_action:deleted_forever}", "ticket_id": "11"}
}

# ---------------------------------------------------------------------------- Zoho Desk
# Body: an array of {eventType, eventTime (ms), orgId, payload, prevState} (Zoho Desk
# "Webhook Documentation", desk.zoho.com/support/WebhookDocument.do; the same envelope as
# read by simstudioai/sim's Zoho Desk provider). Ticket payloads use the ticket resource's
# fields (Zoho Desk API: id, subject, status, statusType, priority, channel, assignee, team,
# contactId, webUrl, createdTime); threads: direction, visibility, author.type; comments:
# isPublic, commentedTime.

ZOHO_ORG = "60001234"


def zoho_life(t0: datetime) -> list[Step]:
    def at(n: int) -> datetime:
        return t0 + timedelta(seconds=n)

    def ticket(n: int, status: str, kind: str = "Open", **over: Any) -> dict:
        t = {
            "id": "1892000000143237",
            "ticketNumber": "101",
            "subject": "Charged twice",
            "status": status,
            "statusType": kind,
            "priority": "High",
            "channel": "Email",
            "assigneeId": None,
            "assignee": None,
            "teamId": "1892000000500001",
            "team": {"id": "1892000000500001", "name": "Billing"},
            "contactId": "1892000000042032",
            "webUrl": "https://desk.zoho.com/support/acme/ShowHomePage.do#Cases/dv/1892000000143237",
            "createdTime": z(t0).replace("Z", ".000Z"),
            "modifiedTime": z(at(n)).replace("Z", ".000Z"),
        }
        t.update(over)
        return t

    def update(n: int, after: dict, before: dict) -> list:
        return [
            {
                "eventType": "Ticket_Update",
                "eventTime": str(ms(at(n))),
                "orgId": ZOHO_ORG,
                "payload": after,
                "prevState": before,
            }
        ]

    def thread(n: int, tid: str, direction: str, author: str, visibility: str = "public") -> list:
        payload = {
            "id": tid,
            "ticketId": "1892000000143237",
            "direction": direction,
            "visibility": visibility,
            "channel": "EMAIL",
            "author": {"type": author, "name": "x"},
            "createdTime": z(at(n)).replace("Z", ".000Z"),
        }
        return [
            {
                "eventType": "Ticket_Thread_Add",
                "eventTime": str(ms(at(n))),
                "orgId": ZOHO_ORG,
                "payload": payload,
            }
        ]

    assigned: dict[str, Any] = {
        "assigneeId": "1892000000056007",
        "assignee": {"id": "1892000000056007", "email": "li.na@acme.example"},
        "teamId": "1892000000500002",
        "team": {"id": "1892000000500002", "name": "Billing L2"},
        "priority": "Urgent",
    }
    comment = [
        {
            "eventType": "Ticket_Comment_Add",
            "eventTime": str(ms(at(3))),
            "orgId": ZOHO_ORG,
            "payload": {
                "id": "1892000000190001",
                "ticketId": "1892000000143237",
                "isPublic": False,
                "commentedTime": z(at(3)).replace("Z", ".000Z"),
                "commenter": {"type": "AGENT"},
            },
        }
    ]
    return [
        Step(
            "creation",
            [
                {
                    "eventType": "Ticket_Add",
                    "eventTime": str(ms(t0)),
                    "orgId": ZOHO_ORG,
                    "payload": ticket(0, "Open"),
                }
            ],
            [("ticket.created", {"priority": "high", "group": "Billing", "status": "open"})],
            at=0,
        ),
        Step(
            "public agent reply",
            thread(1, "1892000000180001", "out", "AGENT"),
            [("message.created", {"author_role": "agent", "public": True})],
            at=1,
        ),
        Step(
            "customer reply",
            thread(2, "1892000000180002", "in", "END_USER"),
            [("message.created", {"author_role": "customer", "public": True})],
            at=2,
        ),
        Step(
            "internal note",
            comment,
            [("message.created", {"author_role": "agent", "public": False})],
            at=3,
        ),
        Step(
            "priority, group and assignee change",
            update(
                4,
                ticket(4, "Open", **assigned),
                {"assigneeId": None, "teamId": "1892000000500001", "priority": "High"},
            ),
            [
                ("ticket.assigned", {"assignee": "li.na@acme.example", "group": "Billing L2"}),
                ("ticket.updated", {"priority": "urgent"}),
            ],
            at=4,
        ),
        Step(
            "status change",
            update(
                5,
                ticket(5, "On Hold", "On Hold", **assigned),
                {"status": "Open", "statusType": "Open"},
            ),
            [("ticket.status_changed", {"status": "on_hold"})],
            at=5,
        ),
        Step(
            "solved",
            update(
                6,
                ticket(6, "Closed", "Closed", **assigned),
                {"status": "On Hold", "statusType": "On Hold"},
            ),
            [("ticket.status_changed", {"status": "closed"})],
            at=6,
        ),
        Step(
            "reopened",
            update(
                7,
                ticket(7, "Open", "Open", **assigned),
                {"status": "Closed", "statusType": "Closed"},
            ),
            [("ticket.status_changed", {"status": "open"})],
            at=7,
        ),
        Step(
            "solved again",
            update(
                8,
                ticket(8, "Closed", "Closed", **assigned),
                {"status": "Open", "statusType": "Open"},
            ),
            [("ticket.status_changed", {"status": "closed"})],
            at=8,
        ),
    ]


ZOHO_UNKNOWN = [
    {
        "eventType": "Contact_Add",
        "eventTime": "1542180943538",
        "orgId": ZOHO_ORG,
        "payload": {"id": "1"},
    }
]

# ---------------------------------------------------------------------------- Jira
# Payloads as Jira Cloud sends them (Atlassian "Webhooks" docs; real deliveries kept in
# zulip/zulip zerver/webhooks/jira/fixtures: issue_created.json, issue_updated__status.json,
# issue_updated__priority.json, comment_created.json): webhookEvent, timestamp (ms),
# issue.fields.{status.name,statusCategory,priority.name,assignee,labels,created},
# changelog.items[{field, fromString, toString}]; Service Management comments carry
# jsdPublic and the author's accountType ("customer" for portal customers).


def jira_sign(body: bytes, secret: str, now: datetime, delivery: str = "") -> dict[str, str]:
    return {
        "X-Hub-Signature": hub(secret, body, "sha256"),
        "X-Atlassian-Webhook-Identifier": delivery or hashlib.sha1(body).hexdigest()[:16],
        "X-Atlassian-Webhook-Flow": "Primary",
    }


def jira_life(t0: datetime) -> list[Step]:
    def issue(
        status: str, category: str, priority: str = "High", assignee: dict | None = None
    ) -> dict:
        return {
            "id": "10000",
            "self": "https://acme.atlassian.net/rest/api/2/issue/10000",
            "key": "SUP-1",
            "fields": {
                "summary": "Charged twice",
                "created": (t0.strftime("%Y-%m-%dT%H:%M:%S.000+0000")),
                "status": {"name": status, "statusCategory": {"key": category}},
                "priority": {"name": priority, "id": "2"},
                "assignee": assignee,
                "labels": ["invoice", "refund"],
                "reporter": {"accountId": "qm:customer-1", "accountType": "customer"},
            },
        }

    def at(n: int) -> int:
        return ms(t0 + timedelta(seconds=n))

    def comment(n: int, cid: str, account: str, public: bool) -> dict:
        return {
            "timestamp": at(n),
            "webhookEvent": "comment_created",
            "issue": issue("Waiting for support", "new"),
            "comment": {
                "id": cid,
                "author": {"accountId": "x", "accountType": account},
                "jsdPublic": public,
                "created": (t0 + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            },
        }

    def changed(
        n: int, items: list, status: str = "Waiting for support", category: str = "new", **kw: Any
    ) -> dict:
        return {
            "timestamp": at(n),
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "issue": issue(status, category, **kw),
            "changelog": {"id": str(10000 + n), "items": items},
        }

    lina = {
        "accountId": "557058:lina",
        "emailAddress": "li.na@acme.example",
        "displayName": "Li Na",
    }
    return [
        Step(
            "creation",
            {
                "timestamp": at(0),
                "webhookEvent": "jira:issue_created",
                "issue_event_type_name": "issue_created",
                "issue": issue("Waiting for support", "new"),
            },
            [
                (
                    "ticket.created",
                    {"priority": "high", "status": "open", "tags": ["invoice", "refund"]},
                )
            ],
            at=0,
        ),
        Step(
            "public agent reply",
            comment(1, "10100", "atlassian", True),
            [("message.created", {"author_role": "agent", "public": True})],
            at=1,
        ),
        Step(
            "customer reply",
            comment(2, "10101", "customer", True),
            [("message.created", {"author_role": "customer", "public": True})],
            at=2,
        ),
        Step(
            "internal note",
            comment(3, "10102", "atlassian", False),
            [("message.created", {"author_role": "agent", "public": False})],
            at=3,
        ),
        Step(
            "priority and assignee change",
            changed(
                4,
                [
                    {"field": "priority", "fromString": "High", "toString": "Highest"},
                    {"field": "assignee", "fromString": None, "toString": "Li Na"},
                ],
                priority="Highest",
                assignee=lina,
            ),
            [
                ("ticket.updated", {"priority": "urgent"}),
                ("ticket.assigned", {"assignee": "li.na@acme.example"}),
            ],
            at=4,
        ),
        Step(
            "status change",
            changed(
                5,
                [
                    {
                        "field": "status",
                        "fromString": "Waiting for support",
                        "toString": "Waiting for customer",
                    }
                ],
                "Waiting for customer",
                "indeterminate",
                priority="Highest",
                assignee=lina,
            ),
            [("ticket.status_changed", {"status": "pending"})],
            at=5,
        ),
        Step(
            "solved",
            changed(
                6,
                [{"field": "status", "fromString": "Waiting for customer", "toString": "Resolved"}],
                "Resolved",
                "done",
                priority="Highest",
                assignee=lina,
            ),
            [("ticket.status_changed", {"status": "solved"})],
            at=6,
        ),
        Step(
            "reopened",
            changed(
                7,
                [{"field": "status", "fromString": "Resolved", "toString": "Waiting for support"}],
                priority="Highest",
                assignee=lina,
            ),
            [("ticket.status_changed", {"status": "open"})],
            at=7,
        ),
        Step(
            "solved again",
            changed(
                8,
                [{"field": "status", "fromString": "Waiting for support", "toString": "Resolved"}],
                "Resolved",
                "done",
                priority="Highest",
                assignee=lina,
            ),
            [("ticket.status_changed", {"status": "solved"})],
            at=8,
        ),
        Step(
            "satisfaction rating",
            changed(
                9,
                [
                    {
                        "field": "Satisfaction",
                        "fieldtype": "custom",
                        "from": None,
                        "to": "5",
                        "toString": "5",
                    }
                ],
                "Resolved",
                "done",
                priority="Highest",
                assignee=lina,
            ),
            [("survey.responded", {"csat": 5})],
            at=9,
        ),
    ]


JIRA_UNKNOWN = {
    "timestamp": 1485797534721,
    "webhookEvent": "jira:worklog_updated",
    "worklog": {"id": "1"},
}

# ---------------------------------------------------------------------------- Zammad
# Payload: {"ticket": ..., "article": ...} as TriggerWebhookJob::RecordPayload builds it
# (zammad/zammad app/jobs/trigger_webhook_job.rb, record_payload/ticket.rb: state/priority/
# group by name, owner/customer/organization as records; the admin docs' example payload,
# zammad-admin-documentation manage/webhook/payload.rst). Headers: X-Hub-Signature sha1=
# (lib/user_agent.rb set_signature), X-Zammad-Delivery (the job id), X-Zammad-Trigger.


def zammad_sign(body: bytes, secret: str, now: datetime) -> dict[str, str]:
    return {
        "X-Hub-Signature": hub(secret, body, "sha1"),
        "X-Zammad-Delivery": hashlib.sha1(body).hexdigest()[:32],
        "X-Zammad-Trigger": "slawatch",
        "User-Agent": "Zammad User Agent",
    }


def zammad_life(t0: datetime) -> list[Step]:
    def body(n: int, state: str, article: dict | None, **over: Any) -> dict:
        ticket = {
            "id": 4711,
            "number": "31001",
            "title": "Charged twice",
            "state": state,
            "priority": {"id": 3, "name": "3 high"},
            "group": {"id": 2, "name": "Billing"},
            "owner": {"id": 1, "login": "-"},
            "customer": {"id": 42, "login": "chris@chrispresso.com"},
            "organization": {"id": 2, "name": "Chrispresso Inc."},
            "create_article_type": "email",
            "article_ids": [104],
            "created_at": (t0.isoformat().replace("+00:00", ".000Z")),
            "updated_at": ((t0 + timedelta(seconds=n)).isoformat().replace("+00:00", ".000Z")),
        }
        ticket.update(over)
        out: dict[str, Any] = {"ticket": ticket, "article": {}}
        if article:
            out["article"] = {
                **article,
                "ticket_id": 4711,
                "created_at": (t0 + timedelta(seconds=n)).isoformat().replace("+00:00", ".000Z"),
            }
        return out

    def art(aid: int, sender: str, internal: bool = False) -> dict:
        return {"id": aid, "sender": sender, "type": "email", "internal": internal}

    later = {
        "priority": {"id": 4, "name": "4 urgent"},
        "group": {"id": 3, "name": "Billing L2"},
        "owner": {"id": 7, "login": "lina", "email": "li.na@acme.example"},
    }
    return [
        Step(
            "creation",
            body(0, "new", art(104, "Customer")),
            [("ticket.created", {"priority": "high", "group": "Billing", "status": "new"})],
            at=0,
        ),
        Step(
            "public agent reply",
            body(1, "open", art(105, "Agent")),
            [
                ("ticket.created", {}),
                ("message.created", {"author_role": "agent", "public": True}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "open"}),
            ],
            at=1,
        ),
        Step(
            "customer reply",
            body(2, "open", art(106, "Customer")),
            [
                ("ticket.created", {}),
                ("message.created", {"author_role": "customer"}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {}),
            ],
            at=2,
        ),
        Step(
            "internal note",
            body(3, "open", art(107, "Agent", internal=True)),
            [
                ("ticket.created", {}),
                ("message.created", {"author_role": "agent", "public": False}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {}),
            ],
            at=3,
        ),
        Step(
            "priority, group and assignee change",
            body(4, "open", None, **later),
            [
                ("ticket.created", {}),
                (
                    "ticket.updated",
                    {"priority": "urgent", "group": "Billing L2", "assignee": "li.na@acme.example"},
                ),
                ("ticket.status_changed", {}),
            ],
            at=4,
        ),
        Step(
            "status change",
            body(5, "pending reminder", None, **later),
            [
                ("ticket.created", {}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "pending"}),
            ],
            at=5,
        ),
        Step(
            "solved",
            body(6, "closed", None, **later),
            [
                ("ticket.created", {}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "closed"}),
            ],
            at=6,
        ),
        Step(
            "reopened",
            body(7, "open", art(108, "Customer"), **later),
            [
                ("ticket.created", {}),
                ("message.created", {"author_role": "customer"}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "open"}),
            ],
            at=7,
        ),
        Step(
            "solved again",
            body(8, "closed", None, **later),
            [
                ("ticket.created", {}),
                ("ticket.updated", {}),
                ("ticket.status_changed", {"status": "closed"}),
            ],
            at=8,
        ),
    ]


# ---------------------------------------------------------------------------- Chatwoot
# Payloads as Chatwoot builds them (chatwoot/chatwoot app/listeners/webhook_listener.rb:
# `event` merged into Conversation#webhook_data = Conversations::EventDataPresenter#push_data
# (id = display id, inbox_id, status, priority, labels, meta.assignee/team/sender,
# created_at/updated_at as Unix times) or Message#webhook_data (id, message_type,
# private, content_type, content_attributes, sender, conversation, account); CSAT answers
# in content_attributes.submitted_values.csat_survey_response.rating).


def chatwoot_sign(body: bytes, secret: str, now: datetime) -> dict[str, str]:
    """As Webhooks::Trigger#request_headers (chatwoot/chatwoot lib/webhooks/trigger.rb)
    builds them: the HMAC covers "<timestamp>.<body>"; the delivery id is a UUID (here
    derived from the body, so a test's retry repeats it as Chatwoot's job retry does)."""
    stamp = str(int(now.timestamp()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Chatwoot-Signature": f"sha256={digest}",
        "X-Chatwoot-Timestamp": stamp,
        "X-Chatwoot-Delivery": str(uuid.UUID(bytes=hashlib.sha1(body).digest()[:16], version=4)),
    }


def chatwoot_life(t0: datetime) -> list[Step]:
    def at(n: int) -> int:
        return int((t0 + timedelta(seconds=n)).timestamp())

    def conversation(n: int, status: str, **over: Any) -> dict:
        c = {
            "id": 3,
            "inbox_id": 128058,
            "channel": "Channel::WebWidget",
            "status": status,
            "priority": "high",
            "labels": ["invoice"],
            "meta": {
                "sender": {"id": 1, "name": "Test Contact", "type": "contact"},
                "assignee": None,
                "team": {"id": 1, "name": "Billing"},
            },
            "created_at": at(0),
            "updated_at": float(at(n)),
            "timestamp": at(n),
        }
        c.update(over)
        return c

    def message(n: int, mid: int, mtype: str, private: bool = False, **extra: Any) -> dict:
        return {
            "event": "message_created",
            "id": mid,
            "content": "hello",
            "created_at": (t0 + timedelta(seconds=n)).isoformat().replace("+00:00", ".000Z"),
            "message_type": mtype,
            "content_type": "text",
            "private": private,
            "sender": {"id": 9, "type": "user" if mtype == "outgoing" else "contact"},
            "conversation": conversation(n, "open"),
            "account": {"id": 1, "name": "Acme"},
            **extra,
        }

    later = {
        "priority": "urgent",
        "meta": {
            "sender": {"id": 1},
            "assignee": {"id": 7, "email": "li.na@acme.example"},
            "team": {"id": 2, "name": "Billing L2"},
        },
    }
    return [
        Step(
            "creation",
            {"event": "conversation_created", **conversation(0, "open")},
            [("ticket.created", {"priority": "high", "group": "Billing", "status": "open"})],
            at=0,
        ),
        Step(
            "public agent reply",
            message(1, 900000001, "outgoing"),
            [("message.created", {"author_role": "agent", "public": True})],
            at=1,
        ),
        Step(
            "customer reply",
            message(2, 900000002, "incoming"),
            [("message.created", {"author_role": "customer", "public": True})],
            at=2,
        ),
        Step(
            "internal note",
            message(3, 900000003, "outgoing", private=True),
            [("message.created", {"author_role": "agent", "public": False})],
            at=3,
        ),
        Step(
            "priority, group and assignee change",
            {
                "event": "conversation_updated",
                **conversation(4, "open", **later),
                "changed_attributes": [
                    {"assignee_id": {"previous_value": None, "current_value": 7}},
                    {"team_id": {"previous_value": 1, "current_value": 2}},
                    {"priority": {"previous_value": "high", "current_value": "urgent"}},
                ],
            },
            [
                ("ticket.assigned", {"assignee": "li.na@acme.example", "group": "Billing L2"}),
                ("ticket.updated", {"priority": "urgent"}),
            ],
            at=4,
        ),
        Step(
            "status change",
            {
                "event": "conversation_status_changed",
                **conversation(5, "snoozed", **later),
                "changed_attributes": [
                    {"status": {"previous_value": "open", "current_value": "snoozed"}}
                ],
            },
            [("ticket.status_changed", {"status": "on_hold"})],
            at=5,
        ),
        Step(
            "solved",
            {"event": "conversation_status_changed", **conversation(6, "resolved", **later)},
            [("ticket.status_changed", {"status": "solved"})],
            at=6,
        ),
        Step(
            "reopened",
            {"event": "conversation_status_changed", **conversation(7, "open", **later)},
            [("ticket.status_changed", {"status": "open"})],
            at=7,
        ),
        Step(
            "solved again",
            {"event": "conversation_status_changed", **conversation(8, "resolved", **later)},
            [("ticket.status_changed", {"status": "solved"})],
            at=8,
        ),
        Step(
            "satisfaction rating",
            {
                **message(9, 900000004, "template"),
                "event": "message_updated",
                "content_type": "input_csat",
                "updated_at": at(9),
                "content_attributes": {
                    "submitted_values": {
                        "csat_survey_response": {"rating": 5, "feedback_message": "ok"}
                    }
                },
            },
            [("survey.responded", {"csat": 5})],
            at=9,
        ),
    ]


CHATWOOT_UNKNOWN = {"event": "contact_created", "id": 1, "name": "Test Contact"}

LIVES = {
    "zendesk": (zendesk_life, zendesk_sign, ZENDESK_UNKNOWN),
    "freshdesk": (freshdesk_life, freshdesk_sign, FRESHDESK_UNKNOWN),
    "jira": (jira_life, jira_sign, JIRA_UNKNOWN),
    "zammad": (zammad_life, zammad_sign, None),
    "chatwoot": (chatwoot_life, chatwoot_sign, CHATWOOT_UNKNOWN),
    "zoho-desk": (zoho_life, None, ZOHO_UNKNOWN),
}


def zoho_sign(key: Any, now: datetime, webhook: str = "77", **claims: Any) -> dict[str, str]:
    """X-ZDesk-JWT as Zoho Desk sends it: RS256, issuer orgId:<org>, audience webhookId:<id>."""
    base = {
        "iss": f"orgId:{ZOHO_ORG}",
        "aud": f"webhookId:{webhook}",
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + 600,
    }
    return {"X-ZDesk-JWT": key.token({**base, **claims})}
