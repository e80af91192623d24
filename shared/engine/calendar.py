"""Business-hour calendars: when the SLA clock is allowed to count.

A calendar is compiled once into a sorted array of open intervals in UTC epoch
milliseconds plus a prefix sum of open time, built lazily a few years at a time. Then
"business time between two instants" is two bisections and "the instant N business
seconds after t" is two bisections, whatever the span: a 30-day deadline costs the same
as a 30-second one. The expensive part - local hours, holidays, make-up working days and
DST turned into UTC - is paid once per calendar and year.

All instants here are integers: milliseconds since the Unix epoch, UTC.

Rules, in the order they apply to one *local* date (the date an interval starts on):

1. ``closed_dates`` close the whole date; ``open_dates`` open it (with the weekday's hours,
   or ``open_date_hours`` when the weekday has none).
2. With ``holidays: {country: XX}``: a public holiday closes the date; an official make-up
   working day (a weekend day worked in exchange, e.g. CN 2026-02-14) opens it like an
   open date.
3. Otherwise the weekday's hours apply.

An interval like ``22:00-06:00`` belongs to the date it starts on and runs past midnight.
Local times are turned into UTC with the calendar's zone (DST-correct, via zoneinfo): a
boundary that falls in a spring-forward gap moves forward by the gap, one in a fall-back
overlap takes its first occurrence. Business time is real elapsed time while open, so an
overnight shift across a DST change counts 7 or 9 hours, as the people working it do.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_lib

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 1440
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# How many years of intervals one (re)build adds around the instant asked for, and how far
# a single `add` may search before declaring the calendar (practically) never open.
_BUILD_MARGIN_YEARS = 1
_MAX_SEARCH_YEARS = 60
_MIN_YEAR, _MAX_YEAR = 1971, 2200

Interval = tuple[int, int]  # minutes since the local midnight of its date; end may exceed 1440


class CalendarRangeError(ValueError):
    """An instant outside the years a calendar can be built for, or a calendar never open."""


def parse_interval(text: str) -> Interval:
    """``"09:00-12:00"`` -> (540, 720); ``"22:00-06:00"`` -> (1320, 1800) (past midnight).

    ``24:00`` is allowed as an end only; a zero-length interval is refused.
    """
    if not isinstance(text, str) or text.count("-") != 1:
        raise ValueError(f"bad interval {text!r}: expected 'HH:MM-HH:MM', e.g. '09:00-18:00'")
    left, right = [part.strip() for part in text.split("-")]
    start = _parse_clock(left, text, allow_24=False)
    end = _parse_clock(right, text, allow_24=True)
    if start == end:
        raise ValueError(f"bad interval {text!r}: start and end are equal")
    if end < start:
        end += MINUTES_PER_DAY  # runs past midnight (night shift)
    return start, end


def _parse_clock(text: str, whole: str, *, allow_24: bool) -> int:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"bad interval {whole!r}: {text!r} is not HH:MM")
    hours, minutes = int(parts[0]), int(parts[1])
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise ValueError(f"bad interval {whole!r}: {text!r} is not a time of day")
    return hours * 60 + minutes


def check_day(intervals: Sequence[Interval]) -> str | None:
    """A problem with one day's intervals (overlap), or None."""
    ordered = sorted(intervals)
    for (s1, e1), (s2, e2) in zip(ordered, ordered[1:], strict=False):
        if s2 < e1:
            return f"intervals {_fmt(s1, e1)} and {_fmt(s2, e2)} overlap"
    return None


def _fmt(start: int, end: int) -> str:
    if end > MINUTES_PER_DAY:
        end -= MINUTES_PER_DAY
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def to_ms(moment: datetime) -> int:
    """Exact integer milliseconds of an aware datetime (no float rounding)."""
    return (moment - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """The UTC datetime of integer milliseconds (exact: microseconds round to whole ms)."""
    return _fromtimestamp(ms / 1000, UTC)


_fromtimestamp = datetime.fromtimestamp
_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
_DAY_PREFIXES: dict[int, str] = {}  # days since the epoch -> "YYYY-MM-DDT"
# The pieces of a time of day, as text (formatting numbers costs more than joining these).
_HOURS_MINUTES = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
_SECONDS = [f"{s:02d}" for s in range(60)]
_MILLIS = [""] + [f".{ms:03d}000" for ms in range(1, 1000)]


def iso_ms(ms: int, suffix: str = "+00:00") -> str:
    """``from_ms(ms).isoformat()``, with ``suffix`` for its ``+00:00`` (pydantic writes
    ``Z``), without building the datetime: every SLA record and facts row carries two or
    three instants, and the datetime plus its isoformat cost more than the rest of the
    record's JSON. Tested equal to the datetime's text."""
    day, rest = divmod(ms, 86_400_000)
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        if len(_DAY_PREFIXES) >= 4096:  # bounded whatever the instants
            _DAY_PREFIXES.clear()
        prefix = _DAY_PREFIXES[day] = date.fromordinal(day + _EPOCH_ORDINAL).isoformat() + "T"
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    return prefix + _HOURS_MINUTES[minutes] + _SECONDS[second] + _MILLIS[millis] + suffix


class Calendar:
    """One compiled calendar. Immutable as far as callers can tell; caches grow lazily."""

    __slots__ = (
        "name",
        "timezone",
        "always_open",
        "hours",
        "country",
        "subdiv",
        "closed_dates",
        "open_dates",
        "open_date_hours",
        "_zone",
        "_starts",
        "_ends",
        "_cum",
        "_cumend",
        "_lo",
        "_hi",
        "_years",
    )

    def __init__(
        self,
        name: str,
        timezone: str = "UTC",
        *,
        always_open: bool = False,
        hours: Mapping[str, Iterable[Interval]] | None = None,
        country: str | None = None,
        subdiv: str | None = None,
        closed_dates: Iterable[date] = (),
        open_dates: Iterable[date] = (),
        open_date_hours: Iterable[Interval] | None = None,
    ) -> None:
        self.name = name
        self.timezone = timezone
        self._zone = ZoneInfo(timezone)
        self.always_open = always_open
        by_day = {day: tuple(sorted(hours.get(day, ()))) for day in WEEKDAYS} if hours else {}
        self.hours: tuple[tuple[Interval, ...], ...] = tuple(by_day.get(d, ()) for d in WEEKDAYS)
        if not always_open and not any(self.hours):
            raise ValueError(f"calendar {name!r} has no open hours and is not always_open")
        if open_date_hours is None:
            # Open dates and make-up working days work "a normal working day": Monday's
            # hours, or the first weekday that has any.
            open_date_hours = next((h for h in self.hours if h), ())
        self.open_date_hours = tuple(sorted(open_date_hours))
        self.country = country
        self.subdiv = subdiv
        self.closed_dates = frozenset(closed_dates)
        self.open_dates = frozenset(open_dates)
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._cum: list[int] = []
        self._cumend: list[int] = []
        self._lo = self._hi = 0
        self._years: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"Calendar({self.name!r}, {self.timezone!r})"

    # ------------------------------------------------------------------ building
    def _day_intervals(
        self, day: date, holiday_set: Mapping[date, str] | None, workdays: set[date]
    ) -> tuple[Interval, ...]:
        weekday_hours = self.hours[day.weekday()]
        if day in self.closed_dates:
            return ()
        if day in self.open_dates:
            return weekday_hours or self.open_date_hours
        if holiday_set is not None:
            if day in holiday_set:
                return ()
            if day in workdays:
                return weekday_hours or self.open_date_hours
        return weekday_hours

    def _build(self, first_year: int, last_year: int) -> None:
        """(Re)build open intervals for local dates in [first_year, last_year] (plus the eve)."""
        first_year = max(first_year, _MIN_YEAR)
        last_year = min(last_year, _MAX_YEAR)
        holiday_set = None
        workdays: set[date] = set()
        if self.country:
            holiday_set = holidays_lib.country_holidays(
                self.country, subdiv=self.subdiv, years=range(first_year - 1, last_year + 1)
            )
            workdays = set(getattr(holiday_set, "weekend_workdays", ()) or ())
        zone = self._zone
        lo = to_ms(datetime(first_year, 1, 1, tzinfo=zone))
        hi = to_ms(datetime(last_year + 1, 1, 1, tzinfo=zone))
        raw: list[tuple[int, int]] = []
        day = date(first_year, 1, 1) - timedelta(days=1)  # its night shift may run into Jan 1
        end_day = date(last_year, 12, 31)
        one = timedelta(days=1)
        while day <= end_day:
            intervals = self._day_intervals(day, holiday_set, workdays)
            if intervals:
                midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
                for start, end in intervals:
                    s = to_ms(midnight + timedelta(minutes=start))
                    e = to_ms(midnight + timedelta(minutes=end))
                    s, e = max(s, lo), min(e, hi)
                    if e > s:
                        raw.append((s, e))
            day += one
        raw.sort()
        starts: list[int] = []
        ends: list[int] = []
        for s, e in raw:  # merge overlaps across days (a night shift meeting an early shift)
            if ends and s <= ends[-1]:
                if e > ends[-1]:
                    ends[-1] = e
            else:
                starts.append(s)
                ends.append(e)
        cum: list[int] = []
        cumend: list[int] = []
        total = 0
        for s, e in zip(starts, ends, strict=True):
            cum.append(total)
            total += e - s
            cumend.append(total)
        self._starts, self._ends, self._cum, self._cumend = starts, ends, cum, cumend
        self._lo, self._hi = lo, hi
        self._years = (first_year, last_year)

    def _cover(self, ms: int) -> None:
        """Make sure the arrays cover the instant ``ms`` (rebuilding a wider range if not)."""
        if self._years is not None and self._lo <= ms < self._hi:
            return
        year = from_ms(ms).astimezone(self._zone).year
        if not _MIN_YEAR <= year <= _MAX_YEAR:
            raise CalendarRangeError(
                f"calendar {self.name!r}: {from_ms(ms).isoformat()} is out of range"
            )
        if self._years is None:
            self._build(year - _BUILD_MARGIN_YEARS, year + _BUILD_MARGIN_YEARS)
        else:
            first, last = self._years
            self._build(
                min(first, year - _BUILD_MARGIN_YEARS), max(last, year + _BUILD_MARGIN_YEARS)
            )

    # ------------------------------------------------------------------ queries
    def _open_before(self, ms: int) -> int:
        """Open milliseconds from the start of the built range up to ``ms`` (covered)."""
        i = bisect_right(self._starts, ms) - 1
        if i < 0:
            return 0
        end = self._ends[i]
        return self._cum[i] + (ms if ms < end else end) - self._starts[i]

    def elapsed(self, start: int, end: int) -> int:
        """Business milliseconds in [start, end); 0 when end <= start."""
        if end <= start:
            return 0
        if self.always_open:
            return end - start
        self._cover(start)
        self._cover(end)
        return self._open_before(end) - self._open_before(start)

    def add(self, start: int, amount: int) -> int:
        """The first instant at which ``amount`` business ms have passed since ``start``.

        ``add(t, 0) == t``. When the amount runs out exactly at the end of an open
        interval, the answer is that end (18:00), not the next opening (09:00 tomorrow).
        """
        if amount <= 0:
            return start
        if self.always_open:
            return start + amount
        self._cover(start)
        target = self._open_before(start) + amount
        for _ in range(_MAX_SEARCH_YEARS):
            j = bisect_left(self._cumend, target)
            if j < len(self._cumend):
                return self._starts[j] + (target - self._cum[j])
            # Past the built range: widen it by a year and search again.
            before = self._open_before(start)
            self._cover(self._hi)
            target = self._open_before(start) + (target - before)
        raise CalendarRangeError(
            f"calendar {self.name!r} is not open within {_MAX_SEARCH_YEARS} years"
        )

    def is_open(self, ms: int) -> bool:
        if self.always_open:
            return True
        self._cover(ms)
        i = bisect_right(self._starts, ms) - 1
        return i >= 0 and ms < self._ends[i]

    def open_intervals(self, start: int, end: int) -> list[tuple[int, int]]:
        """Open intervals clipped to [start, end) - for docs, tests and the replay tool."""
        if end <= start:
            return []
        if self.always_open:
            return [(start, end)]
        self._cover(start)
        self._cover(end)
        out = []
        i = max(bisect_right(self._starts, start) - 1, 0)
        while i < len(self._starts) and self._starts[i] < end:
            s, e = max(self._starts[i], start), min(self._ends[i], end)
            if e > s:
                out.append((s, e))
            i += 1
        return out
