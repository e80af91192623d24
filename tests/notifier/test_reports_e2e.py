"""Scheduled reports end to end: a real monitor process fed through the real broker, its
report API over HTTP, two notifiers sharing one PostgreSQL, a real SMTP server (aiosmtpd)
and a real local HTTP server for the chat receivers.

The notifiers' schedule runs on a clock the test sets (never a week of sleeping); the
monitor, the leases and the delivery log run on real time. Two notifiers check the
schedule at the same moments: each report still arrives once.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import httpx
import pytest

from slawatch.services.database import migrate
from slawatch.services.dev.provision import free_port
from slawatch.services.notifier.app import create_app
from slawatch.services.notifier.clock import Clock
from slawatch.services.notifier.config import load_routes
from slawatch.services.notifier.settings import NotifierSettings
from slawatch.shared.db import asyncpg_dsn, with_database
from slawatch.shared.kafka import ensure_topics
from tests.helpers import read_topic, serve, topic_settings
from tests.helpers import wait_ready as wait_until_ready
from tests.monitor.harness import (
    READ_AUTH,
    READ_KEYS,
    READ_TOKEN,
    MonitorProcess,
    agent_reply,
    created,
    monitor_env,
    produce,
    solved,
)
from tests.notifier.clocked_notifier import set_time
from tests.notifier.test_service import AUTH, KEYS, eventually, log_rows, metric, wait_ready

pytestmark = pytest.mark.integration

POLICY = """\
version: 1
calendars:
  always: {timezone: UTC, always_open: true}
policies:
  - id: gold
    match: {customer_tier: [gold]}
    calendar: always
    targets: {first_response: 10m, resolution: 1h}
  - id: standard
    match: {}
    calendar: always
    targets: {first_response: 10m, resolution: 1h}
"""

ROUTES = """\
version: 1
receivers:
  - name: supervisors
    language: zh
    timezone: Asia/Shanghai
    integrations:
      - type: email
        host: 127.0.0.1
        port: {smtp_port}
        security: none
        from: slawatch@example.com
        to: [lead@example.com]
  - name: team-chat
    timezone: UTC
    integrations:
      - type: slack
        url: "{sink}/slack"
      - type: dingtalk
        url: "{sink}/dingtalk?access_token=t"
routes: []
reports:
  - name: weekly
    receivers: [supervisors, team-chat]
    every: week
    weekday: monday
    at: "09:00"
    group_by: customer_tier
"""


class SetClock(Clock):
    """The time is what the test says; a check of the schedule waits 20 real ms."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0.02)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


# Shanghai's week of Monday 2026-11-16 is 2026-11-15 16:00 to 2026-11-22 16:00 UTC.
W1, W2, W3 = utc(2026, 11, 15, 17), utc(2026, 11, 18, 3), utc(2026, 11, 20, 10)
BEFORE, AFTER = utc(2026, 11, 15, 15, 30), utc(2026, 11, 22, 16, 30)  # Sunday / Monday local
EVENTS = [
    # W1, gold: first reply after 5 min, solved after 30: both targets met.
    created("W1", W1, customer_tier="gold"),
    agent_reply("W1", W1 + m(5)),
    solved("W1", W1 + m(30)),
    # W2, gold: first reply after 20 min, solved after 2 h: both breached.
    created("W2", W2, customer_tier="gold"),
    agent_reply("W2", W2 + m(20)),
    solved("W2", W2 + m(120)),
    # W3, no tier: reply after 1 min, solved after 10: both met.
    created("W3", W3),
    agent_reply("W3", W3 + m(1)),
    solved("W3", W3 + m(10)),
    # Outside the week in Shanghai (inside it in UTC, for BEFORE): not in the report.
    created("X1", BEFORE, customer_tier="gold"),
    agent_reply("X1", BEFORE + m(1)),
    solved("X1", BEFORE + m(2)),
    created("X2", AFTER),
    agent_reply("X2", AFTER + m(1)),
    solved("X2", AFTER + m(2)),
]
# The expected report, worked out from the events above (not from the monitor).
EXPECTED = {
    "gold": {
        "tickets": "2",
        "solved": "2",
        "targets_met": "2",
        "targets_breached": "2",
        "sla_met_pct": "50.0",
        "fcr_pct": "100.0",
        "first_response_p50_s": str((5 * 60 + 20 * 60) / 2),
        "resolution_p50_s": str((30 * 60 + 120 * 60) / 2),
    },
    "(none)": {
        "tickets": "1",
        "solved": "1",
        "targets_met": "2",
        "targets_breached": "0",
        "sla_met_pct": "100.0",
        "fcr_pct": "100.0",
        "first_response_p50_s": "60.0",
    },
}


@dataclass
class Monitor:
    """One monitor process for the module, fed EVENTS once; tests share it read-only."""

    process: MonitorProcess
    settings: NotifierSettings  # its topics
    week_groups: list[dict]  # its report of Shanghai's week of 2026-11-16, by customer tier


@pytest.fixture(scope="module")
async def monitor(kafka_bootstrap, database_url, tmp_path_factory) -> AsyncIterator[Monitor]:
    name = "t_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    database = with_database(database_url, name)
    await asyncio.to_thread(migrate.upgrade, database)
    folder = tmp_path_factory.mktemp("monitor")
    topics = topic_settings(NotifierSettings, "t" + uuid.uuid4().hex[:10], kafka_bootstrap)
    await ensure_topics(topics)
    policy_file = folder / "policies.yaml"
    policy_file.write_text(POLICY)
    process = MonitorProcess(monitor_env(topics, database, policy_file), folder / "monitor.log")
    process.start()
    try:
        await process.wait_ready()
        await produce(kafka_bootstrap, topics.topic_events, EVENTS)
        async with httpx.AsyncClient(base_url=process.url, headers=READ_AUTH) as api:

            async def all_solved() -> bool:
                for ticket in ("W1", "W2", "W3", "X1", "X2"):
                    answer = await api.get(f"/v1/tickets/{ticket}/sla")
                    if answer.status_code != 200 or answer.json()["status"] != "solved":
                        return False
                return True

            await eventually(all_solved, timeout=60)
            week = {"from": "2026-11-15T16:00:00+00:00", "to": "2026-11-22T16:00:00+00:00"}
            groups = (
                await api.get(
                    "/v1/reports/compliance", params={**week, "group_by": "customer_tier"}
                )
            ).json()["groups"]
        yield Monitor(process, topics, groups)
    finally:
        process.stop()
        admin = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def settings(monitor, kafka_bootstrap, fresh_database, topic_prefix) -> NotifierSettings:
    """Notifiers of one test: their own database and dead-letter topic, the monitor's SLA
    topic (they route nothing from it: the routing file has no routes)."""
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    s = topic_settings(
        NotifierSettings,
        topic_prefix,
        kafka_bootstrap,
        database_url=fresh_database,
        notifier_group_id=f"{topic_prefix}-notifier",
        notifier_monitor_url=monitor.process.url,
        notifier_monitor_token=READ_TOKEN,
        notifier_report_check_s=1.0,
        kafka_session_timeout_s=6.0,
        events_partitions=2,
    ).model_copy(update={"topic_sla": monitor.settings.topic_sla})
    await ensure_topics(s)
    return s


@contextlib.asynccontextmanager
async def notifier(
    settings: NotifierSettings, routes: Path, clock: Clock
) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    app = create_app(settings, load_routes(routes, {}), {}, KEYS, clock=clock)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        await wait_ready(client)
        yield client, app.state.notifier


async def checks_done(notifiers, more: int = 3) -> None:
    """Let every notifier look at the schedule ``more`` more times."""
    targets = [(n, n.reports.checks + more) for n in notifiers]
    deadline = time.monotonic() + 20
    while not all(n.reports.checks >= goal for n, goal in targets):
        assert time.monotonic() < deadline, "the report schedulers stopped checking"
        await asyncio.sleep(0.02)


def attachment(message: EmailMessage) -> tuple[str, list[dict[str, str]]]:
    parts = [p for p in message.walk() if p.get_content_type() == "text/csv"]
    assert len(parts) == 1, [p.get_content_type() for p in message.walk()]
    payload = parts[0].get_payload(decode=True)
    name = parts[0].get_filename()
    assert isinstance(payload, bytes) and name is not None
    return name, list(csv.DictReader(io.StringIO(payload.decode("utf-8"))))


async def test_weekly_report_arrives_once_at_each_receivers_local_time(
    settings, monitor, smtp_server, http_sink, tmp_path
) -> None:
    mailbox, smtp_port = smtp_server
    sink, sink_url = http_sink
    sink.script("/dingtalk").always(200, {"errcode": 0, "errmsg": "ok"})
    api_groups = monitor.week_groups
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES.format(smtp_port=smtp_port, sink=sink_url))
    clock = SetClock(utc(2026, 11, 23, 0, 59))  # Monday 08:59 in Shanghai
    async with (
        notifier(settings, routes, clock) as (first, one),
        notifier(settings, routes, clock) as (_second, two),
    ):
        both = (one, two)
        await checks_done(both)
        assert mailbox.messages == [] and sink.requests == []

        clock.at = utc(2026, 11, 23, 1, 0, 30)  # 09:00:30 in Shanghai, 01:00 in UTC
        await eventually(lambda: _count(mailbox.messages, 1))
        await checks_done(both)
        assert len(mailbox.messages) == 1 and sink.requests == []

        _, recipients, message = mailbox.messages[0]
        assert recipients == ["lead@example.com"]
        assert message["Subject"] == "【slawatch】SLA 周报 weekly：2026-11-16 – 2026-11-22"
        assert message["Content-Language"] == "zh-CN"
        html = message.get_body(("html",)).get_content()
        assert "<table" in html and "工单数" in html and "SLA 达成率" in html
        assert "共 3 张工单" in html and "66.67%" in html  # 4 of 6 targets met
        name, rows = attachment(message)
        assert name == "weekly-2026-11-16.csv"
        by_tier = {row["customer_tier"]: row for row in rows}
        assert set(by_tier) == set(EXPECTED)
        for tier, figures in EXPECTED.items():
            for key, value in figures.items():
                assert by_tier[tier][key] == value, (tier, key)
        # ... and the CSV is the monitor's answer, every column of every group.
        assert [list(row) for row in rows] == [list(g) for g in api_groups]
        assert [{k: "" if v is None else str(v) for k, v in g.items()} for g in api_groups] == rows

        clock.at = utc(2026, 11, 23, 9, 0, 30)  # 09:00:30 in UTC: the chat receiver's turn
        await sink.wait_for("/slack", 1)
        await sink.wait_for("/dingtalk", 1)
        await checks_done(both)
        assert len(sink.at("/slack")) == 1 and len(sink.at("/dingtalk")) == 1
        assert len(mailbox.messages) == 1
        slack = sink.at("/slack")[0].json()
        assert slack["text"] == "[slawatch] Weekly SLA report weekly: 2026-11-16 – 2026-11-22"
        summary = slack["blocks"][1]["text"]["text"]
        # Its week is UTC's: W1 (Sunday in UTC) is out, X2 (Sunday evening in UTC) in.
        assert "Tickets created 2026-11-16 00:00 to 2026-11-23 00:00 (UTC)" in summary
        assert "gold: 1 ticket, SLA met 0%" in summary
        assert "(none): 2 tickets, SLA met 100%" in summary
        assert "SLA met 66.67% (4 targets met, 2 breached)" in summary
        dingtalk = sink.at("/dingtalk")[0].json()
        assert dingtalk["msgtype"] == "markdown" and "gold" in dingtalk["markdown"]["text"]

        # The delivery log says so, once per receiver and integration.
        entries = await log_rows(first, receiver="supervisors")
        assert [(e["kind"], e["integration"], e["status"]) for e in entries] == [
            ("report.compliance", "email", "sent")
        ]
        assert entries[0]["notification_id"] == "report:weekly:2026-11-16"
        assert entries[0]["report"]["from"] == "2026-11-15T16:00:00+00:00"
        chat = await log_rows(first, receiver="team-chat")
        assert sorted((e["integration"], e["status"]) for e in chat) == [
            ("dingtalk", "sent"),
            ("slack", "sent"),
        ]

        # Tuesday: nothing new. The next Monday: next week's report (X2's week).
        clock.at = utc(2026, 11, 24, 1, 0, 30)
        await checks_done(both)
        assert len(mailbox.messages) == 1
        clock.at = utc(2026, 11, 30, 1, 0, 30)
        await eventually(lambda: _count(mailbox.messages, 2))
        await checks_done(both)
        assert len(mailbox.messages) == 2
        _, rows = attachment(mailbox.messages[1][2])
        assert [(r["customer_tier"], r["tickets"]) for r in rows] == [("(none)", "1")]

    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        runs = await connection.fetch(
            "SELECT receiver, claims, done_at FROM report_runs ORDER BY period_start, receiver"
        )
    finally:
        await connection.close()
    assert [(r["receiver"], r["claims"], r["done_at"] is not None) for r in runs] == [
        ("supervisors", 1, True),
        ("team-chat", 1, True),
        ("supervisors", 1, True),
    ]


async def _count(items: list, n: int) -> bool:
    return len(items) >= n


async def test_the_monitor_refusing_the_key_is_logged_and_nothing_is_sent(
    settings, fresh_database, smtp_server, http_sink, tmp_path
) -> None:
    """A report the monitor will not give (wrong key) is not sent half-made; the lease
    stays, so it is tried again when it runs out, not on every check."""
    mailbox, smtp_port = smtp_server
    sink, sink_url = http_sink
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES.format(smtp_port=smtp_port, sink=sink_url))
    clock = SetClock(utc(2026, 11, 23, 1, 0, 30))
    settings = settings.model_copy(update={"notifier_monitor_token": "wrong"})
    async with notifier(settings, routes, clock) as (client, one):
        await checks_done([one], 5)
        assert mailbox.messages == []
        assert await log_rows(client, receiver="supervisors") == []
        assert (await client.get("/v1/notifications", headers=AUTH)).status_code == 200
    connection = await asyncpg.connect(asyncpg_dsn(fresh_database))
    try:
        claims = await connection.fetchval("SELECT claims FROM report_runs")
    finally:
        await connection.close()
    assert claims == 1


def notifier_env(settings: NotifierSettings, routes: Path, clock_file: Path, port: int) -> dict:
    return {
        "SLAWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SLAWATCH_DATABASE_URL": settings.database_url,
        "SLAWATCH_TOPIC_EVENTS": settings.topic_events,
        "SLAWATCH_TOPIC_EVENTS_DLQ": settings.topic_events_dlq,
        "SLAWATCH_TOPIC_SLA": settings.topic_sla,
        "SLAWATCH_TOPIC_NOTIFICATIONS_DLQ": settings.topic_notifications_dlq,
        "SLAWATCH_NOTIFIER_GROUP_ID": settings.notifier_group_id,
        "SLAWATCH_NOTIFIER_PORT": str(port),
        "SLAWATCH_ROUTES_FILE": str(routes),
        "SLAWATCH_NOTIFIER_MONITOR_URL": settings.notifier_monitor_url,
        "SLAWATCH_NOTIFIER_MONITOR_TOKEN": READ_TOKEN,
        "SLAWATCH_KAFKA_SESSION_TIMEOUT_S": "6",
        "SLAWATCH_API_KEYS": READ_KEYS,
        "REPORT_CLOCK_FILE": str(clock_file),
    }


def start_notifier(env: dict, log_path: Path) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    full.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.notifier.clocked_notifier"],
        env=full,
        stdout=open(log_path, "ab"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
    )


async def scraped(url: str, name: str, **labels: str) -> float:
    async with httpx.AsyncClient(timeout=10) as client:
        return metric((await client.get(f"{url}/metrics")).text, name, **labels)


async def test_two_notifier_processes_send_each_report_once(
    settings, smtp_server, http_sink, tmp_path
) -> None:
    mailbox, smtp_port = smtp_server
    sink, sink_url = http_sink
    sink.script("/dingtalk").always(200, {"errcode": 0, "errmsg": "ok"})
    slack_before = len(sink.at("/slack"))
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES.format(smtp_port=smtp_port, sink=sink_url))
    clock_file = tmp_path / "clock"
    set_time(clock_file, utc(2026, 11, 23, 0, 59))  # Monday 08:59 in Shanghai
    processes: list[tuple[subprocess.Popen, str, Path]] = []
    try:
        for index in range(2):
            port = free_port()
            log_path = tmp_path / f"notifier-{index}.log"
            env = notifier_env(settings, routes, clock_file, port)
            processes.append((start_notifier(env, log_path), f"http://127.0.0.1:{port}", log_path))
        for process, url, log_path in processes:
            await wait_until_ready(
                f"{url}/healthz", "notifier", timeout=90, process=process, log_path=log_path
            )

        async def checked(more: int) -> None:
            """Both processes looked at the schedule ``more`` more times."""
            goals = [
                await scraped(url, "slawatch_notifier_report_checks_total") + more
                for _, url, _ in processes
            ]

            async def done() -> bool:
                counts = [
                    await scraped(url, "slawatch_notifier_report_checks_total")
                    for _, url, _ in processes
                ]
                return all(c >= g for c, g in zip(counts, goals, strict=True))

            await eventually(done, timeout=30)

        await checked(3)
        assert mailbox.messages == []
        set_time(clock_file, utc(2026, 11, 23, 1, 0, 30))  # 09:00:30 in Shanghai
        await eventually(lambda: _count(mailbox.messages, 1), timeout=30)
        await checked(5)
        assert len(mailbox.messages) == 1
        set_time(clock_file, utc(2026, 11, 23, 9, 0, 30))  # 09:00:30 in UTC
        await sink.wait_for("/slack", slack_before + 1, timeout=30)
        await checked(5)
        assert len(sink.at("/slack")) == slack_before + 1 and len(mailbox.messages) == 1
        _, rows = attachment(mailbox.messages[0][2])
        assert {r["customer_tier"]: r["tickets"] for r in rows} == {"gold": "2", "(none)": "1"}
        sent = [
            await scraped(url, "slawatch_notifier_reports_total", result="sent")
            for _, url, _ in processes
        ]
        assert sum(sent) == 3  # e-mail, Slack, DingTalk: once each, from either process
        for process, _, log_path in processes:
            process.terminate()
            assert process.wait(30) == 0, log_path.read_text()[-3000:]
    finally:
        for process, _, _ in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


async def test_a_failed_chat_delivery_is_retried_alone_and_a_refused_one_dead_lettered(
    settings, kafka_bootstrap, smtp_server, http_sink, tmp_path
) -> None:
    """Slack answers 503 once: retried when the lease runs out, the other integrations not
    sent again. DingTalk refuses for good (a bad signature): given up, dead-lettered."""
    mailbox, smtp_port = smtp_server
    sink, sink_url = http_sink
    sink.script("/slack").then(503, b"busy")
    sink.script("/dingtalk").always(200, {"errcode": 310000, "errmsg": "sign not match"})
    slack_before = len(sink.at("/slack"))
    dingtalk_before = len(sink.at("/dingtalk"))
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES.format(smtp_port=smtp_port, sink=sink_url))
    clock = SetClock(utc(2026, 11, 23, 9, 0, 30))  # both due (Shanghai's 8 h ago)
    settings = settings.model_copy(
        update={
            "notifier_report_lease_s": 10.0,
            "notifier_report_late_s": 86_400.0,
        }
    )
    async with notifier(settings, routes, clock) as (client, one):
        await sink.wait_for("/slack", slack_before + 1)
        await eventually(lambda: _count(mailbox.messages, 1))

        async def chat_rows() -> dict[str, dict]:
            return {e["integration"]: e for e in await log_rows(client, receiver="team-chat")}

        async def slack_failed() -> bool:
            rows = await chat_rows()
            return rows.get("slack", {}).get("status") == "failed" and rows.get("dingtalk", {}).get(
                "status"
            ) not in (None, "queued")

        await eventually(slack_failed)
        rows = await chat_rows()
        assert rows["slack"]["reason"].startswith("HTTP 503")
        assert rows["dingtalk"]["status"] == "dlq" and "310000" in rows["dingtalk"]["reason"]
        # After the lease (10 s of database time): Slack again, nothing else.
        await sink.wait_for("/slack", slack_before + 2, timeout=40)

        async def slack_sent() -> bool:
            return (await chat_rows())["slack"]["status"] == "sent"

        await eventually(slack_sent)
        await checks_done([one], 5)
        rows = await chat_rows()
        assert rows["slack"]["attempts"] == 2 and rows["dingtalk"]["attempts"] == 1
        assert len(sink.at("/dingtalk")) == dingtalk_before + 1
        assert len(sink.at("/slack")) == slack_before + 2 and len(mailbox.messages) == 1
    records = await read_topic(kafka_bootstrap, settings.topic_notifications_dlq, 1)
    letters = [json.loads(r.value) for r in records]
    assert [(d["kind"], d["receiver"], d["integration"]) for d in letters] == [
        ("report.compliance", "team-chat", "dingtalk")
    ]
    assert letters[0]["notification_id"] == "report:weekly:2026-11-16"
