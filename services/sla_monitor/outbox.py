"""Publish committed SLA records to Kafka: from memory after their commit, from the table
only to recover, then mark them sent per partition ("sent up to").

The worker hands each committed batch's records here (``enqueue``) with the highest
outbox seq its transaction wrote per partition; they are sent in order (acks=all) and the
partition's mark in ``sla_outbox_sent`` moves up to that seq, one statement per round
instead of an UPDATE per row. When a partition is assigned, the rows between its mark and
its highest seq were committed by a previous owner (or before a crash) but never acked:
they are read from the table, in seq order, before anything new of that partition.

A crash between the ack and the mark re-sends records on restart; they carry the engine's
deterministic ids, so the notifier recognises and drops the repeats.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from slawatch.services.sla_monitor.store import Store
from slawatch.shared.kafka import send_confirmed

log = logging.getLogger("slawatch.monitor.outbox")


@dataclass
class Chunk:
    """Committed records of one partition, in order, and the seq that marks them sent."""

    partition: int
    records: list[tuple[bytes, bytes]]  # (key, value)
    up_to: int


class OutboxDrainer:
    def __init__(
        self,
        store: Store,
        producer: AIOKafkaProducer,
        topic: str,
        on_sent: Callable[[int], None] | None = None,
        batch_size: int = 1000,
    ) -> None:
        self.store = store
        self.producer = producer
        self.topic = topic
        self.on_sent = on_sent
        self.batch_size = batch_size
        self.pending: dict[int, deque[Chunk]] = {}
        # Per partition being recovered: (sent up to, highest seq a previous owner wrote).
        self.recovering: dict[int, tuple[int, int]] = {}
        self.wake = asyncio.Event()
        self.stopping = False

    # ------------------------------------------------------------------ the worker's side
    def enqueue(self, partition: int, records: list[tuple[bytes, bytes]], up_to: int) -> None:
        """A committed batch's records of one partition (call in commit order)."""
        if records:
            self.pending.setdefault(partition, deque()).append(Chunk(partition, records, up_to))
            self.wake.set()

    def recover(self, partition: int, sent: int, written: int) -> None:
        """A newly owned partition: rows ``sent < seq <= written`` go out first."""
        self.pending.pop(partition, None)
        if written > sent:
            self.recovering[partition] = (sent, written)
            self.wake.set()
        else:
            self.recovering.pop(partition, None)

    def forget(self, partitions: Iterable[int]) -> None:
        """Revoked partitions: their new owner recovers what is unsent from the table."""
        for partition in partitions:
            self.pending.pop(partition, None)
            self.recovering.pop(partition, None)

    def backlog(self) -> int:
        return sum(len(c.records) for q in self.pending.values() for c in q)

    # ------------------------------------------------------------------ sending
    async def _recovered_chunk(self, partition: int) -> Chunk | None:
        sent, written = self.recovering[partition]
        rows = await self.store.unsent_outbox(partition, sent, written, self.batch_size)
        if not rows:
            return None
        return Chunk(
            partition,
            [(r["ticket_id"].encode(), bytes(r["payload"])) for r in rows],
            rows[-1]["seq"],
        )

    async def drain_once(self) -> int:
        """Send one round (a page per recovering partition, queued chunks up to the batch
        size); returns how many records were sent (0: nothing to do)."""
        taken: list[Chunk] = []
        count = 0
        for partition in list(self.recovering):
            chunk = await self._recovered_chunk(partition)
            if chunk is None:
                self.recovering.pop(partition, None)
            else:
                taken.append(chunk)
                count += len(chunk.records)
        for partition, queue in list(self.pending.items()):
            if partition in self.recovering:
                continue  # its older rows first
            for chunk in list(queue):
                if count >= self.batch_size and taken:
                    break
                taken.append(chunk)
                count += len(chunk.records)
        if not taken:
            return 0
        await send_confirmed(
            self.producer,
            self.topic,
            ((key, value, []) for chunk in taken for key, value in chunk.records),
        )
        up_to: dict[int, int] = {}
        for chunk in taken:
            up_to[chunk.partition] = max(chunk.up_to, up_to.get(chunk.partition, 0))
        await self.store.mark_sent(up_to)
        self._done(taken)
        if self.on_sent:
            self.on_sent(count)
        return count

    def _done(self, taken: Sequence[Chunk]) -> None:
        """Take sent chunks off their queues (a revocation may have dropped them meanwhile)."""
        for chunk in taken:
            if chunk.partition in self.recovering:
                sent, written = self.recovering[chunk.partition]
                if sent < chunk.up_to <= written:
                    self.recovering[chunk.partition] = (chunk.up_to, written)
                    if chunk.up_to >= written:
                        self.recovering.pop(chunk.partition)
                continue
            queue = self.pending.get(chunk.partition)
            if queue and queue[0] is chunk:
                queue.popleft()
                if not queue:
                    self.pending.pop(chunk.partition, None)

    async def drain(self) -> int:
        total = 0
        while sent := await self.drain_once():
            total += sent
        return total

    def stop(self) -> None:
        """Ask :meth:`run` to drain once more and return (never cut a round in half: rows
        sent but not yet marked would be sent again)."""
        self.stopping = True
        self.wake.set()

    async def run(self, idle_interval: float = 1.0) -> None:
        """Drain whenever woken (after each committed batch) and at least every interval;
        after :meth:`stop`, one last full drain, then return."""
        backoff = 0.5
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives just as the event is set, and stop() would then wait forever.
            try:
                async with asyncio.timeout(idle_interval):
                    await self.wake.wait()
            except TimeoutError:
                pass
            self.wake.clear()
            stopping = self.stopping
            try:
                await self.drain()
                backoff = 0.5
                if stopping:
                    return
            except (
                TimeoutError,
                KafkaError,
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
            ) as exc:
                log.warning("outbox drain failed, retrying in %.1fs: %s", backoff, exc)
                if stopping:
                    return  # what is left is sent by the partitions' next owner
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                self.wake.set()
