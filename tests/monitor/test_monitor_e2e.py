"""The monitor end to end: real broker, real PostgreSQL, real `slawatch monitor` processes.

Targets (tests/monitor/fast-policies.yaml): first response 4 s, warning at 50 % (2 s),
escalation level 1 two seconds after the breach (6 s).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from slawatch.services.database import migrate
from slawatch.services.dev.provision import Postgres
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.settings import CommonSettings
from tests.helpers import read_topic, topic_settings, wait_ready
from tests.monitor.harness import MonitorProcess, agent_reply, created, monitor_env, now, produce

pytestmark = pytest.mark.integration


@pytest.fixture
async def env(kafka_bootstrap: str, topic_prefix: str, fresh_database: str, tmp_path: Path):
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    return settings, monitor_env(settings, fresh_database), tmp_path


async def sla_events(settings: CommonSettings, expected: int, timeout: float = 30) -> list[dict]:
    records = await read_topic(
        settings.kafka_bootstrap, settings.topic_sla, expected, timeout=timeout
    )
    return [json.loads(r.value) for r in records]


def unreplied(ticket: str) -> set[str]:
    return {
        f"{ticket}/first_response/0/warning-50",
        f"{ticket}/first_response/0/breached",
        f"{ticket}/first_response/0/escalated-1",
    }


def replied_in_time(ticket: str) -> set[str]:
    return {f"{ticket}/first_response/0/met"}


async def wait_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - now()).total_seconds()))


async def test_sla_events_end_to_end(env) -> None:
    settings, monitor_vars, tmp = env
    monitor = MonitorProcess(monitor_vars, tmp / "monitor.log").start()
    try:
        await monitor.wait_ready()
        t0 = now()
        await produce(
            settings.kafka_bootstrap,
            settings.topic_events,
            [
                created("A", t0, customer_tier="gold"),
                agent_reply("A", t0 + timedelta(seconds=1)),
                created("B", t0, customer_tier="silver"),
                created("C", t0),
            ],
        )
        await wait_until(t0 + timedelta(seconds=4.5))
        await produce(settings.kafka_bootstrap, settings.topic_events, [agent_reply("C", now())])
        await wait_until(t0 + timedelta(seconds=7.5))
        expected = (
            replied_in_time("A")
            | unreplied("B")
            | {
                "C/first_response/0/warning-50",
                "C/first_response/0/breached",
                "C/first_response/0/met",
            }
        )
        events = await sla_events(settings, len(expected))
        by_id = {e["id"]: e for e in events}
        assert set(by_id) == expected, monitor.log()
        assert len(events) == len(by_id)  # nothing twice in a clean run
        breach = by_id["B/first_response/0/breached"]
        deadline = datetime.fromisoformat(breach["deadline"])
        assert abs((deadline - (t0 + timedelta(seconds=4))).total_seconds()) < 0.01
        assert breach["occurred_at"] == breach["deadline"]
        assert breach["customer_tier"] == "silver" and breach["policy"] == "fast"
        assert breach["detected_late"] is False
        assert by_id["C/first_response/0/met"]["breached"] is True
        assert by_id["A/first_response/0/met"]["breached"] is False
        assert by_id["B/first_response/0/escalated-1"]["level"] == 1
    finally:
        monitor.stop()


async def test_kill_9_mid_stream_loses_nothing(env) -> None:
    settings, monitor_vars, tmp = env
    monitor = MonitorProcess(monitor_vars, tmp / "monitor.log").start()
    try:
        await monitor.wait_ready()
        t0 = now()
        tickets = [f"K{i}" for i in range(30)]
        events = [created(t, t0) for t in tickets]
        events += [agent_reply(t, t0 + timedelta(seconds=1)) for t in tickets[::2]]
        await produce(settings.kafka_bootstrap, settings.topic_events, events)
        await wait_until(t0 + timedelta(seconds=3))  # warnings fired, breaches still to come
        monitor.kill()
        monitor = MonitorProcess(monitor_vars, tmp / "monitor2.log").start()
        await wait_until(t0 + timedelta(seconds=9))
        expected = set().union(
            *(replied_in_time(t) if i % 2 == 0 else unreplied(t) for i, t in enumerate(tickets))
        )
        got = await sla_events(settings, len(expected))
        ids = Counter(e["id"] for e in got)
        assert set(ids) == expected, monitor.log()
    finally:
        monitor.stop()


async def test_rebalance_survivor_takes_over(env) -> None:
    settings, monitor_vars, tmp = env
    first = MonitorProcess(monitor_vars, tmp / "m1.log").start()
    second = MonitorProcess(monitor_vars, tmp / "m2.log").start()
    try:
        await asyncio.gather(first.wait_ready(), second.wait_ready())
        t0 = now()
        tickets = [f"R{i}" for i in range(40)]
        await produce(
            settings.kafka_bootstrap, settings.topic_events, [created(t, t0) for t in tickets]
        )
        await asyncio.sleep(0.5)
        second.stop()
        await wait_until(t0 + timedelta(seconds=8))
        expected = set().union(*(unreplied(t) for t in tickets))
        got = {e["id"] for e in await sla_events(settings, len(expected), timeout=40)}
        assert got == expected, first.log()
    finally:
        first.stop()
        second.stop()


async def test_backlog_gives_no_false_breach_and_flags_late_ones(env) -> None:
    settings, monitor_vars, tmp = env
    monitor = MonitorProcess(
        {**monitor_vars, "SLAWATCH_MONITOR_MAX_BATCH": "3"}, tmp / "monitor.log"
    ).start()
    await monitor.wait_ready()
    monitor.stop()
    t0 = now()
    tickets = [f"L{i}" for i in range(10)]
    await produce(
        settings.kafka_bootstrap, settings.topic_events, [created(t, t0) for t in tickets]
    )
    await wait_until(t0 + timedelta(seconds=1))
    await produce(
        settings.kafka_bootstrap,
        settings.topic_events,
        [agent_reply(t, now()) for t in tickets[:5]],
    )
    await wait_until(
        t0 + timedelta(seconds=7)
    )  # every deadline has passed while the monitor was down
    monitor = MonitorProcess(
        {**monitor_vars, "SLAWATCH_MONITOR_MAX_BATCH": "3"}, tmp / "monitor2.log"
    ).start()
    try:
        expected = set().union(
            *(replied_in_time(t) for t in tickets[:5]), *(unreplied(t) for t in tickets[5:])
        )
        got = await sla_events(settings, len(expected))
        by_id = {e["id"]: e for e in got}
        assert set(by_id) == expected, monitor.log()
        for ticket in tickets[5:]:
            breach = by_id[f"{ticket}/first_response/0/breached"]
            assert breach["detected_late"] is True
            assert (
                abs(
                    (
                        datetime.fromisoformat(breach["deadline"]) - (t0 + timedelta(seconds=4))
                    ).total_seconds()
                )
                < 0.01
            )
    finally:
        monitor.stop()


async def test_poison_messages_go_to_the_dead_letter_topic(env) -> None:
    settings, monitor_vars, tmp = env
    monitor = MonitorProcess(monitor_vars, tmp / "monitor.log").start()
    try:
        await monitor.wait_ready()
        t0 = now()
        await produce(
            settings.kafka_bootstrap,
            settings.topic_events,
            [
                b"\xff\xfe not json",
                b'{"type": "ticket.created", "ticket_id": "P0"}',
                created("P1", t0),
            ],
        )
        dead = await read_topic(settings.kafka_bootstrap, settings.topic_events_dlq, 2)
        assert len(dead) == 2
        reasons = sorted(dict(r.headers)["slawatch-error"].decode() for r in dead)
        assert (
            reasons[0].startswith("invalid:")
            and reasons[1].startswith("undecodable:")
            or reasons[0].startswith("invalid:")
            and reasons[1].startswith("invalid:")
        ), reasons
        got = {e["id"] for e in await sla_events(settings, 1)}
        assert "P1/first_response/0/warning-50" in got  # the stream went on
    finally:
        monitor.stop()


async def test_database_outage_pauses_and_loses_nothing(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    directory = Path(tempfile.mkdtemp(prefix="slawatch-pg-outage-"))
    directory.chmod(0o755)
    server = Postgres(directory=directory).start()
    url = server.url
    monitor = None
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        monitor = MonitorProcess(monitor_env(settings, url), tmp_path / "monitor.log").start()
        await monitor.wait_ready()
        server.stop()
        t0 = now()
        await produce(
            kafka_bootstrap, settings.topic_events, [created("D1", t0), created("D2", t0)]
        )
        # Not ready while the database is away (the worker's failures, or the ping).
        async with httpx.AsyncClient(base_url=monitor.url, timeout=5) as client:
            answer = await wait_ready(
                monitor.url + "/readyz",
                "monitor reporting the outage",
                timeout=20,
                expect=lambda r: r.status_code == 503,
                process=monitor.process,
                log_path=monitor.log_path,
            )
            assert answer.json()["status"] == "database failing", answer.text
            await asyncio.sleep(1)
            assert monitor.process is not None  # started
            assert monitor.process.poll() is None, monitor.log()  # paused, not crashed
            server = Postgres(directory=directory).start()
            await monitor.wait_ready()  # ready again once the database is back
            assert (await client.get("/readyz")).json()["status"] == "ready"
        expected = unreplied("D1") | unreplied("D2")
        got = {e["id"] for e in await sla_events(settings, len(expected), timeout=40)}
        assert got == expected, monitor.log()
        assert "database unavailable" in monitor.log()
    finally:
        if monitor:
            monitor.stop()
        server.stop()
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
