"""Inhibition: the newest, strongest news about one SLA clock wins.

For each SLA clock (ticket, target, cycle) we remember the strongest alert seen:
warning (by fraction) < breach < escalation (by level). A new alert that is weaker than
what was already seen is stale and inhibited; a stronger one supersedes every pending
notice of that clock that is weaker (so a breach swallows its waiting at-risk warning
and level 2 swallows a waiting level 1). ``sla.met`` and ``sla.retracted`` clear the
clock's pending notices and *close* it: reminders of its breach stop. An alert after a
close is news again (a reopened ticket, a re-selected policy), never stale.

Memory is bounded (least recently touched clocks are forgotten first); forgetting only
weakens inhibition of replays, which the delivery log deduplicates anyway.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from slawatch.services.notifier.model import ALERTING_KINDS, TargetKey, severity
from slawatch.shared.sla_events import SlaEvent, SlaKind

_CLOSED = (99, 0.0)


@dataclass(frozen=True)
class Verdict:
    inhibited: bool = False  # this event's own notices must not go out
    reason: str = ""
    clears: bool = False  # pending notices of this clock are cleared (met / retracted)
    supersedes: bool = False  # pending weaker notices of this clock are inhibited


def supersedes(new: SlaEvent, pending: SlaEvent) -> bool:
    """Whether a pending notice about ``pending`` should give way to ``new``."""
    return (
        new.kind in ALERTING_KINDS
        and TargetKey.of(new) == TargetKey.of(pending)
        and severity(new) > severity(pending)
    )


class Inhibitor:
    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._strongest: OrderedDict[TargetKey, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._strongest)

    def observe(self, event: SlaEvent) -> Verdict:
        key = TargetKey.of(event)
        seen = self._strongest.get(key)
        if event.kind in (SlaKind.met, SlaKind.retracted):
            self._remember(key, _CLOSED)
            return Verdict(clears=True)
        mine = severity(event)
        if seen is not None and seen != _CLOSED and seen > mine:
            return Verdict(
                inhibited=True, reason="a stronger alert of the same target was already seen"
            )
        self._remember(key, mine)
        return Verdict(supersedes=True)

    def is_stale(self, event: SlaEvent) -> bool:
        """For reminders: was the clock closed, or has something stronger happened since?"""
        seen = self._strongest.get(TargetKey.of(event))
        return seen is not None and (seen == _CLOSED or seen > severity(event))

    def _remember(self, key: TargetKey, value: tuple[int, float]) -> None:
        self._strongest[key] = value
        self._strongest.move_to_end(key)
        while len(self._strongest) > self.capacity:
            self._strongest.popitem(last=False)
