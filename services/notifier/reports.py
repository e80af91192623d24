"""Scheduled compliance reports, the pure part: when a report is due for a receiver, which
period it covers, and what its message shows (tables, CSV, chat summary).

A report for a receiver is sent at ``at`` in the receiver's own time zone: every day, or
every week on ``weekday``. It covers the last full period before that day, in the same
zone: a daily report on 2026-11-24 covers 2026-11-23 00:00 to 2026-11-24 00:00 local
time; a weekly report on Monday 2026-11-23 covers the seven days from Monday 2026-11-16.

The figures are whatever the monitor's report API returns (``GET /v1/reports/compliance``,
JSON): every column of every group is shown, known columns with a translated heading and
a readable value (percentages, durations), unknown ones as they come, so figures added to
the monitor appear in the reports without a change here. The CSV attachment has the
monitor's own column names and raw values, like the API's CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slawatch.services.notifier.config import ReportSchedule
from slawatch.services.notifier.i18n import CATALOG, humanize, translate, unit

REPORT_KIND = "report.compliance"  # its `kind` in the delivery log
PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7)}
MAX_TABLE_ROWS = 500  # the e-mail's table; the CSV always has every group
SUMMARY_GROUPS = 10  # groups listed in a chat summary


@dataclass(frozen=True)
class Period:
    """One period of one report for one receiver."""

    start: datetime  # aware, in the receiver's zone
    end: datetime
    send_at: datetime  # when it is due

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    def label(self) -> str:
        first, last = self.first_day.isoformat(), self.last_day.isoformat()
        return first if first == last else f"{first} – {last}"


def _local(day: date, at: Any, zone: ZoneInfo) -> datetime:
    """A local wall time; in a DST gap zoneinfo gives the instant the clock shows it later."""
    return datetime.combine(day, at, tzinfo=zone)


def latest_period(schedule: ReportSchedule, timezone: str, now: datetime) -> Period:
    """The most recent period whose send time is not after ``now``."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    if schedule.every == "week":
        day = today - timedelta(days=(today.weekday() - schedule.weekday) % 7)
        step = 7
    else:
        day, step = today, 1
    if _local(day, schedule.at, zone) > now:
        day -= timedelta(days=step)
    return Period(
        start=_local(day - timedelta(days=step), _MIDNIGHT, zone),
        end=_local(day, _MIDNIGHT, zone),
        send_at=_local(day, schedule.at, zone),
    )


def due_period(
    schedule: ReportSchedule, timezone: str, now: datetime, late: timedelta
) -> Period | None:
    """The period to send now, if its send time passed less than ``late`` ago (a report
    missed because no notifier ran for longer is skipped, not sent days late)."""
    period = latest_period(schedule, timezone, now)
    return period if now - period.send_at <= late else None


def notification_id(schedule: ReportSchedule, period: Period) -> str:
    """The report's id in the delivery log: one per report, receiver zone and period."""
    return f"report:{schedule.name}:{period.first_day.isoformat()}"


# ---------------------------------------------------------------------------- the message
COUNTS = ("tickets", "targets_met", "targets_breached")


@dataclass(frozen=True)
class Column:
    key: str
    label: str


@dataclass(frozen=True)
class ReportView:
    """Everything a report message shows, already in the receiver's language."""

    name: str
    receiver: str
    language: str
    every: str
    group_by: str
    period: str
    period_start: datetime
    period_end: datetime
    title: str
    headline: str  # totals in one line
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]  # shown values, as many as fit in an e-mail
    hidden_rows: int  # groups left out of the table (all are in the CSV)
    summary_lines: tuple[str, ...]  # for chat: one line per group, the first few
    groups: tuple[Mapping[str, Any], ...]  # as the monitor returned them
    footer: str
    csv_name: str


def columns_of(groups: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every key of every group, in the order they first appear."""
    keys: dict[str, None] = {}
    for group in groups:
        keys.update(dict.fromkeys(group))
    return list(keys)


def show(key: str, value: Any, language: str) -> str:
    """A value as a person reads it: 83.33%, 1h 5m, 4.5, or '-' when there is none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        if key.endswith("_pct"):
            return f"{value:g}%"
        if key.endswith("_s") or key.endswith("_seconds"):
            return humanize(float(value), language)
        if isinstance(value, float):
            return f"{round(value, 2):g}"
        return str(value)
    return " ".join(str(value).split())[:200]


def to_csv(groups: Sequence[Mapping[str, Any]]) -> bytes:
    """The groups as CSV with the monitor's column names and raw values (UTF-8)."""
    buffer = io.StringIO()
    columns = columns_of(groups)
    if columns:
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\r\n")
        writer.writeheader()
        for group in groups:
            writer.writerow({k: "" if v is None else v for k, v in group.items()})
    return buffer.getvalue().encode()


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def report_view(
    schedule: ReportSchedule,
    receiver: str,
    language: str,
    period: Period,
    groups: Sequence[Mapping[str, Any]],
    now: datetime,
) -> ReportView:
    t = translate
    columns = columns_of(groups)
    heading = [
        Column(key, t(language, f"report.col.{key}") if f"report.col.{key}" in _KNOWN else key)
        for key in columns
    ]
    totals = {key: sum(_number(g.get(key)) for g in groups) for key in COUNTS}
    finished = totals["targets_met"] + totals["targets_breached"]
    met = f"{round(100.0 * totals['targets_met'] / finished, 2):g}%" if finished else "-"
    headline = t(
        language,
        "report.headline",
        groups=len(groups),
        groups_unit=unit(language, "group", len(groups)),
        tickets=totals["tickets"],
        tickets_unit=unit(language, "ticket", totals["tickets"]),
        met=met,
        targets_met=totals["targets_met"],
        breached=totals["targets_breached"],
    )
    group_key = schedule.group_by
    lines = []
    for group in groups[:SUMMARY_GROUPS]:
        lines.append(
            t(
                language,
                "report.line",
                group=show(group_key, group.get(group_key), language),
                tickets=show("tickets", group.get("tickets"), language),
                tickets_unit=unit(language, "ticket", group.get("tickets")),
                met=show("sla_met_pct", group.get("sla_met_pct"), language),
            )
        )
    if len(groups) > SUMMARY_GROUPS:
        more = len(groups) - SUMMARY_GROUPS
        lines.append(t(language, "report.more", n=more, n_unit=unit(language, "group", more)))
    label = period.label()
    return ReportView(
        name=schedule.name,
        receiver=receiver,
        language=language,
        every=schedule.every,
        group_by=group_key,
        period=label,
        period_start=period.start,
        period_end=period.end,
        title=t(language, f"report.title.{schedule.every}", name=schedule.name, period=label),
        headline=headline,
        columns=tuple(heading),
        rows=tuple(
            tuple(show(key, group.get(key), language) for key in columns)
            for group in groups[:MAX_TABLE_ROWS]
        ),
        hidden_rows=max(len(groups) - MAX_TABLE_ROWS, 0),
        summary_lines=tuple(lines),
        groups=tuple(groups),
        footer=t(
            language,
            "footer",
            receiver=receiver,
            now=now.astimezone(period.start.tzinfo).strftime("%Y-%m-%d %H:%M %Z").strip(),
        ),
        csv_name=f"{schedule.name}-{period.first_day.isoformat()}.csv",
    )


_MIDNIGHT = datetime.min.time()
_KNOWN = {key for key in CATALOG["en"] if key.startswith("report.col.")}
