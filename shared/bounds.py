"""The bounds every input is held to, declared once and used by every model and parameter.

Each rule exists because something downstream cannot hold what it refuses:

- **text** (:data:`Line`, :data:`Text`, :data:`Identifier`): PostgreSQL ``text`` cannot
  store NUL, and neither it nor a UTF-8 encoder can hold a lone surrogate (``"\\ud800"`` in
  JSON decodes to one); other C0 controls break logs, CSV exports and JSON consumers that
  do not escape them. ``Line`` (names, identifiers, tags) refuses every C0 control and DEL;
  ``Text`` (comments, subjects) also allows tab, line feed and carriage return.
- **instants** (:data:`Instant`, :data:`EventInstant`): RFC 3339 strings with an offset,
  nothing else (a bare number is not a time); converted to UTC, then held to a range so
  that converting and adding durations never overflows (``0001-01-01T00:00:00+14:00`` is
  before year 1 in UTC). Ticket events are held to the years the SLA engine's business
  calendars cover, with room for every deadline a bounded target can reach.
- **durations and offsets**: at most :data:`MAX_DURATION_SECONDS` and :data:`MAX_OFFSET`.
- **JSON bodies**: nested at most :data:`MAX_JSON_DEPTH` deep.

docs/configuration.md ("Input limits") lists the same numbers; tests/test_bounds.py checks
that the engine can compute with every instant and duration these bounds let through.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field
from pydantic_core import PydanticCustomError

__all__ = [
    "EVENT_INSTANT_MAX",
    "EVENT_INSTANT_MIN",
    "INSTANT_MAX",
    "INSTANT_MIN",
    "MAX_DURATION_DAYS",
    "MAX_DURATION_SECONDS",
    "MAX_JSON_DEPTH",
    "MAX_OFFSET",
    "EventInstant",
    "Identifier",
    "Instant",
    "Line",
    "Offset",
    "Text",
    "check_instant",
    "check_line",
    "check_text",
    "is_time_zone",
    "json_depth",
    "shift",
]

# ---------------------------------------------------------------------------- text

# Characters no slawatch string may hold: C0 controls and DEL (tab, LF and CR only in Text),
# and the surrogate code points, which are not characters at all.
_LINE_BAD = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_TEXT_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# The same rules as JSON Schema patterns (ECMA-262), so that generated clients and fuzzers
# know them; surrogates cannot be written in a pattern and cannot come from valid UTF-8.
LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"


def _refuse(value: str, bad: re.Pattern[str], what: str) -> str:
    found = bad.search(value)
    if found is None:
        return value
    if 0xD800 <= ord(found.group()) <= 0xDFFF:
        what = "unpaired surrogates"
    raise PydanticCustomError(
        "control_character",
        "must not contain {what} (found U+{code} at position {position})",
        {"what": what, "code": f"{ord(found.group()):04X}", "position": found.start()},
    )


def check_line(value: str) -> str:
    """A single-line string: no control characters, no surrogates."""
    return _refuse(value, _LINE_BAD, "control characters")


def check_text(value: str) -> str:
    """Free text: tab, line feed and carriage return allowed; other controls refused."""
    return _refuse(value, _TEXT_BAD, "control characters other than tab, LF and CR")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """The rule ``value`` breaks, as a message, or None: for code that is not a pydantic model
    (YAML files, matchers), which reports problems its own way."""
    try:
        (check_text if multiline else check_line)(value)
    except PydanticCustomError as exc:
        return exc.message()
    return None


Line = Annotated[
    str, AfterValidator(check_line), Field(json_schema_extra={"pattern": LINE_PATTERN})
]
Text = Annotated[
    str, AfterValidator(check_text), Field(json_schema_extra={"pattern": TEXT_PATTERN})
]
# Ticket ids, event ids, silence ids: what a URL path carries and the database keys on.
IDENTIFIER_MAX = 128
Identifier = Annotated[Line, Field(min_length=1, max_length=IDENTIFIER_MAX)]


def is_time_zone(name: object) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows (``Asia/Shanghai``)."""
    if not isinstance(name, str):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------- instants

INSTANT_MIN = datetime(1970, 1, 1, tzinfo=UTC)
INSTANT_MAX = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
# The SLA engine's business calendars cover local years 1971-2200 (shared/engine/calendar.py);
# ticket events are held to a range inside it in every time zone (UTC-12 .. UTC+14), with
# a century of room for deadlines: a target of MAX_DURATION_SECONDS of business time in a
# 9-to-5 calendar spans under 40 years of wall time.
EVENT_INSTANT_MIN = datetime(1971, 1, 2, tzinfo=UTC)
EVENT_INSTANT_MAX = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?\Z",
    re.ASCII,
)


def _rfc3339_only(value: Any) -> Any:
    """Before pydantic parses: a string in RFC 3339 form, or an already built datetime.

    pydantic alone would also take ``1700000000`` (and ``"1700000000"``) as a Unix time.
    A missing offset passes here so that pydantic's own "should have timezone info" says so.
    """
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.match(value):
        return value
    raise PydanticCustomError(
        "rfc3339",
        "must be an RFC 3339 date-time string with an offset, e.g. 2026-11-23T09:15:00+08:00",
    )


def check_instant(
    value: datetime, lo: datetime = INSTANT_MIN, hi: datetime = INSTANT_MAX
) -> datetime:
    """UTC, within [lo, hi]; converting an edge of the calendar to UTC may itself overflow."""
    try:
        moment = value.astimezone(UTC)
    except (OverflowError, ValueError):
        moment = None
    if moment is None or not lo <= moment <= hi:
        raise PydanticCustomError(
            "instant_range",
            "must be between {lo} and {hi} (UTC)",
            {"lo": _show(lo), "hi": _show(hi)},
        )
    return moment


def _show(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _event_instant(value: datetime) -> datetime:
    return check_instant(value, EVENT_INSTANT_MIN, EVENT_INSTANT_MAX)


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_only),
    AfterValidator(check_instant),
    Field(description="RFC 3339 with an offset; 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z."),
]
EventInstant = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_only),
    AfterValidator(_event_instant),
    Field(description="RFC 3339 with an offset; 1971-01-02T00:00:00Z .. 2099-12-31T23:59:59Z."),
]


class InstantRangeError(ValueError):
    """An instant plus a duration that would leave the representable range."""


def shift(moment: datetime, delta: timedelta, hi: datetime = INSTANT_MAX) -> datetime:
    """``moment + delta``, refused (InstantRangeError) past ``hi`` instead of overflowing."""
    try:
        out = moment + delta
    except OverflowError:
        out = None
    if out is None or out > hi or out < INSTANT_MIN:
        raise InstantRangeError(f"would end after {_show(hi)}")
    return out


# ---------------------------------------------------------------------------- numbers

# The longest duration anywhere in slawatch (targets, escalation offsets, windows, silences,
# routing-file timings): 10 years. Every instant accepted plus this stays computable.
MAX_DURATION_DAYS = 3650
MAX_DURATION_SECONDS = MAX_DURATION_DAYS * 86400
# Pagination offsets: fits PostgreSQL's bigint with room, and no real listing is this long.
MAX_OFFSET = 1_000_000_000
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET)]
MAX_DURATION = timedelta(seconds=MAX_DURATION_SECONDS)

# ---------------------------------------------------------------------------- JSON bodies

# The deepest valid body is {"events": [{"data": {"tags": [...]}}]}: 5 levels.
MAX_JSON_DEPTH = 32
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(body: bytes) -> int:
    """How deep the arrays/objects of a JSON text nest, without parsing it (which is the
    recursion that deep nesting attacks). Strings are skipped, so brackets in them don't count.
    """
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(accumulate(_STEP[b] for b in brackets))
