"""Reminders: an unmet breach is notified again every ``repeat_interval`` (as
Alertmanager's repeat_interval), up to ``repeat_limit`` times, until the target is met,
the breach retracted, or a stronger alert (an escalation) supersedes it.

A reminder is a notice of its own, with the key ``<event id>#repeat-N``, so the
delivery log deduplicates reminders as it does everything else.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.notifier.config import Receiver
from services.notifier.model import Notice
from shared.sla_events import SlaKind

REPEATING = frozenset({SlaKind.breached, SlaKind.escalated})


def next_reminder(notice: Notice, receiver: Receiver, sent_at: datetime) -> Notice | None:
    if notice.event.kind not in REPEATING or receiver.repeat_interval is None:
        return None
    if receiver.repeat_limit and notice.repeat >= receiver.repeat_limit:
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
