"""The notifier's consumer: SLA-topic records in, durably queued notices out, then commit.

Per partition of a fetched batch: decode the records, dead-letter the undecodable ones,
hand the rest to :meth:`Dispatcher.submit` (which writes every notice to the delivery
log), and only then commit the partition's offset. A crash anywhere re-reads records whose
notices are already logged; the log's key makes that a no-op, so nothing is sent twice
and nothing is lost.

One record cannot stop the stream: when queueing an event's notices fails for that
event's sake (the database refuses its values, routing raises), the batch is retried
event by event and the failing ones are dead-lettered with the reason; only an outage
(database or broker unreachable) re-reads the batch with backoff.

Partitions are the unit of ownership: a notifier restores the unfinished notices of the
partitions it is assigned, and forgets (without touching the log) those of partitions it
loses, which their new owner restores. The loop, the rebalance lock, the backoff, the
dead-letter headers and the commit are the shared runtime's (shared/consumer.py).
"""

from __future__ import annotations

import logging

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from slawatch.services.notifier.dispatcher import Dispatcher
from slawatch.services.notifier.metrics import NotifierMetrics
from slawatch.services.notifier.model import Status
from slawatch.services.notifier.store import NotifierStore
from slawatch.shared.consumer import (
    Batches,
    DeadLetter,
    DeadLetterFailed,
    PartitionedConsumer,
    Round,
)
from slawatch.shared.failures import describe, is_data_error, is_outage
from slawatch.shared.sla_events import SlaEvent, parse_sla_event

log = logging.getLogger("slawatch.notifier")

RETRYABLE = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
    KafkaError,
)


def is_retryable(exc: BaseException) -> bool:
    """An outage of the database or the broker: re-read later. Anything else is about the
    records in hand (a data error, a routing failure): isolate them."""
    return is_outage(exc) or isinstance(exc, (KafkaError, TimeoutError, OSError, DeadLetterFailed))


def decode(value: bytes | None) -> SlaEvent | str:
    """The SLA event, or why the record is not one (safe to log: no payload echoed)."""
    if value is None:
        return "undecodable record: empty"
    try:
        return parse_sla_event(value)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        return f"invalid SLA event: {where}: {first['msg']}"
    except (UnicodeDecodeError, ValueError) as exc:
        return f"undecodable record: {type(exc).__name__}"


class SlaConsumer(PartitionedConsumer):
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        dispatcher: Dispatcher,
        store: NotifierStore,
        metrics: NotifierMetrics,
        *,
        topic: str,
        dlq_topic: str,
        max_batch: int = 500,
    ) -> None:
        super().__init__(
            consumer,
            producer,
            topic=topic,
            dlq_topic=dlq_topic,
            max_batch=max_batch,
            dead_lettered=metrics.records_dead_lettered,
            log=log,
        )
        self.dispatcher = dispatcher
        self.store = store
        self.metrics = metrics
        self.ready = self.assigned_once  # ready once partitions were assigned and restored

    # ------------------------------------------------------------ ownership

    async def load(self, partitions: list[int]) -> None:
        while True:
            try:
                rows = await self.store.unfinished(partitions)
                break
            except RETRYABLE as exc:
                await self.wait_out("loading queued notifications", exc)
        self.recovered()
        queued = [n for n, status in rows if status is Status.queued]
        failed = [(n, n.last_error or "gave up") for n, status in rows if status is Status.failed]
        await self.dispatcher.restore(queued)
        if failed:
            await self.dispatcher.dead_letter_again(failed)
        log.info(
            "partitions assigned: %s (%d queued notifications restored)", partitions, len(queued)
        )

    async def drop(self, partitions: list[int]) -> None:
        dropped = await self.dispatcher.forget(partitions)
        log.info(
            "partitions revoked: %s (%d queued notifications handed over)", partitions, dropped
        )

    # ------------------------------------------------------------ consuming

    async def process(self, batches: Batches, done: Round) -> None:
        for tp, records in batches.items():
            await self._handle(tp, records, done)

    async def _handle(self, tp: TopicPartition, records, done: Round) -> None:
        events: list[SlaEvent] = []
        sources: list = []  # the record of each event, to dead-letter it if need be
        invalid: list[DeadLetter] = []
        for record in records:
            decoded = decode(record.value)
            if isinstance(decoded, str):
                invalid.append(DeadLetter.of(record, decoded))
            else:
                events.append(decoded)
                sources.append(record)
        try:
            await self.dead_letter(invalid)
            refused = await self._submit(tp, events, sources) if events else 0
        except Exception as exc:
            if not is_retryable(exc):
                raise  # a bug: the runtime seeks back, nothing was committed
            self.consumer.seek(tp, records[0].offset)
            done.retry_later(
                f"queueing notifications of partition {tp.partition} from offset {records[0].offset}",
                exc,
            )
            return
        self.recovered()
        self.metrics.records.labels("ok").inc(len(events) - refused)
        self.metrics.records.labels("invalid").inc(len(invalid))
        done.commit[tp] = records[-1].offset + 1

    async def _submit(self, tp: TopicPartition, events: list[SlaEvent], sources: list) -> int:
        """Queue the events' notices; returns how many events were dead-lettered instead.

        One call for the batch; if it fails for the data's sake, one call per event (the
        delivery log makes a repeat of what already went in a no-op) and the events that
        still fail go to the dead-letter topic. An outage raises (the caller re-reads).
        """
        try:
            await self.dispatcher.submit(events, shard=tp.partition)
            return 0
        except Exception as exc:
            if is_retryable(exc):
                raise
            log.warning(
                "queueing a batch of partition %d failed (%s); retrying event by event",
                tp.partition,
                describe(exc),
            )
        refused: list[DeadLetter] = []
        for event, record in zip(events, sources, strict=True):
            try:
                await self.dispatcher.submit([event], shard=tp.partition)
            except Exception as exc:
                if is_retryable(exc):
                    raise
                stage = "store" if is_data_error(exc) else "routing"
                refused.append(DeadLetter.of(record, f"{stage}: {describe(exc)}"))
        await self.dead_letter(refused)
        return len(refused)
