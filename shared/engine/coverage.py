"""The calendar coverage guard: up to which date a calendar's holiday data is official.

The `holidays` package answers for any year, official or not. Where a government has not
published its schedule yet the package guesses - rule-based dates, lunar estimates - and
says so only quietly, so a deadline counted over a guessed holiday can be days off with
nobody told. For every calendar with ``holidays:`` this module finds the first date from
which the data is not official, by what the package itself exposes:

- **CN**: the State Council publishes each year's holidays together with its make-up
  working days (weekend days worked in exchange). A year for which the package knows no
  make-up working day - and the calendar lists no weekend day in ``open_dates`` - is not
  official: its first day is the first unofficial date.
- **Every country**: a holiday the package labels as estimated (its ``estimated_label``,
  e.g. "Eid al-Fitr (estimated)" - Islamic, Chinese-lunar or Buddhist dates it computes
  instead of reading an official table) is not official from its date on.

``holidays: {official_through: DATE}`` says the operator has put the official dates up
to DATE in ``closed_dates`` / ``open_dates`` by hand: nothing up to it is flagged.

The years checked run from 1 January of ``today``'s year through the end of the
year after next (``YEARS_AHEAD``); a calendar with nothing unofficial in them is official
"at least" through their end. Pure apart from reading the package's data: ``today`` is
passed in, so the monitor (at start and after a reload) and ``slawatch policy check``
decide what today is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from slawatch.shared.engine.calendar import Calendar, to_ms

YEARS_AHEAD = 2
# Countries whose official schedule comes with make-up working days: a year without any
# is a year whose schedule was not published (yet).
MAKE_UP_DAY_COUNTRIES = frozenset({"CN", "CHN"})


@dataclass(frozen=True)
class Coverage:
    """How far one calendar's holiday data is official."""

    calendar: str
    country: str
    subdiv: str | None
    timezone: str
    first_unofficial: date | None  # None: official throughout the years checked
    checked_through: date  # the last day looked at
    reason: str = ""  # why first_unofficial is not official

    @property
    def official_until(self) -> date:
        """The first day not known to be official (the day after the years checked when
        every one of them is)."""
        if self.first_unofficial is not None:
            return self.first_unofficial
        return self.checked_through + timedelta(days=1)

    @property
    def official_until_ms(self) -> int:
        """The start of ``official_until`` in the calendar's zone, UTC ms: a deadline at or
        after it falls in days whose holiday data is not official."""
        day = self.official_until
        return to_ms(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(self.timezone)))

    def warning(self) -> str | None:
        if self.first_unofficial is None:
            return None
        where = self.country + (f"-{self.subdiv}" if self.subdiv else "")
        return (
            f"calendar {self.calendar!r}: holidays for {where} are not official from"
            f" {self.first_unofficial.isoformat()} ({self.reason}); deadlines from then on are"
            " estimates - add the official dates to closed_dates/open_dates and set"
            " holidays.official_through, or upgrade the holidays package (docs/policies.md)"
        )


def _labels(table: Any) -> tuple[str, ...]:
    """The words the package appends to an estimated holiday's name, in ``table``'s language."""
    out = []
    for attribute in ("estimated_label", "observed_estimated_label"):
        label = getattr(table, attribute, None)
        if isinstance(label, str) and label:
            text = table.tr(label).replace("%s", "").strip()
            if text:
                out.append(text)
    return tuple(out)


def _table(country: str, subdiv: str | None, years: range) -> Any:
    """The package's holidays for ``years``, in English where the country has it (the
    estimate labels are then English), else in its default language."""
    probe = holidays_lib.country_holidays(country, subdiv=subdiv)
    language = "en_US" if "en_US" in (probe.supported_languages or ()) else None
    return holidays_lib.country_holidays(country, subdiv=subdiv, years=years, language=language)


def first_unofficial(
    country: str,
    subdiv: str | None,
    first_year: int,
    last_year: int,
    *,
    open_dates: Iterable[date] = (),
    official_through: date | None = None,
) -> tuple[date | None, str]:
    """(the first date in [first_year, last_year] whose holiday data is not official, why)
    or (None, "") when every day is official - for a country of the `holidays` package."""
    years = range(first_year, last_year + 1)
    return unofficial_from(
        _table(country, subdiv, years),
        years,
        make_up_days=country.upper() in MAKE_UP_DAY_COUNTRIES,
        open_dates=open_dates,
        official_through=official_through,
    )


def unofficial_from(
    table: Any,
    years: range,
    *,
    make_up_days: bool,
    open_dates: Iterable[date] = (),
    official_through: date | None = None,
) -> tuple[date | None, str]:
    """The rules on one holidays table (a ``holidays.HolidayBase`` holding ``years``):
    the first estimated holiday, and - for a country whose schedule comes with make-up
    working days - the first year without any; days up to ``official_through`` count
    as official."""
    floor = date(years[0], 1, 1) - timedelta(days=1)  # the last day not asked about
    if official_through is not None and official_through > floor:
        floor = official_through
    found: list[tuple[date, str]] = []
    labels = _labels(table)
    if labels:
        for day, name in sorted(table.items()):
            if day > floor and day.year in years and any(label in name for label in labels):
                found.append((day, f"{name!r} is the package's estimate"))
                break
    if make_up_days:
        worked = set(getattr(table, "weekend_workdays", ()) or ())
        worked |= {d for d in open_dates if d.weekday() >= 5}
        for year in years:
            if date(year, 12, 31) <= floor:
                continue
            if not any(d.year == year for d in worked):
                start = max(date(year, 1, 1), floor + timedelta(days=1))
                found.append((start, f"no make-up working days published for {year}"))
                break
    if not found:
        return None, ""
    return min(found)


def calendar_coverage(
    calendar: Calendar, today: date, *, official_through: date | None = None
) -> Coverage | None:
    """The coverage of one compiled calendar (None when it has no ``holidays:``)."""
    if not calendar.country:
        return None
    last_year = today.year + YEARS_AHEAD
    day, reason = first_unofficial(
        calendar.country,
        calendar.subdiv,
        today.year,
        last_year,
        open_dates=calendar.open_dates,
        official_through=official_through,
    )
    return Coverage(
        calendar=calendar.name,
        country=calendar.country,
        subdiv=calendar.subdiv,
        timezone=calendar.timezone,
        first_unofficial=day,
        checked_through=date(last_year, 12, 31),
        reason=reason,
    )


def guard(
    calendars: Mapping[str, Calendar],
    today: date,
    official_through: Mapping[str, date] | None = None,
) -> list[Coverage]:
    """The coverage of every calendar with holidays, by calendar name."""
    given = official_through or {}
    out = []
    for name in sorted(calendars):
        found = calendar_coverage(calendars[name], today, official_through=given.get(name))
        if found is not None:
            out.append(found)
    return out
