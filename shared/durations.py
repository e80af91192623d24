"""The one duration grammar of slawatch: policy targets and escalations, routing-file timings,
silences and query parameters (``?within=``) all read durations here.

A duration is a string of whole numbers with units, largest first, each unit at most
once: ``d`` (24 hours of *counted* time: business time when a calendar has hours, so a
``2d`` target in a 9-to-6 calendar spans more than a week of wall time), ``h``, ``m``,
``s`` and ``ms``: ``90s``, ``15m``, ``1h30m``, ``2d``, ``250ms``, ``0m``. Nothing else: no
bare numbers (``15`` could mean seconds or minutes), no fractions, no spaces, no signs.
At most :data:`slawatch.shared.bounds.MAX_DURATION_DAYS` days, like every duration in slawatch.

Whether zero is allowed is the caller's decision (an escalation offset may be ``0m``; a
target may not, it would breach at creation): :data:`Duration` allows it,
:data:`PositiveDuration` does not. docs/configuration.md ("Durations") documents this.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from slawatch.shared.bounds import MAX_DURATION_DAYS, MAX_DURATION_SECONDS

__all__ = [
    "DURATION_PATTERN",
    "DURATION_SCHEMA",
    "Duration",
    "DurationError",
    "PositiveDuration",
    "format_duration",
    "parse_duration",
]

# At most 7 digits per unit (9 for s, 12 for ms): more can only exceed the maximum anyway,
# and the bound keeps int() away from huge digit strings.
_DURATION = re.compile(
    r"(?:(\d{1,7})d)?(?:(\d{1,7})h)?(?:(\d{1,7})m)?(?:(\d{1,9})s)?(?:(\d{1,12})ms)?", re.ASCII
)
_UNIT_MS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))
# The same grammar for JSON Schema (editors, generated clients, fuzzers).
DURATION_PATTERN = r"^(?=\d)(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$"
_EXAMPLES = "e.g. 90s, 15m, 1h30m, 2d, 250ms"


class DurationError(ValueError):
    """A duration that does not follow the ``1d2h3m4s5ms`` shape, or is too long.

    ``kind`` (``type``, ``shape``, ``too_long``) and ``shown`` (the text, escaped and cut)
    let a file word the problem its own way."""

    def __init__(self, message: str, kind: str, shown: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.shown = shown


def _shown(text: str) -> str:
    """The text for a message: escaped (repr) and cut, since it may come from anyone."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def parse_duration(text: str) -> timedelta:
    """The duration ``text`` says (whole milliseconds); raises :class:`DurationError`."""
    if not isinstance(text, str):
        raise DurationError(
            f"a duration is a string like '15m' or '1h30m', not {type(text).__name__}", "type"
        )
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise DurationError(
            f"bad duration {_shown(text)}: use whole numbers with units d, h, m, s, ms in that order, {_EXAMPLES}",
            "shape",
            _shown(text),
        )
    ms = sum(
        int(part) * size for part, (_, size) in zip(match.groups(), _UNIT_MS, strict=True) if part
    )
    if ms > MAX_DURATION_SECONDS * 1000:
        raise DurationError(
            f"duration {_shown(text)} is longer than the maximum, {MAX_DURATION_DAYS}d",
            "too_long",
            _shown(text),
        )
    return timedelta(milliseconds=ms)


def format_duration(seconds: float) -> str:
    """The shortest ``1d2h3m4s5ms`` form (rounded to milliseconds); ``0s`` for zero."""
    remaining = int(round(seconds * 1000))
    if remaining == 0:
        return "0s"
    sign = "-" if remaining < 0 else ""
    remaining = abs(remaining)
    parts = []
    for unit, size in _UNIT_MS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise PydanticCustomError(
            "duration", str(exc), {"kind": exc.kind, "shown": exc.shown}
        ) from None


def _positive(value: Any) -> timedelta:
    length = _duration(value)
    if length <= timedelta(0):
        raise PydanticCustomError("duration", "must be longer than zero", {"kind": "zero"})
    return length


DURATION_SCHEMA = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    "maxLength": 64,
    "description": f"Whole numbers with units d, h, m, s, ms, largest first ({_EXAMPLES}); at most {MAX_DURATION_DAYS}d.",
}
Duration = Annotated[timedelta, BeforeValidator(_duration), WithJsonSchema(DURATION_SCHEMA)]
PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(_positive),
    WithJsonSchema({**DURATION_SCHEMA, "not": {"pattern": r"^(0+(d|h|m|s|ms))+$"}}),
]
