"""A fresh start applies every event once (issue 16, item 4).

Before the fix, a monitor started on a topic that already held records applied its first
batch twice: the consumer fetched from its own reset to the beginning while the
partitions were still loading, and the load's seek to the stored (here: the first)
offset had the same records fetched again. The engine dropped the repeats as duplicates,
but ``events_applied_total`` over-counted and every repeated event was retained twice.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from slawatch.services.database import migrate
from slawatch.shared.db import asyncpg_dsn
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.settings import CommonSettings
from tests.helpers import topic_settings
from tests.monitor.harness import MonitorProcess, agent_reply, created, monitor_env, now, produce

pytestmark = pytest.mark.integration

TICKETS = 600  # 3 events each: several batches of 500 across the partitions


def metric(text: str, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


async def test_a_fresh_start_applies_and_retains_every_event_once(
    kafka_bootstrap: str, topic_prefix: str, fresh_database: str, tmp_path: Path
) -> None:
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    t0 = now() - timedelta(hours=1)
    events = []
    for n in range(TICKETS):
        ticket = f"F{n}"
        events += [
            created(ticket, t0),
            agent_reply(ticket, t0 + timedelta(seconds=1), 1),
            agent_reply(ticket, t0 + timedelta(seconds=2), 2),
        ]
    # Every record is in the topic before the monitor starts: its first poll races the load.
    await produce(kafka_bootstrap, settings.topic_events, events)
    monitor = MonitorProcess(
        monitor_env(settings, fresh_database, SLAWATCH_MONITOR_MAX_BATCH="500"),
        tmp_path / "monitor.log",
    ).start()
    try:
        await monitor.wait_ready(timeout=90)
        async with httpx.AsyncClient(base_url=monitor.url, timeout=5) as client:
            loop = asyncio.get_running_loop()
            end = loop.time() + 60
            while True:
                text = (await client.get("/metrics")).text
                applied = metric(text, "slawatch_monitor_events_applied_total")
                if applied >= len(events) or loop.time() > end:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # anything applied twice would be counted by now
            text = (await client.get("/metrics")).text
        assert metric(text, "slawatch_monitor_events_applied_total") == len(events), monitor.log()
        assert metric(text, "slawatch_monitor_events_duplicate_total") == 0, monitor.log()
        conn = await asyncpg.connect(asyncpg_dsn(fresh_database))
        try:
            rows = await conn.fetchval("SELECT count(*) FROM retained_events")
            distinct = await conn.fetchval("SELECT count(DISTINCT event_id) FROM retained_events")
            offsets = await conn.fetchval("SELECT sum(next_offset) FROM partition_offsets")
        finally:
            await conn.close()
        assert distinct == len(events)
        assert rows == distinct  # each event retained once
        assert offsets == len(events)
    finally:
        monitor.stop()
