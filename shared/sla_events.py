"""The SLA-event contract: what the monitor publishes and the notifier consumes.

Every SLA event carries a deterministic ``id`` built from (ticket, target, cycle, kind,
level/fraction), so that a re-emission after a crash or a replay is recognisably the same
event and downstream consumers can deduplicate on it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from slawatch.shared.bounds import Line, Text
from slawatch.shared.events import UtcDatetime


class SlaKind(StrEnum):
    warning = "sla.warning"
    breached = "sla.breached"
    escalated = "sla.escalated"
    met = "sla.met"
    retracted = "sla.retracted"


class Target(StrEnum):
    first_response = "first_response"
    next_response = "next_response"
    periodic_update = "periodic_update"
    resolution = "resolution"
    # Team OLAs: per group, one cycle per assignment to the group (docs/policies.md, OLAs).
    group_ownership = "group_ownership"
    group_response = "group_response"


# The targets a ticket's policy sets, and those a group's OLA sets: the one list, split.
TICKET_TARGETS: tuple[Target, ...] = (
    Target.first_response,
    Target.next_response,
    Target.periodic_update,
    Target.resolution,
)
GROUP_TARGETS: tuple[Target, ...] = (Target.group_ownership, Target.group_response)
assert set(TICKET_TARGETS) | set(GROUP_TARGETS) == set(Target)


def sla_event_id(
    ticket_id: str,
    target: str,
    cycle: int,
    kind: str,
    level: int | None = None,
    fraction: float | None = None,
    revision: int = 0,
) -> str:
    """The deterministic id: equal inputs give an equal id across processes and restarts.

    Readable on purpose (supervisors see it in delivery logs); ticket ids may contain
    ``/`` or ``:``, so the ticket part comes first and the fixed-shape suffix last.
    ``revision`` (suffix ``.rN``, only when > 0) tells apart a second occurrence of the same
    condition: a breach that was retracted and then happened after all, or a resolution met
    again after a reopen; without it downstream deduplication would swallow it.
    """
    suffix = kind.removeprefix("sla.")
    if level is not None:
        suffix += f"-{level}"
    elif fraction is not None:
        suffix += f"-{round(fraction * 100)}"
    if revision:
        suffix += f".r{revision}"
    return f"{ticket_id}/{target}/{cycle}/{suffix}"


class SlaEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Line = Field(
        min_length=1, max_length=512, description="Deterministic: ticket/target/cycle/kind[-level]."
    )
    kind: SlaKind
    ticket_id: Line = Field(min_length=1, max_length=128)
    target: Target
    policy: Line
    cycle: int = Field(
        ge=0,
        description="0 for once-per-ticket targets; n-th cycle for next_response / periodic_update; "
        "for group_ownership / group_response the n-th group assignment of the ticket (both targets of "
        "one assignment share it).",
    )
    deadline: UtcDatetime | None = Field(
        default=None,
        description="The instant the target is (or was) due, UTC; absent when no clock runs (a retraction of a paused target).",
    )
    occurred_at: UtcDatetime = Field(description="The instant the condition became true.")
    elapsed_seconds: float = Field(ge=0, description="Business time counted so far.")
    target_seconds: float = Field(ge=0, description="The target in business time.")
    fraction: float | None = Field(
        default=None, description="sla.warning: the warn_at fraction reached."
    )
    level: int | None = Field(
        default=None, ge=1, description="sla.escalated: the escalation level."
    )
    breached: bool | None = Field(
        default=None, description="sla.met: whether it was met after its deadline."
    )
    retracts: Line | None = Field(
        default=None, description="sla.retracted: the id of the breach it withdraws."
    )
    detected_late: bool = Field(
        default=False,
        description="Set by the monitor when the condition was found only after the instant (backlog, restart).",
    )
    # The ticket's attributes at the time, so that routing and messages need no lookup.
    # The same text rules as the ticket events they come from (shared/bounds.py), so that a
    # record the notifier could not store is refused (dead-lettered) when it is parsed.
    priority: Line | None = None
    customer_tier: Line | None = None
    channel: Line | None = None
    group: Line | None = Field(
        default=None,
        description="The ticket's group; for group_ownership / group_response the group whose OLA cycle it is.",
    )
    assignee: Line | None = None
    tags: list[Line] = Field(default_factory=list)
    url: Line | None = None
    subject: Text | None = None


def parse_sla_event(raw: bytes | str | dict[str, Any]) -> SlaEvent:
    if isinstance(raw, dict):
        return SlaEvent.model_validate(raw)
    return SlaEvent.model_validate_json(raw)


def dump_sla_event(event: SlaEvent) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def _example() -> dict[str, Any]:
    deadline = datetime.fromisoformat("2026-11-23T01:30:00+00:00")
    return {
        "id": sla_event_id("T-1001", "first_response", 0, "sla.breached"),
        "kind": "sla.breached",
        "ticket_id": "T-1001",
        "target": "first_response",
        "policy": "vip-urgent",
        "cycle": 0,
        "deadline": deadline.isoformat(),
        "occurred_at": deadline.isoformat(),
        "elapsed_seconds": 900.0,
        "target_seconds": 900.0,
        "priority": "urgent",
        "customer_tier": "gold",
        "channel": "email",
        "group": "billing",
        "assignee": "li.na",
        "tags": ["invoice"],
        "url": "https://helpdesk.example.com/tickets/1001",
    }


EXAMPLE: dict[str, Any] = _example()
