"""The ticket's event log: what is kept of each ticket event, and the one fold of it.

``log_entry`` reduces a ticket event to what the SLA rules need; ``fold_event`` applies one
entry to the ticket's own fields (created, channel, attributes, status and its history,
first reply, replies, solve time, survey). The machine folds every event it processes with
it and then runs the SLA rules on what changed; a replay and loading a format-1 state fold
the log with it, so they can never disagree about what the log says (format 2 stores what
it folded to).

The fields of an entry are kept under short keys because the log is stored as it is, once
per event per ticket, in every state (shared/engine/codec.py): they are named here, once.
"""

from __future__ import annotations

import binascii
import hashlib
from typing import Any, Final

from slawatch.shared.engine.policy import DONE_STATUSES
from slawatch.shared.engine.state import (
    AGENT_REPLY,
    ASSIGNED,
    CREATED,
    CUSTOMER_MESSAGE,
    OTHER_MESSAGE,
    STATUS,
    STATUS_CHANGED,
    SURVEY,
    UPDATED,
    WORK_LOGGED,
    EventKind,
    LogEntry,
    State,
)
from slawatch.shared.events import (
    AssignedData,
    MessageCreatedData,
    StatusChangedData,
    SurveyRespondedData,
    TicketCreatedData,
    TicketEvent,
    TicketUpdatedData,
    WorkLoggedData,
)

PRIORITY: Final = "p"
CHANNEL: Final = "ch"
# STATUS ("st", a status change's new status) is state.py's: the stored log packs it.
CUSTOMER_TIER: Final = "ti"
CUSTOMER_ID: Final = "cu"
GROUP: Final = "g"
ASSIGNEE: Final = "a"
TAGS: Final = "tg"
URL: Final = "u"
SUBJECT: Final = "su"
CSAT: Final = "cs"
NPS: Final = "np"
HANDLE: Final = "hs"  # agent effort, whole seconds (handle_seconds, work.logged)
AGENT: Final = "ag"  # who logged the work
# The ticket attributes an entry may set: its key -> the State field.
ATTRIBUTES: Final = {
    PRIORITY: "priority",
    CUSTOMER_TIER: "customer_tier",
    CUSTOMER_ID: "customer_id",
    GROUP: "group",
    ASSIGNEE: "assignee",
    TAGS: "tags",
    URL: "url",
    SUBJECT: "subject",
}

_DONE = DONE_STATUSES


def event_hash(event_id: str) -> str:
    """48-bit hash of an event id (8 base64 characters): the dedup and tie-break key.

    Two different ids of one ticket collide with odds of about n^2 / 2^49 (1e-12 for a
    20-event ticket); the hash keeps the state small whatever producers' ids look like."""
    return _b64(_blake2b(event_id.encode(), digest_size=6).digest(), newline=False).decode()


_b64 = binascii.b2a_base64
_blake2b = hashlib.blake2b


def log_entry(event: TicketEvent, at: int, hashed: str) -> LogEntry:
    """The log's entry for a ticket event that occurred at ``at`` (ms) with id hash ``hashed``."""
    kind, fields = encode(event)
    return LogEntry(at, hashed, kind, fields)


def encode(event: TicketEvent) -> tuple[EventKind, dict[str, Any] | None]:
    """(kind, the fields that matter) of a ticket event, as kept in the log."""
    data = event.data
    if isinstance(data, MessageCreatedData):
        # Effort on an agent's message (only agents' carry it): kept, a reply's or a note's.
        effort = None if data.handle_seconds is None else {HANDLE: data.handle_seconds}
        if not data.public:
            return OTHER_MESSAGE, effort
        role = data.author_role
        if role == "agent":
            return AGENT_REPLY, effort
        return (CUSTOMER_MESSAGE if role == "customer" else OTHER_MESSAGE), None
    if isinstance(data, WorkLoggedData):
        return WORK_LOGGED, {HANDLE: data.seconds, AGENT: data.agent}
    if isinstance(data, StatusChangedData):
        return STATUS_CHANGED, {STATUS: data.status.value}
    fields: dict[str, Any] = {}
    if isinstance(data, TicketCreatedData):
        fields[PRIORITY] = data.priority.value
        fields[CHANNEL] = event.channel.value
        if data.status != "new":
            fields[STATUS] = data.status.value
        if data.customer_tier is not None:
            fields[CUSTOMER_TIER] = data.customer_tier
        if data.customer_id is not None:
            fields[CUSTOMER_ID] = data.customer_id
        if data.group is not None:
            fields[GROUP] = data.group
        if data.assignee is not None:
            fields[ASSIGNEE] = data.assignee
        if data.tags:
            fields[TAGS] = list(data.tags)
        if data.url is not None:
            fields[URL] = data.url
        if data.subject is not None:
            fields[SUBJECT] = data.subject
        return CREATED, fields
    if isinstance(data, TicketUpdatedData):
        given = data.model_fields_set
        if "priority" in given and data.priority is not None:
            fields[PRIORITY] = data.priority.value
        if "customer_tier" in given:
            fields[CUSTOMER_TIER] = data.customer_tier
        if "group" in given:
            fields[GROUP] = data.group
        if "assignee" in given:
            fields[ASSIGNEE] = data.assignee
        if "tags" in given:
            fields[TAGS] = list(data.tags or ())
        if "url" in given:
            fields[URL] = data.url
        return UPDATED, fields or None
    if isinstance(data, AssignedData):
        given = data.model_fields_set
        if "assignee" in given:
            fields[ASSIGNEE] = data.assignee
        if "group" in given:
            fields[GROUP] = data.group
        return ASSIGNED, fields or None
    if isinstance(data, SurveyRespondedData):
        if data.csat is not None:
            fields[CSAT] = data.csat
        if data.nps is not None:
            fields[NPS] = data.nps
        return SURVEY, fields
    raise ValueError(f"unknown event type {event.type!r}")


def fold_event(state: State, entry: LogEntry) -> bool:
    """Apply one log entry to the ticket's own fields; no clock, no policy.

    Returns whether the event counts for the SLA rules: False for a message or status
    change before the ticket was created (it waits in the log for the ticket.created that
    sorts before it on the next replay) and for a status the ticket already has. A
    ticket.created folds its initial status as a change from ``new`` at the same instant."""
    t = entry.at
    kind = entry.kind
    fields = entry.fields
    if fields is not None and (kind is WORK_LOGGED or kind is AGENT_REPLY or kind is OTHER_MESSAGE):
        # Effort counts wherever it sorts (before the ticket.created too): reports only.
        state.handle_ms += fields[HANDLE] * 1000
    if kind is AGENT_REPLY:
        if state.created_at is None:
            return False
        state.public_agent_replies += 1
        if state.first_reply_at is None:
            state.first_reply_at = t
        return True
    if kind is CUSTOMER_MESSAGE:
        return state.created_at is not None
    if kind is STATUS_CHANGED:
        assert fields is not None
        return _fold_status(state, t, fields[STATUS])
    if kind is CREATED:
        assert fields is not None
        created = state.created_at is None
        if created:
            state.created_at = t
            state.channel = fields.get(CHANNEL)
            state.status = "new"
            state.status_history = [(t, "new")]
        fold_attributes(state, fields, t)
        if created:
            _fold_status(state, t, fields.get(STATUS, "new"))
        return True
    if kind is UPDATED or kind is ASSIGNED:
        fold_attributes(state, fields, t)
        return True
    if kind is SURVEY and fields:
        csat = fields.get(CSAT)
        if csat is not None:
            state.csat = csat
        nps = fields.get(NPS)
        if nps is not None:
            state.nps = nps
    return False


def _fold_status(state: State, t: int, new: str) -> bool:
    old = state.status
    if new == old or state.created_at is None:
        return False
    if new in _DONE and old not in _DONE:
        state.solved_at = t
    state.status = new
    state.status_history.append((t, new))
    return True


def fold_attributes(state: State, fields: dict[str, Any] | None, t: int) -> None:
    """Apply the attributes an entry carries (at ``t``); drops the attribute tuple events
    share, and records a change of the tags in the tag history (tag pauses recount it)."""
    if not fields:
        return
    state.attribute_values = None
    for key, value in fields.items():
        name = ATTRIBUTES.get(key)
        if name is None:
            continue
        if name == "tags":
            tags = tuple(value or ())
            if tags != state.tags:
                state.tag_history.append((t, tags))
            state.tags = tags
            continue
        if name == "priority" and value is None:
            continue
        setattr(state, name, value)
