"""SIGTERM stops a real `slawatch monitor` gracefully, mid-stream: exit status 0,
(SIGINT takes the same path: tests/ingest/test_shutdown.py sends it), the batch in hand committed, the outbox drained, the consumer group left (so a restart
gets its partitions at once); after the restart every SLA event is there exactly once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from slawatch.services.database import migrate
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.settings import CommonSettings
from tests.helpers import read_topic, topic_settings
from tests.monitor.harness import MonitorProcess, created, monitor_env, now, produce

pytestmark = pytest.mark.integration


async def group_members(bootstrap: str, group: str) -> list:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [description] = await admin.describe_consumer_groups([group])
        # DescribeGroupsResponse: groups[0] = (error, group, state, protocol_type, protocol, members, ...)
        return list(description.groups[0][5])
    finally:
        await admin.close()


async def test_sigterm_mid_stream_stops_cleanly_and_loses_nothing(
    kafka_bootstrap: str, topic_prefix: str, fresh_database: str, tmp_path: Path
) -> None:
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    env = monitor_env(settings, fresh_database, SLAWATCH_MONITOR_MAX_BATCH="20")
    group = env["SLAWATCH_MONITOR_GROUP_ID"]
    monitor = MonitorProcess(env, tmp_path / "first.log").start()
    try:
        await monitor.wait_ready()
        t0 = now()
        tickets = [f"G{i:03d}" for i in range(150)]

        async def stream() -> None:
            for start in range(0, len(tickets), 15):
                chunk = tickets[start : start + 15]
                await produce(
                    kafka_bootstrap, settings.topic_events, [created(t, t0) for t in chunk]
                )
                await asyncio.sleep(0.1)

        producing = asyncio.create_task(stream())
        await asyncio.sleep(0.4)  # some batches applied, more arriving
        assert monitor.process is not None
        monitor.process.send_signal(signal.SIGTERM)
        status = await asyncio.to_thread(monitor.process.wait, 30)
        assert status == 0, monitor.log()
        assert "stopped cleanly" in monitor.log(), monitor.log()
        await producing
        # It left the group: its restart does not wait for its own ghost to time out.
        assert await group_members(kafka_bootstrap, group) == []

        restarted = time.monotonic()
        monitor = MonitorProcess(env, tmp_path / "second.log").start()
        await monitor.wait_ready()
        print(f"restart to ready: {time.monotonic() - restarted:.2f}s")

        expected = {
            f"{t}/first_response/0/{kind}"
            for t in tickets
            for kind in ("warning-50", "breached", "escalated-1")
        }
        deadline = t0 + timedelta(seconds=40)
        while True:
            await asyncio.sleep(max(0.0, (t0 + timedelta(seconds=6.5) - now()).total_seconds()))
            records = await read_topic(
                kafka_bootstrap, settings.topic_sla, len(expected), timeout=10
            )
            ids = Counter(json.loads(r.value)["id"] for r in records)
            if set(ids) >= expected or now() > deadline:
                break
        assert set(ids) == expected, (len(set(ids)), len(expected), monitor.log())
        # Graceful means the outbox was drained and marked: nothing was sent twice.
        assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1][:5]
        assert monitor.terminate() == 0, monitor.log()
    finally:
        monitor.stop()
