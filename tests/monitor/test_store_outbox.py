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
    # Nothing marked sent yet: every row of partition 0 waits, none of partition 1.
    assert await store.outbox_marks([0, 1]) == {0: (0, 10), 1: (0, 0)}
    rows = await store.unsent_outbox(0, 0, 10, 100)
    assert [bytes(r["payload"]) for r in rows[:1]] == [
        json.dumps({"id": "T0-0/x", "n": 0}).encode()
    ]
    await store.mark_sent({0: 4})
    await store.mark_sent({0: 3})  # a mark never moves backwards
    assert await store.outbox_marks([0]) == {0: (4, 10)}

    broken = batch(1, 1, 99)
    broken.outbox.append(OutboxRow("x" * 600, "T1-0", 1, b"{}"))  # id over 512 characters
    with pytest.raises(Exception):  # noqa: B017 - any database error will do
        await store.write(broken)
    assert await store.offsets("events", [1]) == {}  # nothing of the failed batch is stored
    assert await store.ticket_states(["T1-0"]) == {}


async def test_drainer_recovers_unsent_rows_first_then_sends_from_memory(
    store: Store, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    left = batch(3, 0, 1)  # committed by a previous owner, never sent
    await store.write(left)
    await store.write(batch(2, 1, 1))  # another partition's: not ours
    producer = make_producer(settings)
    await producer.start()
    sent: list[int] = []
    try:
        drainer = OutboxDrainer(store, producer, settings.topic_sla, on_sent=sent.append)
        for partition, (done, written) in (await store.outbox_marks([0])).items():
            drainer.recover(partition, done, written)
        fresh = batch(1, 0, 2)
        fresh.tickets.clear()
        fresh.outbox[0].payload = b'{"id": "new"}'
        await store.write(fresh)
        drainer.enqueue(0, [(b"T0-new", b'{"id": "new"}')], fresh.outbox_up_to[0])
        # The recovered rows go first (a round of their own), then the new one from memory.
        assert await drainer.drain_once() == 3
        assert await drainer.drain_once() == 1
        assert await drainer.drain() == 0
        records = await read_topic(kafka_bootstrap, settings.topic_sla, 4)
        assert sorted(r.key for r in records) == [b"T0-0", b"T0-1", b"T0-2", b"T0-new"]
        assert {r.value for r in records if r.key == b"T0-new"} == {b'{"id": "new"}'}
        assert (await store.outbox_marks([0, 1])) == {0: (6, 6), 1: (0, 5)}
        assert sum(sent) == 4
    finally:
        await producer.stop()
