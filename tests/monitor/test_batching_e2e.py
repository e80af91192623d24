"""One deadline per target cycle, whatever the batching, end to end (issue 10, item 4).

The same ticket is posted twice to the real broker and consumed by a real `slawatch
monitor` with a real PostgreSQL: once in one go (one monitor batch), once event by event,
waiting each time until the monitor has applied it and its timers have fired, so every
event is applied in a batch of its own after the SLA events it changes were published.
A consumer of the SLA topic must end up holding the same breaches and escalations for
both: same deadlines, instants and policies (ids differ only by revision suffix).

The events are dated in the past, so every threshold is already due when an event is
applied: what the timer fires between two batches is exactly what the next event changes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from slawatch.services.database import migrate
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.settings import CommonSettings
from tests.engine.helpers import Downstream
from tests.helpers import topic_settings
from tests.monitor.harness import MonitorProcess, monitor_env, now, produce

pytestmark = pytest.mark.integration

# relaxed applies at creation (priority normal); the update to urgent re-selects strict,
# whose first response was due long before the update arrives.
POLICIES = """
version: 1
calendars:
  always: {timezone: UTC, always_open: true}
pause_statuses: [pending, on_hold]
policies:
  - id: strict
    match: {priority: [urgent]}
    calendar: always
    targets: {first_response: 6s, resolution: 3600s}
    escalations: [0s, 3s]
    pause_first_response: true
  - id: relaxed
    match: {}
    calendar: always
    targets: {first_response: 12s, resolution: 3600s}
    warn_at: [0.5]
    escalations: [2s]
"""


def ticket_events(ticket: str, t0: datetime) -> list[dict]:
    def event(name: str, seconds: int, kind: str, data: dict) -> dict:
        return {
            "event_id": f"{ticket}-{name}",
            "type": kind,
            "ticket_id": ticket,
            "occurred_at": (t0 + timedelta(seconds=seconds)).isoformat(),
            "channel": "chat",
            "data": data,
        }

    return [
        event("created", 0, "ticket.created", {"priority": "normal"}),
        event("urgent", 4, "ticket.updated", {"priority": "urgent"}),
        event("pending", 7, "ticket.status_changed", {"status": "pending"}),
        event("open", 10, "ticket.status_changed", {"status": "open"}),
        event("reply", 20, "message.created", {"author_role": "agent", "public": True}),
    ]


class SlaTopic:
    """Every record of the SLA topic, from the beginning, read as they come."""

    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self.events: list[dict] = []
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    async def __aenter__(self) -> SlaTopic:
        await self.consumer.start()
        partitions = self.consumer.partitions_for_topic(self.settings.topic_sla)
        for _ in range(100):
            if partitions:
                break
            await self.consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
            partitions = self.consumer.partitions_for_topic(self.settings.topic_sla)
            await asyncio.sleep(0.1)
        assert partitions, f"topic {self.settings.topic_sla} does not exist"
        tps = [TopicPartition(self.settings.topic_sla, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def poll(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                self.events.extend(json.loads(r.value) for r in records)

    async def until(self, holds: Callable[[set[str]], bool], what: str, log: Callable[[], str]) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while not holds({e["id"] for e in self.events}):
            assert loop.time() < end, f"timed out waiting for {what}; got {[e['id'] for e in self.events]}\n{log()}"
            await self.poll(0.2)

    def of(self, ticket: str) -> list[dict]:
        return [e for e in self.events if e["ticket_id"] == ticket]


@pytest.fixture
async def env(kafka_bootstrap: str, topic_prefix: str, fresh_database: str, tmp_path: Path):
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(POLICIES)
    return settings, monitor_env(settings, fresh_database, policy_file=policy_file), tmp_path


def held(events: list[dict], ticket: str) -> list[tuple]:
    """The breaches and escalations a consumer ends up holding, ticket id left out."""
    return [(*row[:-1], row[-1].removeprefix(f"{ticket}/")) for row in Downstream().read(events).standing()]


async def test_one_batch_and_event_by_event_end_in_the_same_standing_breaches(env) -> None:
    settings, monitor_vars, tmp = env
    monitor = MonitorProcess(monitor_vars, tmp / "monitor.log").start()
    try:
        await monitor.wait_ready()
        t0 = (now() - timedelta(seconds=40)).replace(microsecond=0)
        together, apart = ticket_events("A", t0), ticket_events("B", t0)
        async with SlaTopic(settings) as topic:
            await produce(settings.kafka_bootstrap, settings.topic_events, together)
            # B alone: the timer breaches and escalates it under relaxed before the update.
            await produce(settings.kafka_bootstrap, settings.topic_events, apart[:1])
            await topic.until(
                lambda ids: {"B/first_response/0/breached", "B/first_response/0/escalated-1"} <= ids,
                "B's breach under the first policy",
                monitor.log,
            )
            # The update re-selects strict: due 6 s after creation, escalation 2 at 9 s.
            await produce(settings.kafka_bootstrap, settings.topic_events, apart[1:2])
            await topic.until(
                lambda ids: "B/first_response/0/escalated-2.r1" in ids, "B's re-selection", monitor.log
            )
            # The pause (after the breach) moves escalation level 2; the rest one by one.
            for event in apart[2:]:
                await produce(settings.kafka_bootstrap, settings.topic_events, [event])
                await topic.poll(1.0)
            await topic.until(
                lambda ids: {"A/first_response/0/met", "B/first_response/0/met"} <= ids,
                "both replies",
                monitor.log,
            )
            await topic.poll(1.5)  # anything still on its way
        one, split = held(topic.of("A"), "A"), held(topic.of("B"), "B")
        assert split == one, monitor.log()

        def at(seconds: int) -> str:
            return (t0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

        # The true standing breach: strict, due 6 s after creation; level 1 at the breach,
        # level 2 three seconds of running clock after it (paused from 7 s to 10 s).
        assert [row[:7] for row in one] == [
            ("sla.breached", "first_response", 0, 0, at(6), at(6), "strict"),
            ("sla.escalated", "first_response", 0, 1, at(6), at(6), "strict"),
            ("sla.escalated", "first_response", 0, 2, at(6), at(12), "strict"),
        ]
        # Event by event, the monitor published and then withdrew what the next event changed.
        withdrawn = {e["retracts"] for e in topic.of("B") if e["kind"] == "sla.retracted"}
        assert {"B/first_response/0/breached", "B/first_response/0/escalated-2.r1"} <= withdrawn
        assert not [e for e in topic.of("A") if e["kind"] == "sla.retracted"]
        for ticket in ("A", "B"):
            met = next(e for e in topic.of(ticket) if e["kind"] == "sla.met")
            assert met["breached"] is True and met["deadline"] == at(6) and met["policy"] == "strict"
    finally:
        monitor.stop()
