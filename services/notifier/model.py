"""The notifier's vocabulary: a notice (one SLA event for one integration of one receiver),
its delivery status, and what an integration answers when asked to deliver.

A *notice* is the unit of "never twice": its key is (notification id, receiver,
integration), where the notification id is the SLA event's deterministic id, or that id
with a ``#repeat-N`` suffix for the N-th reminder of an unmet breach.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from slawatch.shared.sla_events import SlaEvent, SlaKind


class Status(StrEnum):
    """Where a notice stands. Only ``queued`` and ``failed`` are not final."""

    queued = "queued"  # durably accepted; waiting for group/quiet hours/rate limit/retry
    sent = "sent"  # the provider accepted it
    failed = "failed"  # gave up; the dead-letter record is not yet acknowledged
    dlq = "dlq"  # gave up and the dead-letter topic has it, with the reason
    silenced = "silenced"  # a silence matched when it was due
    inhibited = "inhibited"  # superseded by a stronger event of the same ticket target
    cleared = "cleared"  # the target was met or the breach retracted before it went out
    acknowledged = "acknowledged"  # a reminder of a breach someone acknowledged
    deduplicated = "deduplicated"  # the same key was seen again (a metric, not a row)

    @property
    def final(self) -> bool:
        return self not in (Status.queued, Status.failed)


class NoticeKey(NamedTuple):
    notification_id: str
    receiver: str
    integration: str

    def __str__(self) -> str:
        return f"{self.notification_id} -> {self.receiver}/{self.integration}"


class TargetKey(NamedTuple):
    """One SLA clock: the thing warnings, breaches and escalations are *about*."""

    ticket_id: str
    target: str
    cycle: int

    @classmethod
    def of(cls, event: SlaEvent) -> TargetKey:
        return cls(event.ticket_id, event.target.value, event.cycle)


ALERTING_KINDS = frozenset({SlaKind.warning, SlaKind.breached, SlaKind.escalated})
RESOLVING_KINDS = frozenset({SlaKind.met, SlaKind.retracted})


def escalation_level(event: SlaEvent) -> int | None:
    """The level route matchers test: a breach is level 0, an escalation its level."""
    if event.kind == SlaKind.breached:
        return 0
    if event.kind == SlaKind.escalated:
        return event.level if event.level is not None else 1
    return None


def severity(event: SlaEvent) -> tuple[int, float]:
    """Orders the alerts of one SLA clock: warning(fraction) < breach < escalation(level).

    A pending notice is superseded by a newer event of strictly higher severity.
    """
    if event.kind == SlaKind.warning:
        return (1, event.fraction or 0.0)
    if event.kind == SlaKind.breached:
        return (2, 0.0)
    if event.kind == SlaKind.escalated:
        return (3, float(event.level or 1))
    return (0, 0.0)


def repeat_id(event_id: str, n: int) -> str:
    return f"{event_id}#repeat-{n}"


@dataclass(frozen=True, slots=True)
class Notice:
    """One SLA event on its way to one integration of one receiver."""

    event: SlaEvent
    receiver: str
    integration: str
    created_at: datetime
    not_before: datetime  # quiet hours or a repeat interval may push this later
    repeat: int = 0  # 0 for the event itself, N for its N-th reminder
    via: str | None = None  # the receiver whose quiet hours sent this to its fallback
    # The SLA-topic partition that brought it: the notifier owning that partition owns
    # the notice (restores it after a restart, forgets it when the partition moves).
    shard: int | None = None
    attempts: int = 0
    first_attempt_at: datetime | None = None
    last_error: str | None = None

    @property
    def notification_id(self) -> str:
        return self.event.id if self.repeat == 0 else repeat_id(self.event.id, self.repeat)

    @property
    def key(self) -> NoticeKey:
        return NoticeKey(self.notification_id, self.receiver, self.integration)

    @property
    def target_key(self) -> TargetKey:
        return TargetKey.of(self.event)

    def with_attempt(self, at: datetime, error: str | None) -> Notice:
        return replace(
            self,
            attempts=self.attempts + 1,
            first_attempt_at=self.first_attempt_at or at,
            last_error=error,
        )


class Outcome(StrEnum):
    ok = "ok"
    retryable = "retryable"
    permanent = "permanent"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one attempt to hand a message to a provider came to.

    ``reason`` is safe to log and store: integrations never put a URL, token or secret in it.
    """

    outcome: Outcome
    reason: str = ""
    retry_after: float | None = None  # seconds, from Retry-After or the provider's rule
    status_code: int | None = None

    @classmethod
    def ok(cls, status_code: int | None = None) -> DeliveryResult:
        return cls(Outcome.ok, "", None, status_code)

    @classmethod
    def retryable(
        cls, reason: str, retry_after: float | None = None, status_code: int | None = None
    ) -> DeliveryResult:
        return cls(Outcome.retryable, reason, retry_after, status_code)

    @classmethod
    def permanent(cls, reason: str, status_code: int | None = None) -> DeliveryResult:
        return cls(Outcome.permanent, reason, None, status_code)

    @property
    def delivered(self) -> bool:
        return self.outcome is Outcome.ok


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A transition the delivery log must record (and the metrics count)."""

    notice: Notice
    status: Status
    reason: str = ""
    at: datetime | None = None
    message_id: str | None = None  # notices sent together in one grouped message share it


@dataclass(slots=True)
class Batch:
    """Notices of one group that are due together, in the order they were accepted."""

    receiver: str
    integration: str
    group: tuple[str, ...]
    notices: list[Notice] = field(default_factory=list)
