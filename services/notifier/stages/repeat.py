"""Reminders: an unmet breach is notified again every ``repeat_interval`` (as
Alertmanager's repeat_interval), up to ``repeat_limit`` times, until the target is met,
the breach retracted, a stronger alert (an escalation) supersedes it, or someone
*acknowledges* it.

A reminder is a notice of its own, with the key ``<event id>#repeat-N``, so the
delivery log deduplicates reminders as it does everything else.

An acknowledgement ("I have this breach", by whom and when) belongs to one SLA clock
(ticket, target, cycle). It stops that clock's reminders, the ones already waiting
included (checked again when a reminder is due); the breach itself, its escalations and
the SLA outcome are unchanged: the monitor never hears of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from slawatch.services.notifier.config import Receiver
from slawatch.services.notifier.model import Notice, TargetKey
from slawatch.shared.sla_events import SlaKind

REPEATING = frozenset({SlaKind.breached, SlaKind.escalated})


@dataclass(frozen=True)
class Acknowledgement:
    id: str
    ticket_id: str
    target: str
    cycle: int
    acknowledged_by: str
    acknowledged_at: datetime
    comment: str = ""
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None

    @property
    def target_key(self) -> TargetKey:
        return TargetKey(self.ticket_id, self.target, self.cycle)

    @property
    def standing(self) -> bool:
        return self.withdrawn_at is None


@dataclass
class Acknowledgements:
    """The standing acknowledgements, by SLA clock."""

    _by_target: dict[TargetKey, Acknowledgement] = field(default_factory=dict)

    @classmethod
    def of(cls, acks: Iterable[Acknowledgement]) -> Acknowledgements:
        return cls({a.target_key: a for a in acks if a.standing})

    def put(self, ack: Acknowledgement) -> None:
        if ack.standing:
            self._by_target[ack.target_key] = ack
        else:
            self.remove(ack)

    def remove(self, ack: Acknowledgement) -> None:
        current = self._by_target.get(ack.target_key)
        if current is not None and current.id == ack.id:
            del self._by_target[ack.target_key]

    def of_notice(self, notice: Notice) -> Acknowledgement | None:
        return self._by_target.get(notice.target_key)

    def __len__(self) -> int:
        return len(self._by_target)


def stopped_by(notice: Notice, acks: Acknowledgements | None) -> Acknowledgement | None:
    """The acknowledgement that stops this reminder, if any (only reminders stop)."""
    if acks is None or notice.repeat == 0:
        return None
    return acks.of_notice(notice)


def next_reminder(
    notice: Notice,
    receiver: Receiver,
    sent_at: datetime,
    acks: Acknowledgements | None = None,
) -> Notice | None:
    if notice.event.kind not in REPEATING or receiver.repeat_interval is None:
        return None
    if receiver.repeat_limit and notice.repeat >= receiver.repeat_limit:
        return None
    if acks is not None and acks.of_notice(notice) is not None:
        return None
    return replace(
        notice,
        repeat=notice.repeat + 1,
        created_at=sent_at,
        not_before=sent_at + receiver.repeat_interval,
        attempts=0,
        first_attempt_at=None,
        last_error=None,
    )
