"""Quiet hours: a receiver with a calendar is only notified while that calendar is open.

Outside its hours a notice goes to the receiver's ``fallback`` (an on-call rotation),
following fallbacks until one is open or has no calendar; with no fallback it waits
until the calendar next opens. The routing file is checked for fallback loops, and a
chain is cut after as many hops as there are receivers anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from slawatch.services.notifier.calendars import Calendar
from slawatch.services.notifier.config import RoutingConfig

log = logging.getLogger("slawatch.notifier")


@dataclass(frozen=True)
class Placement:
    receiver: str
    not_before: datetime
    via: str | None = None  # the receiver that was closed, when a fallback took over


def place(
    receiver: str, config: RoutingConfig, calendars: Mapping[str, Calendar], now: datetime
) -> Placement:
    original = receiver
    for _ in range(len(config.receivers) + 1):
        spec = config.receivers[receiver]
        calendar = calendars.get(spec.calendar) if spec.calendar else None
        if spec.calendar and calendar is None:
            log.warning(
                "receiver %s names calendar %s, which is not loaded: no quiet hours applied",
                spec.name,
                spec.calendar,
            )
        if calendar is None or calendar.is_open(now):
            return Placement(receiver, now, None if receiver == original else original)
        if spec.fallback is None:
            return Placement(
                receiver, calendar.next_open(now), None if receiver == original else original
            )
        receiver = spec.fallback
    raise ValueError(f"fallback chain from {original!r} does not end")  # validated away
