"""Store and outbox against the real database and broker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from slawatch.services.database import migrate
from slawatch.services.sla_monitor.outbox import OutboxDrainer
from slawatch.services.sla_monitor.store import (
    BatchWrite,
    OutboxRow,
    RetainedEvent,
    Store,
    TicketRow,
)
from slawatch.shared.kafka import ensure_topics, make_producer
from slawatch.shared.settings import CommonSettings
from tests.helpers import read_topic, topic_settings

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(fresh_database: str):
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    store = await Store.connect(fresh_database)
    yield store
    await store.close()


def batch(n: int, partition: int, offset: int) -> BatchWrite:
    write = BatchWrite()
    for i in range(n):
        tid = f"T{partition}-{i}"
        write.tickets[tid] = TicketRow(
            tid, partition, b"\x01state" + bytes([i]), NOW + timedelta(minutes=i), i % 2 == 0
        )
        write.retained.append(RetainedEvent(tid, f"e{i}", NOW, json.dumps({"event_id": f"e{i}"})))
        write.outbox.append(
            OutboxRow(
                f"{tid}/first_response/0/breached",
                tid,
                partition,
                json.dumps({"id": f"{tid}/x", "n": i}).encode(),
            )
        )
    write.offsets[("events", partition)] = offset
    return write


async def test_batch_write_is_one_transaction_and_upserts(store: Store) -> None:
    await store.write(batch(5, 0, 10))
    await store.write(batch(5, 0, 20))  # same tickets again: upsert, retained dedup, offsets move
    assert await store.offsets("events", [0, 1]) == {0: 20}
    open_rows = await store.load_open_tickets([0])
    assert sorted(r.ticket_id for r in open_rows) == ["T0-0", "T0-2", "T0-4"]
    assert (await store.ticket_states(["T0-1"]))["T0-1"] == b"\x01state\x01"
    assert len(await store.retained_events("T0-1")) == 1
    assert len(await store.unsent_outbox([0], 100)) == 10
    assert await store.unsent_outbox([1], 100) == []

    broken = batch(1, 1, 99)
    broken.outbox.append(OutboxRow("x", "T1-0", 1, b"not json"))
    with pytest.raises(Exception):  # noqa: B017 - any database error will do
        await store.write(broken)
    assert await store.offsets("events", [1]) == {}  # nothing of the failed batch is stored
    assert await store.ticket_states(["T1-0"]) == {}


async def test_drainer_sends_owned_rows_then_marks_them(
    store: Store, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await store.write(batch(3, 0, 1))
    await store.write(batch(2, 1, 1))
    producer = make_producer(settings)
    await producer.start()
    sent: list[int] = []
    try:
        drainer = OutboxDrainer(
            store, producer, settings.topic_sla, lambda: [0], on_sent=sent.append
        )
        assert await drainer.drain() == 3
        assert await drainer.drain() == 0
        records = await read_topic(kafka_bootstrap, settings.topic_sla, 3)
        assert sorted(r.key for r in records) == [b"T0-0", b"T0-1", b"T0-2"]
        assert json.loads(records[0].value)["id"].startswith("T0-")
        assert len(await store.unsent_outbox([1], 10)) == 2  # not ours: left for its owner
        assert sent == [3]
    finally:
        await producer.stop()
