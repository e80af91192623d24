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
loses, which their new owner restores.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from pydantic import ValidationError

from services.notifier.dispatcher import Dispatcher
from services.notifier.metrics import NotifierMetrics
from services.notifier.model import Status
from services.notifier.store import NotifierStore
from shared.failures import describe, is_data_error, is_outage, reason_label
from shared.kafka import send_confirmed
from shared.sla_events import SlaEvent, parse_sla_event

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
    return is_outage(exc) or isinstance(exc, (KafkaError, TimeoutError, OSError))


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


class _Listener(ConsumerRebalanceListener):
    def __init__(self, consumer: SlaConsumer) -> None:
        self.owner = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner.release([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.owner.adopt([tp.partition for tp in assigned])


class SlaConsumer:
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
        self.consumer = consumer
        self.producer = producer
        self.dispatcher = dispatcher
        self.store = store
        self.metrics = metrics
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.max_batch = max_batch
        self.owned: set[int] = set()
        self.ready = asyncio.Event()  # set once partitions were assigned and restored
        self.listener = _Listener(self)
        self.lock = asyncio.Lock()  # a batch and a rebalance never interleave
        self._backoff = 0.2
        self.stopping = False  # set by Notifier.stop: finish the batch in hand, then return

    # ------------------------------------------------------------ ownership

    async def adopt(self, partitions: Sequence[int]) -> None:
        fresh = sorted(set(partitions) - self.owned)
        async with self.lock:
            while fresh:
                try:
                    rows = await self.store.unfinished(fresh)
                    break
                except RETRYABLE as exc:
                    log.warning("loading queued notifications failed, retrying: %s", exc)
                    await asyncio.sleep(self._next_backoff())
            self._backoff = 0.2
            if fresh:
                queued = [n for n, status in rows if status is Status.queued]
                failed = [
                    (n, n.last_error or "gave up") for n, status in rows if status is Status.failed
                ]
                await self.dispatcher.restore(queued)
                if failed:
                    await self.dispatcher.dead_letter_again(failed)
                self.owned.update(fresh)
                log.info(
                    "partitions assigned: %s (%d queued notifications restored)",
                    fresh,
                    len(queued),
                )
        self.ready.set()

    async def release(self, partitions: Sequence[int]) -> None:
        gone = sorted(set(partitions) & self.owned)
        if not gone:
            return
        async with self.lock:
            dropped = await self.dispatcher.forget(gone)
            self.owned.difference_update(gone)
        log.info("partitions revoked: %s (%d queued notifications handed over)", gone, dropped)

    # ------------------------------------------------------------ consuming

    async def run(self) -> None:
        """Until stopped: consume, queue durably, commit. Returns only between batches."""
        while not self.stopping:
            batch = await self.consumer.getmany(timeout_ms=500, max_records=self.max_batch)
            for tp, records in batch.items():
                if records:
                    await self._handle(tp, records)

    async def _handle(self, tp: TopicPartition, records: list) -> None:
        events: list[SlaEvent] = []
        sources: list = []  # the record of each event, to dead-letter it if need be
        invalid: list[tuple[bytes | None, bytes | None, str, int]] = []
        for record in records:
            decoded = decode(record.value)
            if isinstance(decoded, str):
                invalid.append((record.key, record.value, decoded, record.offset))
            else:
                events.append(decoded)
                sources.append(record)
        async with self.lock:
            if tp.partition not in self.owned:
                # Fetched before its assignment finished restoring, or after a revocation:
                # read these again once we own the partition (or let its new owner read them).
                if tp in self.consumer.assignment():
                    self.consumer.seek(tp, records[0].offset)
                return
            refused = 0
            try:
                if invalid:
                    await self._dead_letter_records(tp, invalid)
                if events:
                    refused = await self._submit(tp, events, sources)
            except Exception as exc:
                if not is_retryable(exc):
                    # A bug: nothing was committed; fetch these again rather than skip them.
                    self.consumer.seek(tp, records[0].offset)
                    raise
                delay = self._next_backoff()
                log.warning(
                    "queueing notifications of partition %d failed (%s); re-reading from offset %d in %.1fs",
                    tp.partition,
                    exc,
                    records[0].offset,
                    delay,
                )
                self.consumer.seek(tp, records[0].offset)
                retry_in = delay
            else:
                retry_in = 0.0
                self._backoff = 0.2
                self.metrics.records.labels("ok").inc(len(events) - refused)
                self.metrics.records.labels("invalid").inc(len(invalid))
        if retry_in:  # waited out of the lock, so a rebalance is not held up
            await asyncio.sleep(retry_in)
            return
        # Outside the lock: a rebalance callback waiting for it must not wait on a commit.
        try:
            await self.consumer.commit({tp: records[-1].offset + 1})
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # A rebalance took the partition: its new owner re-reads from the last commit,
            # and the delivery log turns those records into no-ops.
            log.info("offset commit for partition %d skipped: %s", tp.partition, exc)

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
        refused: list[tuple[bytes | None, bytes | None, str, int]] = []
        for event, record in zip(events, sources, strict=True):
            try:
                await self.dispatcher.submit([event], shard=tp.partition)
            except Exception as exc:
                if is_retryable(exc):
                    raise
                stage = "store" if is_data_error(exc) else "routing"
                refused.append(
                    (record.key, record.value, f"{stage}: {describe(exc)}", record.offset)
                )
        if refused:
            await self._dead_letter_records(tp, refused)
        return len(refused)

    async def _dead_letter_records(
        self, tp: TopicPartition, invalid: list[tuple[bytes | None, bytes | None, str, int]]
    ) -> None:
        await send_confirmed(
            self.producer,
            self.dlq_topic,
            (
                (
                    key,
                    value if value is not None else b"",
                    [
                        ("slawatch-error", reason.encode()[:1000]),
                        ("slawatch-source-topic", self.topic.encode()),
                        ("slawatch-source-offset", f"{tp.partition}:{offset}".encode()),
                    ],
                )
                for key, value, reason, offset in invalid
            ),
        )
        for _key, _value, reason, offset in invalid:
            self.metrics.records_dead_lettered.labels(reason_label(reason)).inc()
            log.warning(
                "dead-lettered an invalid SLA-topic record at %d:%d: %s",
                tp.partition,
                offset,
                reason,
                extra={"topic": self.topic},
            )

    def _next_backoff(self) -> float:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, 10.0)
        return delay
