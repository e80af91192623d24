"""Every call the monitor makes into the SLA engine, and the mapping of its facts to rows.

The engine (shared/engine) is pure; this module is the one seam between it and the
monitor's storage, so a change of engine API touches one file of the service.
"""

from __future__ import annotations

from datetime import date, datetime

from slawatch.services.sla_monitor.store import FactsRow
from slawatch.shared.engine import (
    NATIVE,
    PolicyError,
    PolicySet,
    SlaRecord,
    State,
    describe,
    deserialise,
    earliest_deadline,
    facts,
    from_ms,
    is_open,
    load_policies,
    next_due,
    parse_duration,
    serialise,
    timeline,
)
from slawatch.shared.engine import advance as _advance
from slawatch.shared.engine import apply as _apply
from slawatch.shared.engine.coverage import Coverage
from slawatch.shared.events import TicketEvent

Policies = PolicySet

__all__ = [
    "NATIVE",
    "SlaRecord",
    "Policies",
    "PolicyError",
    "advance",
    "apply",
    "check_coverage",
    "describe",
    "dump",
    "earliest_deadline",
    "facts_row",
    "is_open",
    "load",
    "load_policies",
    "next_due",
    "parse_duration",
    "timeline",
]


def check_coverage(policies: PolicySet, today: date) -> list[Coverage]:
    """The calendar coverage guard as of ``today`` (it also tells the read API which
    deadlines fall in unofficial days)."""
    return policies.check_coverage(today)


def load(blob: bytes, policies: PolicySet) -> State:
    return deserialise(blob, policies)


def dump(state: State) -> bytes:
    return serialise(state)


def apply(
    state: State | None, event: TicketEvent, policies: PolicySet
) -> tuple[State, list[SlaRecord], str]:
    """The engine's apply, and how the event arrived for its ticket: `new`, `duplicate` (its
    id was seen: nothing changed) or `late` (it sorts before the newest applied event, so the
    engine replayed the ticket in event-time order). Read off the state around the call,
    so the event id is hashed once, by the engine."""
    seen = state.event_count() if state is not None else 0
    newest = state.last_entry if state is not None else None
    state, produced = _apply(state, event, policies)
    if state.event_count() == seen:
        arrival = "duplicate"
    elif newest is not None and state.last_entry is newest:
        arrival = "late"
    else:
        arrival = "new"
    return state, produced, arrival


def advance(state: State, now: datetime, policies: PolicySet) -> tuple[State, list[SlaRecord]]:
    return _advance(state, now, policies)


def facts_row(state: State) -> FactsRow:
    """Per-ticket facts for reports (the engine's ``facts``: finished targets counted per
    (target, cycle), met in time or breached), with the columns reports filter on."""
    f = facts(state)
    return FactsRow(
        ticket_id=f["ticket_id"],
        policy=f["policy"],
        customer_tier=f["customer_tier"],
        channel=f["channel"],
        priority=f["priority"],
        # The instants the facts' text was written from (parsing the text back cost more).
        created_at=None if state.created_at is None else from_ms(state.created_at),
        solved_at=None if state.solved_at is None else from_ms(state.solved_at),
        facts=f,
        agent_work_business_ms=f["agent_work_business_ms"],
        agent_work_calendar_ms=f["agent_work_calendar_ms"],
        requester_wait_business_ms=f["requester_wait_business_ms"],
        requester_wait_calendar_ms=f["requester_wait_calendar_ms"],
        customer_id=f["customer_id"],
        team=f["group"],
        assignee=f["assignee"],
        handle_seconds=f["handle_seconds"],
    )
