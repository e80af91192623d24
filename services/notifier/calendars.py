"""Quiet-hours calendars: the notifier's view of the SLA engine's business calendars.

A receiver names a calendar of the policy file (``SLAWATCH_POLICY_FILE``), so "business
hours" mean the same thing for the SLA clock and for who gets woken up. The notifier
needs only two questions answered, which is this module's :class:`Calendar` protocol;
:class:`EngineCalendar` answers them with ``slawatch.shared.engine.calendar.Calendar``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Calendar(Protocol):
    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` (aware) falls in business hours."""
        ...

    def next_open(self, at: datetime) -> datetime:
        """The first instant >= ``at`` that is in business hours."""
        ...


class CalendarsUnavailable(Exception):
    """The policy file's calendars could not be loaded; the message says why."""


class EngineCalendar:
    """Adapts the engine's millisecond calendar to :class:`Calendar`."""

    __slots__ = ("_calendar",)

    def __init__(self, calendar: Any) -> None:
        self._calendar = calendar

    @property
    def name(self) -> str:
        return self._calendar.name

    def is_open(self, at: datetime) -> bool:
        from slawatch.shared.engine.calendar import to_ms

        return self._calendar.is_open(to_ms(at))

    def next_open(self, at: datetime) -> datetime:
        # `add(t, 1)` is the instant one business millisecond after t; one ms before it
        # the calendar opened (or t itself, when it is open already).
        from slawatch.shared.engine.calendar import from_ms, to_ms

        return from_ms(self._calendar.add(to_ms(at), 1) - 1)

    def __repr__(self) -> str:
        return f"EngineCalendar({self._calendar!r})"


def load_calendars(policy_file: str | Path) -> dict[str, Calendar]:
    """Every calendar of a policy file, by name."""
    try:
        from slawatch.shared.engine.policy import PolicyError, load_policies
    except ImportError as exc:  # pragma: no cover - the engine ships with slawatch
        raise CalendarsUnavailable(f"the SLA engine is not available: {exc}") from None
    try:
        policies = load_policies(policy_file)
    except PolicyError as exc:
        raise CalendarsUnavailable(f"the policy file is invalid:\n{exc}") from None
    return {name: EngineCalendar(calendar) for name, calendar in policies.calendars.items()}
