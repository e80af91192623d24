"""The partitioned-consumer runtime: what the monitor and the notifier share about consuming a
Kafka topic partition by partition.

Both services own partitions (a partition's tickets, or a partition's queued notices),
hold state for them in memory, and must never let a rebalance hand a partition over in
the middle of a batch. So this runtime owns, once for both:

- the rebalance listener and the lock: a batch and a rebalance never interleave, so a
  partition changes hands only between two processed rounds;
- loading state on assignment and dropping it on revocation (the services' ``load`` and
  ``drop``), and skipping - re-reading later - records of partitions not owned (fetched
  before the assignment finished loading, or after a revocation), and records fetched
  before their partition was (re)loaded: the load sought the partition to its stored
  offset, so they come again from there (applying them too applied a fresh start's first
  batch twice);
- backoff on database or broker trouble: the round that hit an outage is re-read after a
  wait that doubles up to 10 s, waited *outside* the lock so a rebalance is not held up;
- dead-lettering with one header convention: ``slawatch-error`` (why; its first word is
  the reason label of shared/failures.py), ``slawatch-source-topic`` and
  ``slawatch-source-offset`` (``partition:offset``), acknowledged before anything past the
  record is committed;
- commit-after-durable: a service reports which offsets its round made durable, and
  only those are committed to Kafka, after the lock is released; a commit refused by a
  rebalance is harmless (the new owner re-reads, and both services make a repeat a no-op).
  A service that pipelines (commits round k while it computes round k+1) reports round
  k's offsets in round k+1, and settles what is in flight in ``finish`` before ``run``
  returns.

A service subclasses :class:`PartitionedConsumer` and writes ``load``, ``drop`` and
``process``; ``run`` is the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from slawatch.shared.failures import describe, reason_label
from slawatch.shared.kafka import send_confirmed

# Header names of every dead-lettered record, whichever service dead-lettered it.
ERROR_HEADER = "slawatch-error"
SOURCE_TOPIC_HEADER = "slawatch-source-topic"
SOURCE_OFFSET_HEADER = "slawatch-source-offset"
_REASON_BYTES = 1000  # a header, not a log: the reason is cut, never the record
# How long one more poll waits for records while a service gathers a round (gather_more).
GATHER_POLL_MS = 5


def _joined(
    first: Mapping[TopicPartition, Sequence[Any]], then: Mapping[TopicPartition, Sequence[Any]]
) -> dict[TopicPartition, list[Any]]:
    """Two polls' records as one, in offset order per partition."""
    out = {tp: list(records) for tp, records in first.items()}
    for tp, records in then.items():
        out.setdefault(tp, []).extend(records)
    return out


Batches = Mapping[TopicPartition, Sequence[Any]]  # aiokafka ConsumerRecords per partition


@dataclass(frozen=True)
class DeadLetter:
    """A record that cannot be processed, and why (safe to log: no payload in ``reason``)."""

    key: bytes | None
    value: bytes | None
    reason: str
    partition: int
    offset: int

    @classmethod
    def of(cls, record: Any, reason: str) -> DeadLetter:
        return cls(record.key, record.value, reason, record.partition, record.offset)


class DeadLetterFailed(Exception):
    """The dead-letter topic did not ack: nothing past those records may be committed."""


class Backoff:
    """Waits that double from ``first`` up to ``cap`` while trouble lasts; reset on success."""

    def __init__(self, first: float = 0.2, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.delay = self.first


@dataclass
class Round:
    """What processing one poll decided: the offsets it made durable (to commit), and the
    trouble it met, if any (the runtime waits before the next poll)."""

    commit: dict[TopicPartition, int] = field(default_factory=dict)
    trouble: tuple[str, BaseException] | None = None

    def retry_later(self, what: str, exc: BaseException) -> None:
        self.trouble = (what, exc)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: PartitionedConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner.revoke(sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.owner.assign(sorted(tp.partition for tp in assigned))


class PartitionedConsumer:
    """The loop, the ownership and the plumbing; subclasses say what a round does."""

    # True for a service whose ``load`` seeks each partition to its own stored offset (the
    # monitor): records a poll fetched before that seek are then dropped, not processed.
    load_seeks = False

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        *,
        topic: str,
        dlq_topic: str,
        max_batch: int,
        dead_lettered: Any,  # a Counter labelled by reason
        log: logging.Logger,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.max_batch = max_batch
        self.dead_lettered = dead_lettered
        self.log = log
        self.owned: set[int] = set()
        self.assigned_once = asyncio.Event()  # partitions were assigned and loaded once
        self.lock = asyncio.Lock()  # a round and a rebalance never interleave
        self.listener = _Listener(self)
        self.backoff = Backoff()
        self.stopping = False  # set by the service's stop: finish the round in hand, return
        # Loads so far, and the count when each partition was last loaded: a poll begun
        # before its partition's load holds records from before the load's seek.
        self.loads = 0
        self.loaded_at: dict[int, int] = {}

    # ------------------------------------------------------------------ what a service writes
    async def load(self, partitions: list[int]) -> None:
        """Load the state of newly assigned partitions (called under the lock)."""

    async def drop(self, partitions: list[int]) -> None:
        """Forget the state of revoked partitions (called under the lock)."""

    async def process(self, batches: Batches, done: Round) -> None:
        """One round under the lock: the records of owned partitions (maybe none)."""

    def loaded_offset(self, partition: int) -> int:
        """Where ``load`` sought this partition (services with ``load_seeks``)."""
        raise NotImplementedError

    def poll_timeout_ms(self) -> int:
        return 500

    def gather_more(self, fetched: int) -> bool:
        """Whether to poll again before processing the ``fetched`` records polled so far (a
        pipelining service: while its last round is still committing, a bigger round costs
        the same one transaction as a small one)."""
        return False

    def on_trouble(self, exc: BaseException) -> None:
        """Called for every outage met (metrics, readiness)."""

    def on_recovered(self) -> None:
        """Called when an operation succeeded after trouble (readiness)."""

    async def finish(self, done: Round) -> None:
        """Called under the lock once the loop stops: settle whatever is still in flight
        (a pipelining service's last commit) and report its offsets in ``done``."""

    # ------------------------------------------------------------------ ownership
    async def assign(self, partitions: Sequence[int]) -> None:
        async with self.lock:
            fresh = sorted(set(partitions) - self.owned)
            if fresh:
                await self.load(fresh)
                self.owned.update(fresh)
                self.loads += 1
                self.loaded_at.update(dict.fromkeys(fresh, self.loads))
        self.assigned_once.set()

    async def revoke(self, partitions: Sequence[int]) -> None:
        async with self.lock:
            gone = sorted(set(partitions) & self.owned)
            if gone:
                await self.drop(gone)
                self.owned.difference_update(gone)

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Until stopped: poll, process under the lock, commit what is durable, back off
        after trouble. Returns only on stop, between two rounds."""
        while not self.stopping:
            polled_after = self.loads
            try:
                fetched = await self.consumer.getmany(
                    timeout_ms=self.poll_timeout_ms(), max_records=self.max_batch
                )
                count = sum(map(len, fetched.values()))
                while count and self.gather_more(count) and not self.stopping:
                    more = await self.consumer.getmany(
                        timeout_ms=GATHER_POLL_MS, max_records=self.max_batch - count
                    )
                    if more:
                        fetched = _joined(fetched, more)
                        count += sum(map(len, more.values()))
            except KafkaError as exc:  # e.g. UNKNOWN_MEMBER_ID mid-rebalance: rejoin, go on
                self.log.warning("poll failed, rejoining: %s", exc)
                await asyncio.sleep(0.2)
                continue
            done = Round()
            async with self.lock:
                batches = self._owned_only(fetched, polled_after)
                try:
                    await self.process(batches, done)
                except BaseException:
                    # A bug or a cancellation mid-round: nothing of it is committed, so make
                    # sure its records are fetched again rather than skipped.
                    self.seek_back({tp: records[0].offset for tp, records in batches.items()})
                    raise
            # Outside the lock: a rebalance waiting for it must not wait on a commit or a wait.
            if done.commit:
                await self._commit(done.commit)
            if done.trouble is not None:
                await self.wait_out(*done.trouble)
        done = Round()
        async with self.lock:
            await self.finish(done)
        if done.commit:
            await self._commit(done.commit)

    def _owned_only(
        self, fetched: Mapping[TopicPartition, Sequence[Any]], polled_after: int = 0
    ) -> Batches:
        batches = {}
        for tp, records in fetched.items():
            if not records:
                continue
            if tp.partition in self.owned:
                if self.load_seeks and self.loaded_at.get(tp.partition, 0) > polled_after:
                    # Loaded while this poll was on its way: fetched before the load's seek
                    # (a repeat) or after it (the first records): read them again from
                    # the offset the load sought to, either way.
                    self.consumer.seek(tp, self.loaded_offset(tp.partition))
                    continue
                batches[tp] = records
            elif tp in self.consumer.assignment():
                # Fetched before its assignment finished loading: read them again once it
                # has; a revoked partition's new owner reads them from the last commit.
                self.consumer.seek(tp, records[0].offset)
        return batches

    def seek_back(self, first_offsets: Mapping[TopicPartition, int]) -> None:
        """Fetch these partitions again from these offsets (those still owned)."""
        for tp, offset in first_offsets.items():
            if tp.partition in self.owned:
                self.consumer.seek(tp, offset)

    async def wait_out(self, what: str, exc: BaseException) -> None:
        """Count an outage and wait before trying again (the wait doubles while it lasts)."""
        self.on_trouble(exc)
        delay = self.backoff.next()
        down = "broker" if isinstance(exc, (KafkaError, DeadLetterFailed)) else "database"
        self.log.warning(
            "%s unavailable while %s; retrying in %.1fs: %s", down, what, delay, describe(exc)
        )
        await asyncio.sleep(delay)

    def recovered(self) -> None:
        self.backoff.reset()
        self.on_recovered()

    async def _commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(dict(offsets))
        except (CommitFailedError, IllegalStateError, KafkaError, AssertionError) as exc:
            # A rebalance took the partition: its new owner re-reads from the last commit.
            self.log.info("offset commit skipped: %s", exc)

    # ------------------------------------------------------------------ dead letters
    async def dead_letter(self, letters: Iterable[DeadLetter]) -> None:
        """Publish records to the dead-letter topic and wait for the acks; raises
        :class:`DeadLetterFailed` when the broker did not ack."""
        letters = list(letters)
        if not letters:
            return
        source = self.topic.encode()
        try:
            await send_confirmed(
                self.producer,
                self.dlq_topic,
                (
                    (
                        letter.key,
                        letter.value if letter.value is not None else b"",
                        [
                            (ERROR_HEADER, letter.reason.encode()[:_REASON_BYTES]),
                            (SOURCE_TOPIC_HEADER, source),
                            (
                                SOURCE_OFFSET_HEADER,
                                f"{letter.partition}:{letter.offset}".encode(),
                            ),
                        ],
                    )
                    for letter in letters
                ),
            )
        except (TimeoutError, KafkaError, OSError) as exc:
            raise DeadLetterFailed(str(exc)) from exc
        for letter in letters:
            self.dead_lettered.labels(reason_label(letter.reason)).inc()
            self.log.warning(
                "dead-lettered the record at %d:%d: %s",
                letter.partition,
                letter.offset,
                letter.reason,
                extra={
                    "topic": self.topic,
                    "ticket_id": letter.key.decode(errors="replace") if letter.key else None,
                },
            )
