"""Durations as people write them in policy files: ``90s``, ``15m``, ``4h``, ``1h30m``, ``2d``.

``d`` means 24 hours of *counted* time (business time when the calendar has hours), not a
calendar day: a ``2d`` target in a 9-to-6 calendar spans more than a week of wall time.
"""

from __future__ import annotations

import re

from shared.bounds import MAX_DURATION_DAYS, MAX_DURATION_SECONDS

# At most 7 digits per unit: more can only exceed MAX_DURATION_SECONDS anyway, and the bound
# keeps int() away from huge digit strings.
_DURATION = re.compile(r"^(?:(\d{1,7})d)?(?:(\d{1,7})h)?(?:(\d{1,7})m)?(?:(\d{1,9})s)?$", re.ASCII)
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


class DurationError(ValueError):
    """A duration string that does not follow the ``1d2h3m4s`` shape."""


def _shown(text: str) -> str:
    """The text for a message: escaped (repr) and cut, since it may come from anyone."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def parse_duration(text: str) -> int:
    """Seconds in ``text``; units in the order d, h, m, s, each at most once; at most
    MAX_DURATION_SECONDS.

    ``0m`` is a valid zero (escalation offsets start at ``0m``); whether zero is allowed is
    the caller's decision, because a zero *target* would breach at creation.
    """
    if not isinstance(text, str):
        raise DurationError(f"a duration is a string like '15m' or '1h30m', not {type(text).__name__}")
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise DurationError(
            f"bad duration {_shown(text)}: use numbers with units d, h, m, s in that order, e.g. 90s, 15m, 1h30m, 2d"
        )
    seconds = sum(
        int(part) * size for part, (_, size) in zip(match.groups(), _UNITS, strict=True) if part
    )
    if seconds > MAX_DURATION_SECONDS:
        raise DurationError(f"duration {_shown(text)} is longer than the maximum, {MAX_DURATION_DAYS}d")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest ``1d2h3m4s`` form of whole seconds (fractions are rounded)."""
    remaining = int(round(seconds))
    if remaining == 0:
        return "0s"
    sign = "-" if remaining < 0 else ""
    remaining = abs(remaining)
    parts = []
    for unit, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
