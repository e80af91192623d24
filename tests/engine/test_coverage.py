"""The calendar coverage guard: the installed `holidays` package (CN 2027 is not official
as of 2026-12-01), synthetic holiday tables, `slawatch policy check` and the read API."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import holidays
import pytest
from holidays.holiday_base import HolidayBase

from slawatch.shared.engine import describe, load_policies
from slawatch.shared.engine.cli import policy_main
from slawatch.shared.engine.coverage import first_unofficial, unofficial_from
from tests.engine.helpers import ev, run

TODAY = date(2026, 12, 1)  # the day this guard was written: CN 2027 had no schedule yet
PINNED = "0.109"  # uv.lock; the expectations below are what this version covers

GUARDED = """
version: 1
calendars:
  cn-office:
    timezone: Asia/Shanghai
    hours: {mon: "09:00-18:00", tue: "09:00-18:00", wed: "09:00-18:00", thu: "09:00-18:00", fri: "09:00-18:00"}
    holidays: {country: CN}
  berlin:
    timezone: Europe/Berlin
    hours: {mon: "09:00-17:00", tue: "09:00-17:00", wed: "09:00-17:00", thu: "09:00-17:00", fri: "09:00-17:00"}
    holidays: {country: DE, subdiv: BE}
  always: {timezone: UTC, always_open: true}
policies:
  - id: berlin
    match: {group: berlin}
    calendar: berlin
    targets: {resolution: 5d}
  - id: standard
    match: {}
    calendar: cn-office
    targets: {first_response: 4h, resolution: 5d}
"""


def test_the_pinned_package_has_no_official_cn_2027() -> None:
    assert holidays.__version__ == PINNED, (
        "the holidays package was upgraded: check what it now covers (CN make-up working days,"
        " estimated labels), update these expectations and docs/policies.md together"
    )
    cn = holidays.country_holidays("CN", years=range(2024, 2029))
    published = sorted({day.year for day in cn.weekend_workdays if day.year >= 2024})
    # The day the package gains CN 2027 this fails: the guard then stops flagging 2027.
    assert published == [2024, 2025, 2026]
    assert first_unofficial("CN", None, TODAY.year, TODAY.year + 2) == (
        date(2027, 1, 1),
        "no make-up working days published for 2027",
    )


def test_cn_is_flagged_today_on_the_installed_package() -> None:
    today = datetime.now(UTC).date()
    day, reason = first_unofficial("CN", None, today.year, today.year + 2)
    assert day is not None and day <= date(2027, 1, 1) + timedelta(days=366 * (today.year - 2026))
    assert "make-up working days" in reason


def test_rule_based_and_estimated_countries() -> None:
    assert first_unofficial("DE", "BE", 2026, 2028) == (None, "")  # rules of law: official
    day, reason = first_unofficial("ID", None, 2027, 2028)  # lunar dates the package computes
    assert day == date(2027, 3, 10) and "(estimated)" in reason
    # official_through: the operator covered the dates by hand up to that day.
    assert first_unofficial("CN", None, 2026, 2028, official_through=date(2027, 12, 31))[0] == date(
        2028, 1, 1
    )
    assert first_unofficial("CN", None, 2026, 2028, official_through=date(2027, 6, 30))[0] == date(
        2027, 7, 1
    )
    # A make-up working day given by hand (a Saturday in open_dates) publishes its year.
    assert first_unofficial("CN", None, 2026, 2028, open_dates=[date(2027, 2, 20)])[0] == date(
        2028, 1, 1
    )


class Atlantis(HolidayBase):
    """A synthetic country: a fixed holiday, and from 2027 a lunar one only estimated."""

    country = "XA"
    estimated_label = "%s (estimated)"

    def _populate(self, year: int) -> None:
        super()._populate(year)
        self._add_holiday("Founders Day", date(year, 3, 1))
        if year >= 2027:
            self._add_holiday(
                self.tr(self.estimated_label) % "Moon Day", date(year, 5 + year % 2, 1)
            )


class MakeUpLand(HolidayBase):
    """A synthetic country whose schedule comes with make-up working days, published to 2026."""

    country = "XM"

    def _populate(self, year: int) -> None:
        super()._populate(year)
        self._add_holiday("Spring Day", date(year, 4, 1))
        if year <= 2026:
            self.weekend_workdays.add(date(year, 3, 28 if year == 2026 else 29))  # Saturdays


def test_synthetic_calendars() -> None:
    years = range(2026, 2029)
    atlantis = Atlantis(years=years)
    assert unofficial_from(atlantis, years, make_up_days=False) == (
        date(2027, 6, 1),
        "'Moon Day (estimated)' is the package's estimate",
    )
    assert unofficial_from(
        atlantis, years, make_up_days=False, official_through=date(2027, 12, 31)
    ) == (
        date(2028, 5, 1),
        "'Moon Day (estimated)' is the package's estimate",
    )
    assert unofficial_from(
        Atlantis(years=range(2026, 2027)), range(2026, 2027), make_up_days=False
    ) == (None, "")
    land = MakeUpLand(years=years)
    assert unofficial_from(land, years, make_up_days=True) == (
        date(2027, 1, 1),
        "no make-up working days published for 2027",
    )
    assert unofficial_from(land, years, make_up_days=False) == (None, "")
    assert unofficial_from(
        land, years, make_up_days=True, open_dates=[date(2027, 1, 9), date(2028, 1, 8)]
    ) == (None, "")
    # The earlier of the two rules wins.
    assert unofficial_from(Atlantis(years=years), range(2026, 2029), make_up_days=True)[0] == date(
        2026, 1, 1
    )


def test_policy_set_coverage_and_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ps = load_policies("guarded.yaml", text=GUARDED)
    found = {item.calendar: item for item in ps.check_coverage(TODAY)}
    assert set(found) == {"cn-office", "berlin"}  # always-open calendars have no holidays
    cn, berlin = found["cn-office"], found["berlin"]
    assert cn.first_unofficial == date(2027, 1, 1)
    assert cn.official_until_ms == int(datetime(2026, 12, 31, 16, tzinfo=UTC).timestamp() * 1000)
    assert berlin.first_unofficial is None and berlin.warning() is None
    assert berlin.official_until == date(2029, 1, 1)
    assert ps.estimated_from == {"cn-office": cn.official_until_ms}
    path = tmp_path / "guarded.yaml"
    path.write_text(GUARDED)
    assert policy_main(["check", "-q", str(path), "--today", "2026-12-01"]) == 0
    err = capsys.readouterr().err
    assert err == (
        f"{path}:4: warning: calendar 'cn-office': holidays for CN are not official from 2027-01-01"
        " (no make-up working days published for 2027); deadlines from then on are estimates -"
        " add the official dates to closed_dates/open_dates and set holidays.official_through,"
        " or upgrade the holidays package (docs/policies.md)\n"
    )
    assert policy_main(["check", "-q", "--strict", str(path), "--today", "2026-12-01"]) == 2
    assert "1 warning (--strict: not accepted)" in capsys.readouterr().err
    path.write_text(
        GUARDED.replace(
            "holidays: {country: CN}", "holidays: {country: CN, official_through: 2028-12-31}"
        )
    )
    assert policy_main(["check", "-q", "--strict", str(path), "--today", "2026-12-01"]) == 0
    assert capsys.readouterr().err == ""
    path.write_text(
        GUARDED.replace(
            "holidays: {country: CN}", "holidays: {country: CN, official_through: 2028-02-30}"
        )
    )
    assert policy_main(["check", "-q", str(path)]) == 2
    assert "bad value '2028-02-30': day is out of range for month" in capsys.readouterr().err


def test_the_read_api_marks_deadlines_in_unofficial_days() -> None:
    ps = load_policies("guarded.yaml", text=GUARDED)
    now = datetime(2026, 12, 28, 2, tzinfo=UTC)
    state, _ = run([ev("created", "2026-12-28T01:00")], ps)  # Monday 09:00 in Shanghai
    assert {t["target"]: t["estimated"] for t in describe(state, now, ps)["targets"]} == {
        "first_response": False,
        "resolution": False,
    }  # no coverage check yet: nothing known to be estimated
    ps.check_coverage(TODAY)
    targets = {t["target"]: t for t in describe(state, now, ps)["targets"]}
    # First response is due 2026-12-28 13:00 local (official); resolution, 5 business days
    # of 9 hours, runs into January 2027, whose CN holidays are the package's guess.
    assert targets["first_response"]["deadline"] == "2026-12-28T05:00:00+00:00"
    assert targets["first_response"]["estimated"] is False
    assert targets["resolution"]["deadline"].startswith("2027-01-")
    assert targets["resolution"]["estimated"] is True
    berlin, _ = run([ev("created", "2026-12-28T08:00", ticket="T2", group="berlin")], ps)
    [resolution] = describe(berlin, now, ps)["targets"]
    assert resolution["deadline"].startswith("2027-01-") and resolution["estimated"] is False
