"""Scheduled reports, the pure part: the routing file's `reports` section and its errors
(FILE:LINE, like every routing-file problem), when a report is due in the receiver's own
zone and which period it covers, and the message: columns, values, CSV, summary."""

from __future__ import annotations

import csv
import io
import textwrap
from datetime import UTC, datetime, time, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slawatch.services.notifier.config import ReportSchedule, RoutesError
from slawatch.services.notifier.integrations import build_integration
from slawatch.services.notifier.reports import (
    due_period,
    latest_period,
    notification_id,
    report_view,
    show,
    to_csv,
)
from slawatch.services.notifier.templates import Renderer
from tests.notifier.support import routes

VALID = """\
version: 1
receivers:
  - name: supervisors
    language: zh
    timezone: Asia/Shanghai
    integrations:
      - type: email
        host: 127.0.0.1
        port: 2525
        security: none
        from: slawatch@example.com
        to: [lead@example.com]
  - name: team-chat
    integrations:
      - type: slack
        url: https://hooks.slack.com/services/T/B/x
reports:
  - name: weekly
    receivers: [supervisors, team-chat]
    every: week
    weekday: monday
    at: "09:00"
    group_by: customer_tier
  - name: daily
    receivers: team-chat
    every: day
"""


def test_reports_section_loads() -> None:
    config = routes(VALID)
    weekly, daily = config.reports
    assert weekly == ReportSchedule(
        name="weekly",
        receivers=("supervisors", "team-chat"),
        every="week",
        weekday=0,
        at=time(9, 0),
        group_by="customer_tier",
        line=18,
    )
    assert daily.receivers == ("team-chat",) and daily.at == time(8, 0)
    assert daily.group_by == "policy"


def problems(text: str) -> list[str]:
    with pytest.raises(RoutesError) as info:
        routes(textwrap.dedent(text))
    return [issue.render("routes.yaml") for issue in info.value.issues]


def test_bad_reports_are_refused_with_file_and_line() -> None:
    found = problems(
        """\
        version: 1
        receivers:
          - name: sup
            integrations: [{type: console}]
        reports:
          - name: weekly
            receivers: [sup, nobody]
            every: week
            weekday: funday
            at: 9:30
          - name: weekly
            receivers: sup
            every: day
          - name: bad-time
            receivers: sup
            every: day
            at: "25:00"
            group_by: moon
          - name: day-with-weekday
            receivers: sup
            every: day
            weekday: monday
          - receivers: []
            every: month
            colour: red
          - 3
        """
    )
    assert found == [
        "routes.yaml:7: reports[0]: unknown receiver 'nobody'",
        "routes.yaml:9: `weekday` must be one of monday, tuesday, wednesday, thursday, friday,"
        " saturday, sunday, not 'funday'",
        'routes.yaml:10: `at` must be a time of day in quotes, e.g. "09:30" (YAML reads 9:30 as'
        " a number)",
        "routes.yaml:11: report 'weekly' is defined twice",
        "routes.yaml:17: `at` must be a time of day HH:MM from 00:00 to 23:59, not '25:00'",
        "routes.yaml:18: `group_by` must be one of policy, customer_tier, channel, priority,"
        " assignee, group, customer_id, not 'moon'",
        "routes.yaml:22: `weekday` only applies with `every: week`",
        "routes.yaml:23: `receivers` must be a receiver name or a non-empty list of them",
        "routes.yaml:23: reports[4]: `name` is required",
        "routes.yaml:24: `every` must be one of day, week, not 'month'",
        "routes.yaml:25: unknown key `colour` in reports[4]",
        "routes.yaml:26: reports[5] must be a mapping with `name`, `receivers` and `every`",
    ]


def test_routes_check_refuses_bad_reports_with_exit_2(tmp_path: Path) -> None:
    from slawatch.services.notifier.cli import routes_main

    file = tmp_path / "routes.yaml"
    file.write_text(VALID.replace("every: day", "every: fortnight"))
    assert routes_main(["check", str(file)]) == 2
    file.write_text(VALID)
    assert routes_main(["check", str(file)]) == 0


# ---------------------------------------------------------------------------- schedule
WEEKLY = ReportSchedule("weekly", ("r",), "week", 0, time(9, 0), "customer_tier")
DAILY = ReportSchedule("daily", ("r",), "day", 0, time(8, 30))
SHANGHAI = "Asia/Shanghai"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_weekly_report_is_due_at_the_receivers_local_time() -> None:
    # Monday 2026-11-23 09:00 in Shanghai is 01:00 UTC.
    before = latest_period(WEEKLY, SHANGHAI, utc(2026, 11, 23, 0, 59))
    after = latest_period(WEEKLY, SHANGHAI, utc(2026, 11, 23, 1, 0))
    assert before.send_at == datetime.fromisoformat("2026-11-16T09:00:00+08:00")
    assert after.send_at == datetime.fromisoformat("2026-11-23T09:00:00+08:00")
    assert after.start == datetime.fromisoformat("2026-11-16T00:00:00+08:00")
    assert after.end == datetime.fromisoformat("2026-11-23T00:00:00+08:00")
    assert after.label() == "2026-11-16 – 2026-11-22"
    assert notification_id(WEEKLY, after) == "report:weekly:2026-11-16"
    # The same instant in UTC: Monday 09:00 there is still 8 hours away.
    assert latest_period(WEEKLY, "UTC", utc(2026, 11, 23, 1, 0)).end == utc(2026, 11, 16)
    assert latest_period(WEEKLY, "UTC", utc(2026, 11, 23, 9, 0)).end == utc(2026, 11, 23)


def test_daily_report_covers_yesterday_and_dst_days_are_local_days() -> None:
    period = latest_period(DAILY, "America/New_York", utc(2026, 11, 2, 14, 0))
    # DST ended on Sunday 2026-11-01: that local day had 25 hours.
    assert period.label() == "2026-11-01"
    assert period.end.astimezone(UTC) - period.start.astimezone(UTC) == timedelta(hours=25)
    assert period.send_at == datetime.fromisoformat("2026-11-02T08:30:00-05:00")


def test_a_report_missed_for_too_long_is_skipped() -> None:
    six = timedelta(hours=6)
    assert due_period(WEEKLY, SHANGHAI, utc(2026, 11, 23, 6, 59), six) is not None
    assert due_period(WEEKLY, SHANGHAI, utc(2026, 11, 23, 7, 1), six) is None


@given(
    now=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York", "Australia/Lord_Howe"]),
    weekday=st.integers(0, 6),
    every=st.sampled_from(["day", "week"]),
    at=st.times(),
)
def test_the_latest_period_is_whole_local_days_before_a_send_time_not_after_now(
    now, zone, weekday, every, at
) -> None:
    schedule = ReportSchedule("r", ("r",), every, weekday, at)
    period = latest_period(schedule, zone, now)
    assert period.send_at <= now
    days = 7 if every == "week" else 1
    local_start, local_end = period.start, period.end
    assert (local_end.date() - local_start.date()).days == days
    assert local_start.time() == local_end.time() == time(0, 0)
    assert period.send_at.date() == local_end.date()
    if every == "week":
        assert period.send_at.weekday() == weekday
    # ... and it is the latest: the next one is after now.
    later = latest_period(schedule, zone, now + timedelta(days=days, hours=3))
    assert later.send_at > now


# ---------------------------------------------------------------------------- the message
GROUPS = [
    {
        "customer_tier": "gold",
        "tickets": 3,
        "targets_met": 4,
        "targets_breached": 1,
        "sla_met_pct": 80.0,
        "first_response_p50_s": 330.0,
        "csat_avg": None,
        "aht_mean_s": 95.5,  # a figure this code does not know: shown as it comes
    },
    {"customer_tier": "(none)", "tickets": 1, "targets_met": 0, "targets_breached": 1},
]


def test_values_are_shown_readably_and_unknown_columns_are_kept() -> None:
    assert show("sla_met_pct", 80.0, "en") == "80%"
    assert show("first_response_p50_s", 330.0, "en") == "5m 30s"
    assert show("first_response_p50_s", 330.0, "zh") == "5分钟30秒"
    assert show("csat_avg", None, "en") == "-"
    assert show("csat_avg", 4.333333, "en") == "4.33"
    view = report_view(
        WEEKLY,
        "r",
        "zh",
        latest_period(WEEKLY, SHANGHAI, utc(2026, 11, 23, 2)),
        GROUPS,
        utc(2026, 11, 23, 2),
    )
    assert [c.key for c in view.columns][-1] == "aht_mean_s"
    assert [c.label for c in view.columns][:2] == ["客户等级", "工单数"]
    assert view.columns[-1].label == "aht_mean_s"
    assert view.rows[0][-1] == "1分钟36秒"
    assert view.title == "【slawatch】SLA 周报 weekly：2026-11-16 – 2026-11-22"
    assert "共 4 张工单" in view.headline and "66.67%" in view.headline


def test_csv_has_every_column_of_every_group() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(GROUPS).decode())))
    assert len(rows) == 2
    assert rows[0]["aht_mean_s"] == "95.5" and rows[1]["aht_mean_s"] == ""
    assert rows[1]["customer_tier"] == "(none)" and rows[0]["csat_avg"] == ""
    assert to_csv([]) == b""


def test_every_integration_renders_a_report() -> None:
    config = routes(
        VALID.replace(
            "  - name: team-chat\n    integrations:\n",
            "  - name: team-chat\n    integrations:\n"
            "      - {type: dingtalk, url: 'https://oapi.dingtalk.com/robot/send?access_token=x'}\n"
            "      - {type: wecom, url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k'}\n"
            "      - {type: feishu, url: 'https://open.feishu.cn/open-apis/bot/v2/hook/h'}\n"
            "      - {type: teams, url: 'https://example.com/teams'}\n"
            "      - {type: webhook, url: 'https://example.com/hook'}\n"
            "      - {type: console}\n",
        )
    )
    now = utc(2026, 11, 23, 2)
    period = latest_period(WEEKLY, SHANGHAI, now)
    renderer = Renderer()
    seen = set()
    for receiver in config.receivers.values():
        view = report_view(WEEKLY, receiver.name, receiver.language, period, GROUPS, now)
        for spec in receiver.integrations:
            prepared = build_integration(spec, receiver, renderer, None).report(view, now)
            seen.add(spec.type)
            if spec.type == "email":
                message = message_from_bytes(prepared.payload.as_bytes(), policy=policy.default)
                parts = {p.get_content_type(): p for p in message.walk()}
                assert "<table" in parts["text/html"].get_content()
                assert parts["text/csv"].get_filename() == "weekly-2026-11-16.csv"
                assert message["Content-Language"] == "zh-CN"
            elif spec.type == "slack":
                text = prepared.payload["blocks"][1]["text"]["text"]
                assert "gold: 3 tickets, SLA met 80%" in text and "**" not in text
            elif spec.type == "webhook":
                assert prepared.payload["report"]["groups"] == GROUPS
            elif spec.type == "console":
                assert "weekly" in prepared.payload[0]
            else:
                assert "gold" in str(prepared.payload)
    assert seen == {"email", "slack", "dingtalk", "wecom", "feishu", "teams", "webhook", "console"}


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["sup", "week", "day", "monday", "09:00", "24:00", "policy", "", "x" * 80]),
    st.text(max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = st.sampled_from(["name", "receivers", "every", "weekday", "at", "group_by", "extra"])


@given(st.lists(st.one_of(_VALUES, st.dictionaries(_KEYS, _VALUES, max_size=7)), max_size=3))
def test_any_reports_section_loads_or_is_refused_with_lines(section) -> None:
    """Fuzz: whatever the `reports` section holds, the file loads or every problem is
    a message with a line; nothing else is raised."""
    import yaml

    text = yaml.safe_dump(
        {
            "version": 1,
            "receivers": [{"name": "sup", "integrations": [{"type": "console"}]}],
            "reports": section,
        },
        allow_unicode=True,
    )
    try:
        config = routes(text)
    except RoutesError as exc:
        assert exc.issues and all(issue.message for issue in exc.issues)
        assert all(issue.line is not None for issue in exc.issues), exc.issues
    else:
        for report in config.reports:
            assert report.every in ("day", "week") and set(report.receivers) <= {"sup"}


def test_counts_take_the_singular_in_english_and_no_noun_in_chinese():
    from slawatch.services.notifier.i18n import translate, unit

    assert [unit("en", "ticket", n) for n in (0, 1, 2)] == ["tickets", "ticket", "tickets"]
    assert unit("en", "group", 1) == "group" and unit("en", "group", 3) == "groups"
    headline = translate(
        "en",
        "report.headline",
        tickets=1,
        tickets_unit=unit("en", "ticket", 1),
        groups=1,
        groups_unit=unit("en", "group", 1),
        met="100%",
        targets_met=1,
        breached=0,
    )
    assert headline.startswith("1 ticket in 1 group; SLA met 100%")
    assert translate("zh", "report.line", group="g", tickets=1, tickets_unit="x", met="1%") == (
        "g：1 张工单，SLA 达成率 1%"
    )
