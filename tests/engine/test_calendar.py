"""Business-hour calendars: worked examples, CN 2026, DST, night shifts, properties, oracle."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import businesstimedelta
import pytest
import pytz
from hypothesis import given
from hypothesis import strategies as st

from slawatch.shared.engine.calendar import Calendar, from_ms, iso_ms, parse_interval, to_ms
from slawatch.shared.engine.durations import DurationError, format_duration, parse_duration

WEEK = ("mon", "tue", "wed", "thu", "fri")
LUNCH = [parse_interval("09:00-12:00"), parse_interval("13:00-18:00")]
H = 3_600_000


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return to_ms(dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)))


def show(ms: int, zone: str) -> str:
    return from_ms(ms).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def cn_office() -> Calendar:
    return Calendar("office", "Asia/Shanghai", hours={d: LUNCH for d in WEEK}, country="CN")


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("4h", 14400), ("1h30m", 5400),
                                               ("2d", 172800), ("0m", 0), ("1d2h3m4s", 93784), ("250ms", 0.25),
                                               ("1m1s1ms", 61.001)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)
    assert parse_duration(format_duration(seconds)) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "15", "m", "1.5h", "30m1h", "2w", "-5m", "1h 30m", 15, "5ms1s", " 5m", "0"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(DurationError):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["9:00-12:00", "09:00", "09:00-09:00", "24:00-02:00", "10:60-11:00", "25:00-26:00"])
def test_bad_intervals(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_interval(bad)


def test_night_shift_interval_runs_past_midnight() -> None:
    assert parse_interval("22:00-06:00") == (22 * 60, 30 * 60)
    assert parse_interval("09:00-24:00") == (9 * 60, 24 * 60)


def test_lunch_break_is_not_counted() -> None:
    cal = cn_office()
    start = local("Asia/Shanghai", 2026, 3, 2, 11, 30)  # Monday
    assert show(cal.add(start, H), "Asia/Shanghai") == "2026-03-02 13:30"
    assert cal.elapsed(start, local("Asia/Shanghai", 2026, 3, 2, 14, 0)) == 1.5 * H
    # Used up exactly at closing time: the deadline is 18:00, not 09:00 next morning.
    assert show(cal.add(local("Asia/Shanghai", 2026, 3, 2, 17, 0), H), "Asia/Shanghai") == "2026-03-02 18:00"
    assert cal.add(start, 0) == start


def test_cn_2026_holidays_and_make_up_working_days() -> None:
    cal = cn_office()

    def open_at(y: int, m: int, d: int) -> bool:
        return cal.is_open(local("Asia/Shanghai", y, m, d, 10, 0))

    # Official 2026 schedule: Spring Festival Feb 15-23 off, Sat Feb 14 and Sat Feb 28 worked;
    # New Year Jan 1-3 off, Sun Jan 4 worked; Labour Day May 1-5 off, Sat May 9 worked;
    # National Day Oct 1-7 off, Sun Sep 20 and Sat Oct 10 worked.
    for day in (dt.date(2026, 1, 1), dt.date(2026, 1, 2), *(dt.date(2026, 2, d) for d in (16, 17, 18, 19, 20, 23)),
                dt.date(2026, 4, 6), *(dt.date(2026, 5, d) for d in (1, 4, 5)), dt.date(2026, 6, 19),
                dt.date(2026, 9, 25), *(dt.date(2026, 10, d) for d in (1, 2, 5, 6, 7))):
        assert not open_at(day.year, day.month, day.day), day
    for day in (dt.date(2026, 1, 4), dt.date(2026, 2, 14), dt.date(2026, 2, 28), dt.date(2026, 5, 9),
                dt.date(2026, 9, 20), dt.date(2026, 10, 10)):
        assert day.weekday() >= 5 and open_at(day.year, day.month, day.day), day
    assert open_at(2026, 2, 13) and open_at(2026, 2, 24) and not open_at(2026, 2, 21)
    # Friday 17:00 + 4 business hours: 1 h on Friday, then the make-up Saturday morning.
    friday = local("Asia/Shanghai", 2026, 2, 13, 17, 0)
    assert show(cal.add(friday, 4 * H), "Asia/Shanghai") == "2026-02-14 12:00"
    # From Saturday 14 Feb 18:00 the next open hour is Tuesday 24 Feb (the whole festival is closed).
    assert show(cal.add(local("Asia/Shanghai", 2026, 2, 14, 18, 0), H), "Asia/Shanghai") == "2026-02-24 10:00"


def test_closed_and_open_dates() -> None:
    cal = Calendar("c", "UTC", hours={d: LUNCH for d in WEEK}, closed_dates=[dt.date(2026, 3, 3)],
                   open_dates=[dt.date(2026, 3, 7)], open_date_hours=[parse_interval("10:00-14:00")])
    assert not cal.is_open(local("UTC", 2026, 3, 3, 10))
    assert cal.is_open(local("UTC", 2026, 3, 7, 11)) and not cal.is_open(local("UTC", 2026, 3, 7, 9))
    assert cal.elapsed(local("UTC", 2026, 3, 7), local("UTC", 2026, 3, 8)) == 4 * H


def test_dst_new_york() -> None:
    zone = "America/New_York"
    cal = Calendar("us", zone, hours={d: [parse_interval("09:00-17:00")] for d in WEEK})
    friday = local(zone, 2026, 3, 6, 16, 0)  # EST; clocks go forward Sunday 8 March
    deadline = cal.add(friday, 2 * H)
    assert show(deadline, zone) == "2026-03-09 10:00"
    assert from_ms(deadline).hour == 14  # 10:00 EDT is 14:00 UTC (it was 21:00 UTC on Friday)
    assert cal.elapsed(local(zone, 2026, 3, 9, 9), local(zone, 2026, 3, 9, 17)) == 8 * H
    # Autumn: Friday 30 Oct 16:00 EDT + 2 h -> Monday 2 Nov 10:00 EST (15:00 UTC)
    assert from_ms(cal.add(local(zone, 2026, 10, 30, 16), 2 * H)).hour == 15


def test_dst_berlin_night_shift() -> None:
    zone = "Europe/Berlin"
    cal = Calendar("night", zone, hours={"sat": [parse_interval("22:00-06:00")]})
    # The shift of Saturday 28 March loses an hour (clocks forward at 02:00): 7 real hours.
    assert cal.elapsed(local(zone, 2026, 3, 28, 20), local(zone, 2026, 3, 29, 12)) == 7 * H
    # The shift of Saturday 24 October gains one (clocks back at 03:00): 9 real hours.
    assert cal.elapsed(local(zone, 2026, 10, 24, 20), local(zone, 2026, 10, 25, 12)) == 9 * H
    assert cal.elapsed(local(zone, 2026, 10, 17, 20), local(zone, 2026, 10, 18, 12)) == 8 * H


def test_midnight_spanning_hours() -> None:
    cal = Calendar("night", "UTC", hours={"mon": [parse_interval("22:00-06:00")]})
    monday = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    at = to_ms(monday + dt.timedelta(hours=23))
    assert from_ms(cal.add(at, 3 * H)) == monday + dt.timedelta(days=1, hours=2)
    # Monday 05:00 belongs to Sunday's shift, and Sunday has none: wait for Monday 22:00.
    assert from_ms(cal.add(to_ms(monday + dt.timedelta(hours=5)), H)) == monday + dt.timedelta(hours=23)
    assert cal.is_open(to_ms(monday + dt.timedelta(days=1, hours=5)))


def test_year_boundaries_and_far_future() -> None:
    cal = cn_office()
    start = local("Asia/Shanghai", 2026, 12, 31, 17)
    assert show(cal.add(start, 2 * H), "Asia/Shanghai") == "2027-01-04 10:00"
    far = cal.add(local("Asia/Shanghai", 2026, 3, 2, 9), 2000 * 8 * H)  # ~8 years of working days
    assert cal.elapsed(local("Asia/Shanghai", 2026, 3, 2, 9), far) == 2000 * 8 * H
    assert cal.elapsed(far, local("Asia/Shanghai", 2026, 3, 2, 9)) == 0


instants = st.integers(to_ms(dt.datetime(2025, 6, 1, tzinfo=dt.UTC)), to_ms(dt.datetime(2027, 6, 1, tzinfo=dt.UTC)))
amounts = st.integers(0, 90 * 24 * H)
CALENDARS = [cn_office(), Calendar("ny", "America/New_York", hours={d: [parse_interval("08:00-20:00")] for d in WEEK}),
             Calendar("n", "Europe/Berlin", hours={"mon": [parse_interval("22:00-06:00")], "sun": [parse_interval("22:00-06:00")]}),
             Calendar("a", "UTC", always_open=True)]


@given(st.sampled_from(CALENDARS), instants, amounts, amounts)
def test_add_and_elapsed_are_inverse_and_monotonic(cal: Calendar, start: int, d1: int, d2: int) -> None:
    first, second = cal.add(start, d1), cal.add(start, d2)
    assert cal.elapsed(start, first) == d1
    assert (first <= second) == (d1 <= d2) or first == second
    assert first >= start
    # Elapsed then add never lands later than the end, and counts the same.
    assert cal.add(start, cal.elapsed(start, second)) <= second
    assert cal.elapsed(start, cal.add(start, cal.elapsed(start, second))) == cal.elapsed(start, second)


@given(st.sampled_from(CALENDARS), instants, instants, instants)
def test_elapsed_is_additive(cal: Calendar, a: int, b: int, c: int) -> None:
    a, b, c = sorted((a, b, c))
    assert cal.elapsed(a, b) + cal.elapsed(b, c) == cal.elapsed(a, c)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/New_York"])
def test_oracle_businesstimedelta(zone: str) -> None:
    """A separate implementation agrees on thousands of random intervals."""
    rng = random.Random(zone)
    holidays = sorted({dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 700)) for _ in range(25)})
    tz = pytz.timezone(zone)
    rules = businesstimedelta.Rules([
        businesstimedelta.WorkDayRule(start_time=dt.time(9), end_time=dt.time(18), working_days=[0, 1, 2, 3, 4], tz=tz),
        businesstimedelta.LunchTimeRule(start_time=dt.time(12), end_time=dt.time(13), working_days=[0, 1, 2, 3, 4], tz=tz),
        businesstimedelta.HolidayRule(holidays, tz=tz),
    ])
    cal = Calendar("o", zone, hours={d: LUNCH for d in WEEK}, closed_dates=holidays)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    checked = 0
    for _ in range(1500):
        a = base + dt.timedelta(minutes=rng.randint(0, 600 * 24 * 60))
        b = a + dt.timedelta(minutes=rng.randint(0, 20 * 24 * 60))
        expected = rules.difference(a, b).timedelta.total_seconds()
        assert cal.elapsed(to_ms(a), to_ms(b)) / 1000 == expected, (a, b)
        checked += 1
        if rng.random() < 0.3 and expected > 0:
            # and the deadline of that much business time agrees too
            amount = businesstimedelta.BusinessTimeDelta(rules, seconds=int(expected))
            assert from_ms(cal.add(to_ms(a), int(expected) * 1000)) == (a + amount).astimezone(dt.UTC), a
    assert checked == 1500


@given(
    st.integers(to_ms(dt.datetime(1, 1, 1, tzinfo=dt.UTC)), to_ms(dt.datetime(9999, 12, 31, tzinfo=dt.UTC)))
    | st.integers(-86_400_000, 86_400_000)
)
def test_iso_ms_is_the_datetimes_own_text(ms: int) -> None:
    """iso_ms writes an instant without building its datetime: the exact datetime's text,
    both suffixes; and from_ms's wherever the engine counts (its float is exact there)."""
    exact = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    assert iso_ms(ms) == exact.isoformat()
    assert iso_ms(ms, "Z") == exact.isoformat().removesuffix("+00:00") + "Z"
    if 0 <= ms <= to_ms(dt.datetime(2300, 1, 1, tzinfo=dt.UTC)):
        assert iso_ms(ms) == from_ms(ms).isoformat()


def test_iso_ms_whole_and_fractional_seconds() -> None:
    assert iso_ms(to_ms(dt.datetime(2026, 3, 2, 9, 15, tzinfo=dt.UTC)), "Z") == "2026-03-02T09:15:00Z"
    assert iso_ms(1, "Z") == "1970-01-01T00:00:00.001000Z"
    assert iso_ms(-1) == "1969-12-31T23:59:59.999000+00:00"
