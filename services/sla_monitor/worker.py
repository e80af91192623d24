"""The monitor's consume-apply-commit loop and its timers: the imperative shell around the engine.

One task does everything that changes state (apply a batch, fire due deadlines), so no
two writers ever race on a ticket; the rebalance listener takes the same lock, so a
partition is handed over only between two committed transactions.

Guarantees, and where they come from:
- nothing lost, nothing applied twice: state, the next offset and the outbox rows of a
  batch are one database transaction; on assignment we seek to the stored offset.
- no false alarms while lagging: a partition's deadlines fire only up to its *safe
  instant*: now when the partition is caught up to its high watermark, otherwise the
  broker timestamp of the last record consumed from it (nothing older can still arrive).
- real breaches found late are flagged ``detected_late`` and keep their true instant.
- a poison record goes to the dead-letter topic (acked) before its offset is committed.
- a database outage pauses progress: the batch is re-fetched (seek back) and retried with
  backoff; nothing is committed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from services.sla_monitor import engine_port
from services.sla_monitor.metrics import MonitorMetrics
from services.sla_monitor.settings import MonitorSettings
from services.sla_monitor.store import BatchWrite, OutboxRow, RetainedEvent, Store, TicketRow
from services.sla_monitor.timers import DeadlineHeap
from shared.engine import SlaRecord
from shared.events import TicketEvent, parse_event
from shared.kafka import send_confirmed

log = logging.getLogger("slawatch.monitor")

DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)
AT_RISK_WINDOW_S = 30 * 60


@dataclass
class PartitionState:
    """What one owned partition holds in memory: serialised states and their deadlines."""

    tickets: dict[str, bytes] = field(default_factory=dict)
    heap: DeadlineHeap = field(default_factory=DeadlineHeap)
    last_timestamp: float = 0.0  # broker timestamp (s) of the last record consumed
    caught_up: bool = False

    def safe_instant(self, now: float) -> float:
        return now if self.caught_up else min(now, self.last_timestamp)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.worker.lock:
            for tp in revoked:
                self.worker.partitions.pop(tp.partition, None)
                try:
                    self.worker.metrics.lag.remove(str(tp.partition))
                except KeyError:
                    pass  # never measured
            self.worker.refresh_gauges()
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self.worker.lock:
            await self.worker.load_partitions(sorted(assigned))


class Worker:
    def __init__(
        self,
        settings: MonitorSettings,
        store: Store,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        policies: engine_port.Policies,
        metrics: MonitorMetrics,
        wake_outbox: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.store = store
        self.consumer = consumer
        self.producer = producer
        self.policies = policies
        self.metrics = metrics
        self.wake_outbox = wake_outbox
        self.topic = settings.topic_events
        self.partitions: dict[int, PartitionState] = {}
        self.lock = asyncio.Lock()
        self.ready = asyncio.Event()
        self.listener = _Listener(self)
        self.assigned_once = False
        self.recompute_requested = False
        self._db_backoff = 0.2

    # ------------------------------------------------------------------ assignment
    async def load_partitions(self, assigned: Sequence[TopicPartition]) -> None:
        started = time.perf_counter()
        self.assigned_once = True
        fresh = [tp for tp in assigned if tp.partition not in self.partitions]
        if not fresh:
            return
        numbers = [tp.partition for tp in fresh]
        while True:
            try:
                offsets = await self.store.offsets(self.topic, numbers)
                rows = await self.store.load_open_tickets(numbers)
                break
            except DB_ERRORS as exc:
                await self._db_failed("loading assigned partitions", exc)
        for number in numbers:
            self.partitions[number] = PartitionState()
        for row in rows:
            part = self.partitions[row.partition]
            part.tickets[row.ticket_id] = row.state
            part.heap.schedule(row.ticket_id, _epoch(row.next_due))
        for tp in fresh:
            if tp.partition in offsets:
                self.consumer.seek(tp, offsets[tp.partition])
            else:
                await self.consumer.seek_to_beginning(tp)
        self.metrics.ready_seconds.set(time.perf_counter() - started)
        self.refresh_gauges()
        log.info(
            "partitions assigned: %s (%d open tickets loaded in %.2fs)",
            numbers,
            len(rows),
            time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ main loop
    async def run(self) -> None:
        while True:
            timeout_ms = self._poll_timeout_ms()
            try:
                batches = await self.consumer.getmany(
                    timeout_ms=timeout_ms, max_records=self.settings.monitor_max_batch
                )
            except KafkaError as exc:  # e.g. UNKNOWN_MEMBER_ID mid-rebalance: rejoin and go on
                log.warning("poll failed, rejoining: %s", exc)
                await asyncio.sleep(0.2)
                continue
            async with self.lock:
                if batches:
                    await self.apply_batches(batches)
                await self._update_caught_up()
                if self.recompute_requested:
                    await self.recompute_all()
                await self.fire_due()
                if self.assigned_once and all(p.caught_up for p in self.partitions.values()):
                    self.ready.set()

    def _poll_timeout_ms(self) -> int:
        now = time.time()
        soonest = min(
            (due for p in self.partitions.values() if (due := p.heap.next_due()) is not None),
            default=None,
        )
        if soonest is None:
            return 500
        return int(max(0.0, min(0.5, soonest - now)) * 1000)

    async def _update_caught_up(self) -> None:
        for number, part in self.partitions.items():
            tp = TopicPartition(self.topic, number)
            highwater = self.consumer.highwater(tp)
            try:
                position = await asyncio.wait_for(self.consumer.position(tp), 0.05)
            except (KafkaError, TimeoutError, AssertionError):
                position = None
            part.caught_up = (
                highwater is not None and position is not None and position >= highwater
            )
            if highwater is not None and position is not None:
                self.metrics.lag.labels(str(number)).set(max(0, highwater - position))

    # ------------------------------------------------------------------ applying events
    async def apply_batches(self, batches: dict[TopicPartition, list]) -> None:
        started = time.perf_counter()
        write = BatchWrite()
        poison: list[tuple[bytes | None, bytes, str]] = []
        events_by_ticket: dict[str, list[tuple[TicketEvent, bytes]]] = defaultdict(list)
        ticket_partition: dict[str, int] = {}
        last_ts: dict[int, float] = {}
        first_offsets: dict[TopicPartition, int] = {}
        applied = 0
        for tp, records in batches.items():
            if tp.partition not in self.partitions:
                continue  # revoked meanwhile; its new owner re-reads from the stored offset
            first_offsets[tp] = records[0].offset
            for record in records:
                try:
                    event = parse_event(record.value)
                except (ValidationError, ValueError, TypeError) as exc:
                    poison.append((record.key, record.value or b"", _poison_reason(exc)))
                    continue
                events_by_ticket[event.ticket_id].append((event, record.value))
                ticket_partition[event.ticket_id] = tp.partition
                applied += 1
            write.offsets[(self.topic, tp.partition)] = records[-1].offset + 1
            last_ts[tp.partition] = records[-1].timestamp / 1000.0
        if not write.offsets:
            return

        unknown = [
            t for t in events_by_ticket if t not in self.partitions[ticket_partition[t]].tickets
        ]
        try:
            stored = await self.store.ticket_states(unknown) if unknown else {}
        except DB_ERRORS as exc:
            await self._db_failed("reading ticket states", exc, first_offsets)
            return

        new_memory: dict[str, tuple[int, bytes | None, float | None]] = {}
        emitted: list[SlaRecord] = []
        arrivals: dict[str, int] = defaultdict(int)
        now = time.time()
        for ticket_id, events in events_by_ticket.items():
            partition = ticket_partition[ticket_id]
            part = self.partitions[partition]
            blob = part.tickets.get(ticket_id) or stored.get(ticket_id)
            state = engine_port.load(blob, self.policies) if blob else None
            sla_events: list[SlaRecord] = []
            for event, raw in events:
                state, produced, arrival = engine_port.apply(state, event, self.policies)
                if arrival != "new":
                    arrivals[arrival] += 1
                sla_events.extend(produced)
                # The record as ingest published it (with received_at and source), for replay.
                write.retained.append(
                    RetainedEvent(ticket_id, event.event_id, event.occurred_at, raw.decode())
                )
            if state is None:
                continue
            # Deadlines that are already due fire in fire_due() right after this commit,
            # under the partition's safe instant; applying events emits only what they decide.
            blob = engine_port.dump(state)
            due = engine_port.next_due(state)
            is_open = engine_port.is_open(state)
            write.tickets[ticket_id] = TicketRow(
                ticket_id, partition, blob, due, is_open, engine_port.earliest_deadline(state)
            )
            write.facts[ticket_id] = engine_port.facts_row(state)
            new_memory[ticket_id] = (partition, blob if is_open else None, _epoch(due))
            emitted.extend(self._finalise(sla_events, partition, write, now))

        if poison:
            try:
                await self._dead_letter(poison)
            except (TimeoutError, KafkaError, OSError) as exc:
                log.warning("dead-letter publish failed; batch will be retried: %s", exc)
                self._seek_back(first_offsets)
                await asyncio.sleep(0.5)
                return
        committing = time.perf_counter()
        try:
            await self.store.write(write)
        except DB_ERRORS as exc:
            await self._db_failed("committing a batch", exc, first_offsets)
            return
        self.metrics.commit_seconds.observe(time.perf_counter() - committing)
        self._db_backoff = 0.2

        for ticket_id, (partition, blob, due) in new_memory.items():
            part = self.partitions[partition]
            if blob is None:
                part.tickets.pop(ticket_id, None)
                part.heap.cancel(ticket_id)
            else:
                part.tickets[ticket_id] = blob
                part.heap.schedule(ticket_id, due)
        for partition, ts in last_ts.items():
            part = self.partitions[partition]
            part.last_timestamp = max(part.last_timestamp, ts)
        self._count(emitted)
        self.metrics.events_applied.inc(applied)
        self.metrics.events_duplicate.inc(arrivals["duplicate"])
        self.metrics.events_late.inc(arrivals["late"])
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.refresh_gauges()
        if write.outbox:
            self.wake_outbox.set()
        await self._commit_kafka(write.offsets)

    # ------------------------------------------------------------------ timers
    async def fire_due(self) -> None:
        now = time.time()
        write = BatchWrite()
        popped: list[tuple[int, str, float]] = []
        emitted: list[SlaRecord] = []
        for partition, part in self.partitions.items():
            horizon = part.safe_instant(now)
            for ticket_id in part.heap.pop_due(horizon, limit=5000):
                # Already due: if the commit fails it is retried at `horizon`, still due.
                popped.append((partition, ticket_id, horizon))
                blob = part.tickets.get(ticket_id)
                if blob is None:
                    continue
                state = engine_port.load(blob, self.policies)
                state, produced = engine_port.advance(
                    state, datetime.fromtimestamp(horizon, UTC), self.policies
                )
                blob = engine_port.dump(state)
                due = engine_port.next_due(state)
                is_open = engine_port.is_open(state)
                write.tickets[ticket_id] = TicketRow(
                    ticket_id, partition, blob, due, is_open, engine_port.earliest_deadline(state)
                )
                write.facts[ticket_id] = engine_port.facts_row(state)
                emitted.extend(self._finalise(produced, partition, write, now))
        if not write:
            return
        try:
            await self.store.write(write)
        except DB_ERRORS as exc:
            for partition, ticket_id, due in popped:
                if partition in self.partitions:
                    self.partitions[partition].heap.schedule(ticket_id, due)
            await self._db_failed("committing fired deadlines", exc)
            return
        for ticket_id, row in write.tickets.items():
            part = self.partitions[row.partition]
            if row.open:
                part.tickets[ticket_id] = row.state
                part.heap.schedule(ticket_id, _epoch(row.next_due))
            else:
                part.tickets.pop(ticket_id, None)
        for sla in emitted:
            self.metrics.fire_delay_seconds.observe(max(0.0, now - sla.at_ms / 1000))
        self._count(emitted)
        self.refresh_gauges()
        if write.outbox:
            self.wake_outbox.set()

    async def recompute_all(self, chunk: int = 2000) -> None:
        """After a policy reload: recompute every owned open ticket under the new policies.

        The engine replays a ticket whose policy fingerprint changed; running targets are
        recounted from their original start, met and breached ones keep their outcome.
        """
        now = time.time()
        items = [(p, t) for p, part in self.partitions.items() for t in part.tickets]
        for start in range(0, len(items), chunk):
            write = BatchWrite()
            emitted: list[SlaRecord] = []
            for partition, ticket_id in items[start : start + chunk]:
                part = self.partitions[partition]
                state = engine_port.load(part.tickets[ticket_id], self.policies)
                horizon = datetime.fromtimestamp(part.safe_instant(now), UTC)
                state, produced = engine_port.advance(state, horizon, self.policies)
                write.tickets[ticket_id] = TicketRow(
                    ticket_id,
                    partition,
                    engine_port.dump(state),
                    engine_port.next_due(state),
                    engine_port.is_open(state),
                    engine_port.earliest_deadline(state),
                )
                write.facts[ticket_id] = engine_port.facts_row(state)
                emitted.extend(self._finalise(produced, partition, write, now))
            while True:
                try:
                    await self.store.write(write)
                    break
                except DB_ERRORS as exc:
                    await self._db_failed("recomputing after a policy change", exc)
            for ticket_id, row in write.tickets.items():
                part = self.partitions[row.partition]
                part.tickets[ticket_id] = row.state
                part.heap.schedule(ticket_id, _epoch(row.next_due))
            self._count(emitted)
            if write.outbox:
                self.wake_outbox.set()
        self.recompute_requested = False
        log.info("recomputed %d open tickets under the reloaded policies", len(items))

    # ------------------------------------------------------------------ helpers
    def _finalise(
        self, sla_events: list[SlaRecord], partition: int, write: BatchWrite, now: float
    ) -> list[SlaRecord]:
        out = []
        late_after = self.settings.monitor_late_after_s
        for sla in sla_events:
            if (
                sla.kind in ("sla.warning", "sla.breached", "sla.escalated")
                and now - sla.at_ms / 1000 > late_after
            ):
                sla = sla.flagged_late()
            write.outbox.append(OutboxRow(sla.id, sla.ticket_id, partition, sla.to_json()))
            out.append(sla)
        return out

    def _count(self, emitted: list[SlaRecord]) -> None:
        """Count and log committed SLA events; the log line carries the ids for correlation."""
        for sla in emitted:
            self.metrics.sla_events.labels(
                sla.kind, sla.target, sla.policy, sla.customer_tier or ""
            ).inc()
            if sla.kind == "sla.met" and sla.target == "first_response":
                self.metrics.first_response_seconds.labels(sla.policy).observe(sla.elapsed_seconds)
            elif sla.kind == "sla.met" and sla.target == "resolution":
                self.metrics.resolution_seconds.labels(sla.policy).observe(sla.elapsed_seconds)
            log.info(
                "%s %s",
                sla.kind,
                sla.target,
                extra={
                    "ticket_id": sla.ticket_id,
                    "sla_event_id": sla.id,
                    "policy": sla.policy,
                    "deadline": sla.deadline.isoformat() if sla.deadline else None,
                    "detected_late": sla.detected_late,
                },
            )

    async def _dead_letter(self, poison: list[tuple[bytes | None, bytes, str]]) -> None:
        await send_confirmed(
            self.producer,
            self.settings.topic_events_dlq,
            (
                (
                    key,
                    value,
                    [
                        ("slawatch-error", reason.encode()[:1000]),
                        ("slawatch-source-topic", self.topic.encode()),
                    ],
                )
                for key, value, reason in poison
            ),
        )
        for key, _, reason in poison:
            self.metrics.events_dead_lettered.labels(reason.split(":", 1)[0]).inc()
            log.warning(
                "dead-lettered a record: %s",
                reason,
                extra={
                    "ticket_id": key.decode(errors="replace") if key else None,
                    "topic": self.topic,
                },
            )

    async def _commit_kafka(self, offsets: dict[tuple[str, int], int]) -> None:
        """Mirror the stored offsets to Kafka for lag tooling; the database stays the truth."""
        try:
            await self.consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
        except (KafkaError, AssertionError) as exc:
            log.debug("kafka offset commit skipped: %s", exc)

    def _seek_back(self, first_offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in first_offsets.items():
            if tp.partition in self.partitions:
                self.consumer.seek(tp, offset)

    async def _db_failed(
        self, what: str, exc: BaseException, first_offsets: dict[TopicPartition, int] | None = None
    ) -> None:
        self.metrics.db_errors.inc()
        if first_offsets:
            self._seek_back(first_offsets)
        log.warning(
            "database unavailable while %s; retrying in %.1fs: %s",
            what,
            self._db_backoff,
            type(exc).__name__,
        )
        await asyncio.sleep(self._db_backoff)
        self._db_backoff = min(self._db_backoff * 2, 10.0)

    def refresh_gauges(self) -> None:
        self.metrics.owned_partitions.set(len(self.partitions))

    def install_gauges(self) -> None:
        """Gauges computed when scraped, so the hot path never walks a million tickets."""
        self.metrics.open_tickets.set_function(
            lambda: sum(len(p.tickets) for p in self.partitions.values())
        )
        self.metrics.timers.set_function(lambda: sum(len(p.heap) for p in self.partitions.values()))

        def at_risk() -> float:
            limit = time.time() + AT_RISK_WINDOW_S
            return float(sum(p.heap.count_due_before(limit) for p in self.partitions.values()))

        self.metrics.at_risk.set_function(at_risk)


def _poison_reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"invalid: {where}: {first['msg']}"
    return f"undecodable: {type(exc).__name__}"
