"""Publishing validated events to Kafka, acknowledged only once the broker acked them all.

The producer is (re)started lazily: ingest must come up and answer 503 while the broker is
away, and recover by itself when it is back, rather than crash-loop at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from slawatch.services.ingest.settings import IngestSettings
from slawatch.shared.kafka import make_producer

log = logging.getLogger("slawatch.ingest.publisher")
_PARTITIONER = DefaultPartitioner()
_OWN_BATCH_FROM = 32  # records (of a request, and of one partition) sent as a batch of their own


class BrokerUnavailable(Exception):
    """The broker did not ack in time; nothing of the request may be considered accepted."""


class Publisher:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.topic = settings.topic_events
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def _ready_producer(self, timeout: float) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is None:
                producer = make_producer(self.settings)
                try:
                    await asyncio.wait_for(producer.start(), timeout)
                except (TimeoutError, KafkaError, OSError) as exc:
                    await _quiet_stop(producer)
                    raise BrokerUnavailable(f"broker not reachable: {type(exc).__name__}") from None
                self._producer = producer
        return self._producer

    async def publish(self, records: Sequence[tuple[bytes, bytes]]) -> float:
        """Send (key, value) records; return once every one is acked, else raise.

        Small requests (the webhook case: one event) go through ``send``, whose record
        lands in the batch the producer is filling for that partition, so concurrent
        requests share produce requests. Requests with many records for one partition
        (grouped with the producer's own partitioner, so a ticket lands where a plain
        ``send`` would put it) go as record batches of their own: one future per batch
        instead of one per event, which halves the producer's per-event cost.
        All sends are issued before the first ack is awaited, so a request waits for one
        round of produce requests, never one per record.
        Returns the seconds from first send to last ack.
        """
        timeout = self.settings.ingest_publish_timeout_s
        started = time.perf_counter()
        producer = await self._ready_producer(timeout)
        pending: list[asyncio.Future] = []
        try:
            async with asyncio.timeout(timeout):
                if len(records) < _OWN_BATCH_FROM:
                    for key, value in records:
                        pending.append(await producer.send(self.topic, value, key=key))
                else:
                    await self._send_grouped(producer, records, pending)
                await asyncio.gather(*pending)
        except (TimeoutError, KafkaError, OSError) as exc:
            for future in pending:
                future.cancel()
            raise BrokerUnavailable(f"broker did not ack: {type(exc).__name__}") from None
        return time.perf_counter() - started

    async def _send_grouped(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[tuple[bytes, bytes]],
        pending: list[asyncio.Future],
    ) -> None:
        partitions = sorted(await producer.partitions_for(self.topic))
        by_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for key, value in records:
            by_partition[_PARTITIONER(key, partitions, partitions)].append((key, value))
        for partition, items in by_partition.items():
            if len(items) < _OWN_BATCH_FROM:
                # Small groups coalesce with other requests' records in the open batch.
                for key, value in items:
                    pending.append(
                        await producer.send(self.topic, value, key=key, partition=partition)
                    )
                continue
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    pending.append(
                        await producer.send_batch(batch, self.topic, partition=partition)
                    )
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            pending.append(await producer.send_batch(batch, self.topic, partition=partition))

    async def start(self) -> None:
        """Best effort at boot: a broker that is down now must not stop the service."""
        try:
            await self._ready_producer(self.settings.ingest_publish_timeout_s)
        except BrokerUnavailable as exc:
            log.warning("starting without a broker connection; will retry on demand: %s", exc)

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quiet_stop(producer)


async def _quiet_stop(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 5)
    except Exception:  # noqa: BLE001 - a half-started producer may fail to stop; it holds nothing
        log.debug("producer stop failed", exc_info=True)
