"""Customer contracts: policies that match ``customer_id`` and hold for a window of time.

A policy with ``valid_from`` / ``valid_until`` applies to tickets *created* inside its
window, ``[valid_from, valid_until)``: a ticket takes the policy in force at its creation
and keeps it for its whole life, so a contract that ends while the ticket is open changes
nothing for it, and one that starts while it is open does not apply to it (its attributes
changing later re-select at the creation instant too). A date is a whole local day of the
policy's calendar (``valid_until: 2026-12-31`` holds through that day's end); an instant
carries its own offset.

The rules a schema cannot say live here: a window that ends before it starts, two
different windows of one customer that overlap (which contract applies would depend on
the order of the file), and - as warnings, not problems - contracts that end soon.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from slawatch.shared.engine.calendar import from_ms, to_ms

EXPIRY_WARNING_DAYS = 30
Window = tuple[int | None, int | None]  # [start, end) in UTC ms; None: open-ended


def window_ms(
    valid_from: date | datetime | None, valid_until: date | datetime | None, timezone: str
) -> Window:
    """The window in UTC ms: a date starts at its local midnight, and as ``valid_until``
    ends at the next local midnight (the whole day is inside)."""
    zone = ZoneInfo(timezone)

    def start(value: date | datetime | None, *, end: bool) -> int | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return to_ms(value)
        day = value + timedelta(days=1) if end else value
        return to_ms(datetime(day.year, day.month, day.day, tzinfo=zone))

    return start(valid_from, end=False), start(valid_until, end=True)


def holds(window: Window, at: int) -> bool:
    """Whether a ticket created at ``at`` (ms) falls in the window."""
    begin, end = window
    return (begin is None or at >= begin) and (end is None or at < end)


def overlap(a: Window, b: Window) -> Window | None:
    """The common part of two windows, or None when they do not meet."""
    begin = max((x for x in (a[0], b[0]) if x is not None), default=None)
    end = min((x for x in (a[1], b[1]) if x is not None), default=None)
    if begin is not None and end is not None and begin >= end:
        return None
    return begin, end


def describe_window(window: Window) -> str:
    begin, end = window
    left = "the beginning" if begin is None else from_ms(begin).isoformat()
    right = "open-ended" if end is None else f"until {from_ms(end).isoformat()}"
    return f"from {left} {right}"


@dataclass(frozen=True)
class Contract:
    """One contract policy, as the checks see it: its customers and its window."""

    policy: str
    line: int
    customers: frozenset[str]
    window: Window


def window_problem(window: Window) -> str | None:
    begin, end = window
    if begin is not None and end is not None and end <= begin:
        return "valid_until must be after valid_from"
    return None


def overlapping(contracts: Sequence[Contract]) -> list[tuple[int, str]]:
    """(line, problem) for each pair of *different* windows of one customer that overlap.

    Several policies with the same window are one contract (e.g. an urgent and a normal
    target set for the same customer); two windows that differ and meet are a renewal or
    a second contract whose start or end was mistyped."""
    problems: list[tuple[int, str]] = []
    for i, first in enumerate(contracts):
        for second in contracts[i + 1 :]:
            if first.window == second.window:
                continue
            common = first.customers & second.customers
            if not common:
                continue
            span = overlap(first.window, second.window)
            if span is None:
                continue
            shown = ", ".join(repr(c) for c in sorted(common)[:3])
            more = f" and {len(common) - 3} more" if len(common) > 3 else ""
            problems.append(
                (
                    second.line,
                    f"policy {second.policy!r}: its window overlaps that of policy"
                    f" {first.policy!r} (line {first.line}) for customer {shown}{more}"
                    f" ({describe_window(span)}); make one end before the other starts",
                )
            )
    return problems


def expiring(
    contracts: Iterable[Contract], now: datetime, days: int = EXPIRY_WARNING_DAYS
) -> list[tuple[int, str]]:
    """(line, warning) for contracts that end within ``days`` of ``now``, or have ended."""
    n = to_ms(now.astimezone(UTC))
    soon = n + days * 86_400_000
    out = []
    for contract in contracts:
        end = contract.window[1]
        if end is None or end > soon:
            continue
        when = from_ms(end).isoformat()
        if end <= n:
            out.append(
                (
                    contract.line,
                    f"policy {contract.policy!r}: the contract ended at {when};"
                    " only tickets created before still take it",
                )
            )
        else:
            left = (end - n) // 86_400_000
            out.append(
                (
                    contract.line,
                    f"policy {contract.policy!r}: the contract ends at {when}"
                    f" (in {left} day{'s' if left != 1 else ''}); tickets created after it take"
                    " the next policy that matches",
                )
            )
    return out
