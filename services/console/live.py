"""Live updates: the console reads the SLA topic itself and pushes each SLA event to the
open boards over Server-Sent Events.

The monitor writes a ticket's state and its SLA events in one transaction and publishes
the events only after that commit, so when an event reaches a board the board's next
fetch already shows its effect. One consumer per console process (no consumer group: every
console sees every event), starting at the end of the topic; each browser connection has
a small queue, and a slow browser loses the oldest pending events rather than slowing the
others (it re-fetches the board anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from slawatch.shared.kafka import client_options
from slawatch.shared.settings import CommonSettings

log = logging.getLogger("slawatch.console")

SUMMARY_FIELDS = (
    "id",
    "kind",
    "ticket_id",
    "target",
    "cycle",
    "policy",
    "occurred_at",
    "level",
    "fraction",
    "customer_tier",
    "priority",
    "channel",
    "group",
    "assignee",
)
QUEUE_SIZE = 256


def summary(raw: bytes) -> dict[str, Any] | None:
    """What a board needs of an SLA event (None for a record that is not one)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or "kind" not in data or "ticket_id" not in data:
        return None
    return {k: data[k] for k in SUMMARY_FIELDS if data.get(k) is not None}


@dataclass
class LiveFeed:
    settings: CommonSettings
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=30))
    subscribers: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    consumer: AIOKafkaConsumer | None = None
    on_event: Callable[[], None] | None = None  # e.g. a metric's inc

    async def run(self) -> None:
        topic = self.settings.topic_sla
        self.consumer = AIOKafkaConsumer(
            **client_options(self.settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=50,
            isolation_level="read_uncommitted",
        )
        await self.consumer.start()
        try:
            partitions = None
            while not partitions:
                partitions = self.consumer.partitions_for_topic(topic)
                if not partitions:
                    await self.consumer._client.force_metadata_update()  # noqa: SLF001
                    await asyncio.sleep(1.0)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            self.consumer.assign(tps)
            await self.consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the end offsets now: events from here on are live
                await self.consumer.position(tp)
            self.ready.set()
            while True:
                batch = await self.consumer.getmany(timeout_ms=1000, max_records=1000)
                for records in batch.values():
                    for record in records:
                        event = summary(record.value)
                        if event is not None:
                            self.publish(event)
        finally:
            with contextlib.suppress(Exception):
                await self.consumer.stop()

    def publish(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event()
        self.recent.appendleft(event)
        for queue in self.subscribers:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(queue)
        try:
            yield queue
        finally:
            self.subscribers.discard(queue)

    def latest_alert(self, ticket_id: str, target: str, cycle: int) -> dict[str, Any] | None:
        """The newest warning/breach/escalation seen for one SLA clock (while running)."""
        for event in self.recent:
            if (
                event["ticket_id"] == ticket_id
                and event.get("target") == target
                and event.get("cycle", 0) == cycle
            ):
                return event
        return None
