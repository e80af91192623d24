"""Drain the SLA-event outbox to Kafka: send, wait for acks=all, then mark sent.

A crash between the ack and the mark re-sends rows on restart; they carry the engine's
deterministic ids, so the notifier recognises and drops the repeats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from slawatch.services.sla_monitor.store import Store
from slawatch.shared.kafka import send_confirmed

log = logging.getLogger("slawatch.monitor.outbox")


class OutboxDrainer:
    def __init__(
        self,
        store: Store,
        producer: AIOKafkaProducer,
        topic: str,
        owned_partitions: Callable[[], Collection[int]],
        on_sent: Callable[[int], None] | None = None,
        batch_size: int = 1000,
    ) -> None:
        self.store = store
        self.producer = producer
        self.topic = topic
        self.owned_partitions = owned_partitions
        self.on_sent = on_sent
        self.batch_size = batch_size
        self.wake = asyncio.Event()
        self.stopping = False

    async def drain_once(self) -> int:
        """Send one page of unsent rows; returns how many were sent (0: nothing to do)."""
        partitions = list(self.owned_partitions())
        if not partitions:
            return 0
        rows = await self.store.unsent_outbox(partitions, self.batch_size)
        if not rows:
            return 0
        await send_confirmed(
            self.producer,
            self.topic,
            ((row["ticket_id"].encode(), row["payload"].encode(), []) for row in rows),
        )
        await self.store.mark_sent([row["seq"] for row in rows])
        if self.on_sent:
            self.on_sent(len(rows))
        return len(rows)

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
