"""The ticket-event contract: what channel systems post to slawatch.

One envelope, a ``type`` discriminator and a type-specific ``data`` object. The models are
strict about what matters for SLA arithmetic (timezone-aware instants, known enums) and
refuse unknown fields, so that a typo in a producer surfaces as a 422 naming the field
instead of silently dropping data. Every string and instant is one of the bounded types of
shared/bounds.py, so a record that would have been refused at ingest is refused wherever it
is parsed again (the monitor dead-letters it).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from slawatch.shared.bounds import EventInstant, Instant, Line, Text
from slawatch.shared.bounds import Identifier as Identifier


class Channel(StrEnum):
    email = "email"
    chat = "chat"
    phone = "phone"
    social = "social"
    web = "web"
    api = "api"
    other = "other"


class Priority(StrEnum):
    urgent = "urgent"
    high = "high"
    normal = "normal"
    low = "low"


class Status(StrEnum):
    new = "new"
    open = "open"
    pending = "pending"
    on_hold = "on_hold"
    solved = "solved"
    closed = "closed"


class AuthorRole(StrEnum):
    agent = "agent"
    customer = "customer"
    system = "system"


# Instants are kept in UTC inside: the offset the producer used carries no meaning here.
# UtcDatetime is any instant slawatch can hold (SLA events' deadlines may lie past the
# range ticket events are held to, EventInstant).
UtcDatetime = Instant
ShortText = Annotated[Line, Field(max_length=256)]
Tag = Annotated[Line, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketCreatedData(_Strict):
    priority: Priority = Priority.normal
    customer_id: ShortText | None = None
    customer_tier: ShortText | None = None
    group: ShortText | None = None
    assignee: ShortText | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=64)
    status: Status = Status.new
    subject: Annotated[Text, Field(max_length=1024)] | None = None
    url: Annotated[Line, Field(max_length=2048)] | None = None


class TicketUpdatedData(_Strict):
    """A partial update: only the fields present change."""

    priority: Priority | None = None
    customer_tier: ShortText | None = None
    group: ShortText | None = None
    assignee: ShortText | None = None
    tags: list[Tag] | None = Field(default=None, max_length=64)
    url: Annotated[Line, Field(max_length=2048)] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> TicketUpdatedData:
        if not self.model_fields_set:
            raise ValueError(
                "ticket.updated needs at least one of: " + ", ".join(type(self).model_fields)
            )
        return self


class StatusChangedData(_Strict):
    status: Status


# Agent effort one event may report (a CTI call, a chat session, a time-tracking entry):
# at most a day, whole seconds. More is a producer's bug (a timestamp sent as a duration).
MAX_HANDLE_SECONDS = 86_400
HandleSeconds = Annotated[int, Field(ge=0, le=MAX_HANDLE_SECONDS)]


class MessageCreatedData(_Strict):
    author_role: AuthorRole
    public: bool = True
    handle_seconds: HandleSeconds | None = Field(
        default=None,
        description="Agent effort spent on this message (a call, a chat, writing the reply),"
        f" whole seconds, 0..{MAX_HANDLE_SECONDS}; agent messages only.",
    )

    @model_validator(mode="after")
    def _effort_is_an_agents(self) -> MessageCreatedData:
        if self.handle_seconds is not None and self.author_role != AuthorRole.agent:
            raise ValueError("handle_seconds is agent effort: only on author_role agent")
        return self


class WorkLoggedData(_Strict):
    """Agent effort on a ticket without a message (time tracking, research, a back-office call)."""

    agent: Annotated[Line, Field(min_length=1, max_length=256)]
    seconds: Annotated[int, Field(ge=1, le=MAX_HANDLE_SECONDS)] = Field(
        description=f"Whole seconds, 1..{MAX_HANDLE_SECONDS}."
    )


class AssignedData(_Strict):
    assignee: ShortText | None = None
    group: ShortText | None = None


class SurveyRespondedData(_Strict):
    csat: Annotated[int, Field(ge=1, le=5)] | None = None
    nps: Annotated[int, Field(ge=0, le=10)] | None = None

    @model_validator(mode="after")
    def _has_score(self) -> SurveyRespondedData:
        if self.csat is None and self.nps is None:
            raise ValueError("survey.responded needs csat (1-5) and/or nps (0-10)")
        return self


class CustomerStatus(StrEnum):
    active = "active"
    churned = "churned"


class CustomerUpdatedData(_Strict):
    """The CRM's view of a customer: its tier and whether it is still a customer. Only the
    fields present change."""

    customer_id: Annotated[Line, Field(min_length=1, max_length=256)]
    tier: ShortText | None = None
    status: CustomerStatus | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> CustomerUpdatedData:
        if "tier" not in self.model_fields_set and "status" not in self.model_fields_set:
            raise ValueError("customer.updated needs tier and/or status")
        return self


class _Envelope(_Strict):
    event_id: Identifier = Field(description="Idempotency key, unique per source.")
    ticket_id: Identifier
    occurred_at: EventInstant = Field(
        description="When it happened at the source: an RFC 3339 string with an offset (naive"
        " times and numbers are refused), 1971-01-02T00:00:00Z .. 2099-12-31T23:59:59Z."
    )
    channel: Channel = Channel.other
    # Stamped by ingest; a producer may not set them (ingest overwrites them anyway).
    received_at: EventInstant | None = None
    source: ShortText | None = None


class TicketCreated(_Envelope):
    type: Literal["ticket.created"]
    data: TicketCreatedData = Field(default_factory=TicketCreatedData)


class TicketUpdated(_Envelope):
    type: Literal["ticket.updated"]
    data: TicketUpdatedData


class TicketStatusChanged(_Envelope):
    type: Literal["ticket.status_changed"]
    data: StatusChangedData


class MessageCreated(_Envelope):
    type: Literal["message.created"]
    data: MessageCreatedData


class TicketAssigned(_Envelope):
    type: Literal["ticket.assigned"]
    data: AssignedData


class SurveyResponded(_Envelope):
    type: Literal["survey.responded"]
    data: SurveyRespondedData


class WorkLogged(_Envelope):
    type: Literal["work.logged"]
    data: WorkLoggedData


class CustomerUpdated(_Strict):
    """A customer event from the CRM: not a ticket's. Keyed by ``customer_id`` on the
    events topic; the monitor records it and re-targets the customer's open tickets with
    ``ticket.updated`` events of its own (docs/events.md, customer.updated)."""

    event_id: Identifier = Field(description="Idempotency key, unique per source.")
    type: Literal["customer.updated"]
    occurred_at: EventInstant = Field(
        description="When it changed in the CRM (RFC 3339 with an offset); a churn is dated so."
    )
    received_at: EventInstant | None = None
    source: ShortText | None = None
    data: CustomerUpdatedData


TicketEvent = Annotated[
    TicketCreated
    | TicketUpdated
    | TicketStatusChanged
    | MessageCreated
    | TicketAssigned
    | SurveyResponded
    | WorkLogged,
    Field(discriminator="type"),
]

# What channel systems may post: the ticket events and the CRM's customer events.
PostedEvent = Annotated[
    TicketCreated
    | TicketUpdated
    | TicketStatusChanged
    | MessageCreated
    | TicketAssigned
    | SurveyResponded
    | WorkLogged
    | CustomerUpdated,
    Field(discriminator="type"),
]

EVENT_TYPES: tuple[str, ...] = (
    "ticket.created",
    "ticket.updated",
    "ticket.status_changed",
    "message.created",
    "ticket.assigned",
    "survey.responded",
    "work.logged",
)
POSTED_TYPES: tuple[str, ...] = (*EVENT_TYPES, "customer.updated")

ticket_event_adapter: TypeAdapter[TicketEvent] = TypeAdapter(TicketEvent)
posted_event_adapter: TypeAdapter[PostedEvent] = TypeAdapter(PostedEvent)
customer_event_adapter: TypeAdapter[CustomerUpdated] = TypeAdapter(CustomerUpdated)


def partition_key(event: TicketEvent | CustomerUpdated) -> str:
    """The events topic's record key: the ticket, or ``customer:<id>`` for a customer event
    (one customer's events stay in order; they never share a key with a ticket's)."""
    if isinstance(event, CustomerUpdated):
        return "customer:" + event.data.customer_id
    return event.ticket_id


def parse_posted(raw: bytes | str | dict[str, Any]) -> TicketEvent | CustomerUpdated:
    """Validate one record of the events topic: a ticket event or a customer event."""
    if isinstance(raw, dict):
        return posted_event_adapter.validate_python(raw)
    return posted_event_adapter.validate_json(raw)


def parse_event(raw: bytes | str | dict[str, Any]) -> TicketEvent:
    """Validate one event from JSON bytes/str or an already decoded dict."""
    if isinstance(raw, dict):
        return ticket_event_adapter.validate_python(raw)
    return ticket_event_adapter.validate_json(raw)


def dump_event(event: TicketEvent) -> bytes:
    """The wire form on the events topic: compact JSON, no nulls that were never set."""
    return event.model_dump_json(exclude_none=True).encode()


EXAMPLES: dict[str, dict[str, Any]] = {
    "ticket.created": {
        "event_id": "zd-1001-created",
        "type": "ticket.created",
        "ticket_id": "T-1001",
        "occurred_at": "2026-11-23T09:15:00+08:00",
        "channel": "email",
        "data": {
            "priority": "high",
            "customer_id": "C-42",
            "customer_tier": "gold",
            "group": "billing",
            "assignee": "li.na",
            "tags": ["invoice", "refund"],
            "status": "new",
            "subject": "Charged twice for November",
            "url": "https://helpdesk.example.com/tickets/1001",
        },
    },
    "ticket.updated": {
        "event_id": "zd-1001-upd-1",
        "type": "ticket.updated",
        "ticket_id": "T-1001",
        "occurred_at": "2026-11-23T09:20:00+08:00",
        "channel": "email",
        "data": {"priority": "urgent", "tags": ["invoice", "refund", "escalated"]},
    },
    "ticket.status_changed": {
        "event_id": "zd-1001-status-2",
        "type": "ticket.status_changed",
        "ticket_id": "T-1001",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "channel": "email",
        "data": {"status": "pending"},
    },
    "message.created": {
        "event_id": "zd-1001-msg-7",
        "type": "message.created",
        "ticket_id": "T-1001",
        "occurred_at": "2026-11-23T09:40:00+08:00",
        "channel": "email",
        "data": {"author_role": "agent", "public": True, "handle_seconds": 420},
    },
    "work.logged": {
        "event_id": "zd-1001-time-3",
        "type": "work.logged",
        "ticket_id": "T-1001",
        "occurred_at": "2026-11-23T11:05:00+08:00",
        "channel": "email",
        "data": {"agent": "li.na", "seconds": 900},
    },
    "ticket.assigned": {
        "event_id": "zd-1001-assign-1",
        "type": "ticket.assigned",
        "ticket_id": "T-1001",
        "occurred_at": "2026-11-23T09:16:00+08:00",
        "channel": "email",
        "data": {"assignee": "wang.wei", "group": "billing-l2"},
    },
    "survey.responded": {
        "event_id": "zd-1001-survey",
        "type": "survey.responded",
        "ticket_id": "T-1001",
        "occurred_at": "2026-11-24T15:00:00+08:00",
        "channel": "email",
        "data": {"csat": 5, "nps": 9},
    },
    "customer.updated": {
        "event_id": "crm-C-42-2026-12-01",
        "type": "customer.updated",
        "occurred_at": "2026-12-01T10:00:00+08:00",
        "data": {"customer_id": "C-42", "tier": "platinum", "status": "active"},
    },
}

