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
- one ticket cannot stop the stream: when the engine raises on a ticket, or the database
  refuses to read or store its rows (a data error: shared/failures.py), that ticket's
  records of the batch are dead-lettered with the reason and every other ticket commits.
  The fast path stays one transaction; only after a data error is the batch written
  again with each ticket under a savepoint, bisecting to the refused ones.
- a database outage (connection refused or lost, timeout, shutdown) pauses progress: the
  batch is re-fetched (seek back) and retried with backoff; nothing is committed meanwhile.
- a stop (SIGTERM) ends the loop between two batches: the batch in hand is committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from services.sla_monitor import engine_port
from services.sla_monitor.metrics import MonitorMetrics
from services.sla_monitor.settings import MonitorSettings
from services.sla_monitor.store import (
    BatchWrite,
    FactsRow,
    OutboxRow,
    RetainedEvent,
    Store,
    TicketRow,
)
from services.sla_monitor.timers import DeadlineHeap
from shared.engine import SlaRecord
from shared.events import TicketEvent, parse_event
from shared.failures import describe, is_data_error, reason_label
from shared.kafka import send_confirmed

log = logging.getLogger("slawatch.monitor")

# Everything the database client can raise; after the data errors were isolated, what is
# left is an outage (or a fault of the schema): pause and retry, never dead-letter.
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)
AT_RISK_WINDOW_S = 30 * 60

DeadLetter = tuple[bytes | None, bytes, str]  # key, value, reason


class DeadLetterFailed(Exception):
    """The dead-letter topic did not ack: nothing of the batch may be committed."""


@dataclass
class PartitionState:
    """What one owned partition holds in memory: serialised states and their deadlines."""

    tickets: dict[str, bytes] = field(default_factory=dict)
    heap: DeadlineHeap = field(default_factory=DeadlineHeap)
    last_timestamp: float = 0.0  # broker timestamp (s) of the last record consumed
    caught_up: bool = False
    lag: int = 0  # records between the position and the high watermark, last measured

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
        self.stopping = False  # set by Monitor.stop: finish the batch in hand, then return
        self.db_failing = False  # the last database operation failed (readiness)
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
        self._db_ok()
        for number in numbers:
            self.partitions[number] = PartitionState()
        for row in rows:
            part = self.partitions[row.partition]
            part.tickets[row.ticket_id] = row.state
            part.heap.schedule(row.ticket_id, _epoch(row.next_due))
        # Never-consumed partitions start at their beginning: one ListOffsets request for
        # all of them (seek_to_beginning waits out a fetch round per partition: seconds).
        beginnings = [tp for tp in fresh if tp.partition not in offsets]
        if beginnings:
            starts = await self.consumer.beginning_offsets(beginnings)
            offsets.update({tp.partition: starts[tp] for tp in beginnings})
        for tp in fresh:
            self.consumer.seek(tp, offsets[tp.partition])
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
        """Until stopped: poll, apply and commit, fire what is due. Returns only on stop,
        between two committed rounds."""
        while not self.stopping:
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
                    try:
                        await self.apply_batches(batches)
                    except BaseException:
                        # A bug or a cancellation mid-batch: nothing was committed, so make
                        # sure the batch is fetched again rather than skipped.
                        self._seek_back(
                            {tp: recs[0].offset for tp, recs in batches.items() if recs}
                        )
                        raise
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
                part.lag = max(0, highwater - position)
                self.metrics.lag.labels(str(number)).set(part.lag)

    def readiness(self, max_lag: int) -> tuple[bool, dict]:
        """Whether this monitor keeps SLA clocks up to date right now, and why not.

        Ready: partitions assigned and loaded, every owned partition caught up once since
        start and now at most ``max_lag`` records behind, the last database operation
        succeeded, and not stopping.
        """
        lags = {number: part.lag for number, part in self.partitions.items()}
        body: dict = {
            "partitions": sorted(self.partitions),
            "max_lag": max(lags.values(), default=0),
        }
        if self.stopping:
            return False, {**body, "status": "stopping"}
        if self.db_failing:
            return False, {**body, "status": "database failing"}
        if not self.ready.is_set():
            return False, {**body, "status": "catching up"}
        behind = sorted(n for n, lag in lags.items() if lag > max_lag)
        if behind:
            return False, {**body, "status": "lagging", "lagging_partitions": behind}
        return True, {**body, "status": "ready"}

    # ------------------------------------------------------------------ applying events
    async def apply_batches(self, batches: dict[TopicPartition, list]) -> None:
        started = time.perf_counter()
        write = BatchWrite()
        poison: list[DeadLetter] = []
        events_by_ticket: dict[str, list[tuple[TicketEvent, bytes]]] = defaultdict(list)
        records_by_ticket: dict[str, list[tuple[bytes | None, bytes]]] = defaultdict(list)
        ticket_partition: dict[str, int] = {}
        last_ts: dict[int, float] = {}
        first_offsets: dict[TopicPartition, int] = {}
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
                records_by_ticket[event.ticket_id].append((record.key, record.value))
                ticket_partition[event.ticket_id] = tp.partition
            write.offsets[(self.topic, tp.partition)] = records[-1].offset + 1
            last_ts[tp.partition] = records[-1].timestamp / 1000.0
        if not write.offsets:
            return

        def isolate(ticket_id: str, reason: str) -> None:
            """Take a ticket out of this batch: its records go to the dead-letter topic."""
            events_by_ticket.pop(ticket_id, None)
            for key, value in records_by_ticket.pop(ticket_id, ()):
                poison.append((key, value, reason))

        unknown = [
            t for t in events_by_ticket if t not in self.partitions[ticket_partition[t]].tickets
        ]
        try:
            stored, unreadable = await self._read_states(unknown)
        except DB_ERRORS as exc:
            await self._db_failed("reading ticket states", exc, first_offsets)
            return
        for ticket_id, exc in unreadable.items():
            isolate(ticket_id, "store: " + describe(exc))

        new_memory: dict[str, tuple[int, bytes | None, float | None]] = {}
        emitted: list[SlaRecord] = []
        arrivals: dict[str, int] = defaultdict(int)
        applied = 0
        now = time.time()
        for ticket_id in list(events_by_ticket):
            events = events_by_ticket[ticket_id]
            partition = ticket_partition[ticket_id]
            try:
                computed = self._apply_ticket(ticket_id, partition, events, stored, now)
            except Exception as exc:  # noqa: BLE001 - one ticket's engine failure is that ticket's
                log.exception(
                    "the engine failed on a ticket; its records go to the dead-letter topic",
                    extra={"ticket_id": ticket_id},
                )
                isolate(ticket_id, "engine: " + describe(exc))
                continue
            row, facts, retained, outbox, produced, ticket_arrivals = computed
            write.retained.extend(retained)
            applied += len(events)
            for arrival in ticket_arrivals:
                arrivals[arrival] += 1
            if row is None:
                continue
            write.tickets[ticket_id] = row
            write.facts[ticket_id] = facts
            write.outbox.extend(outbox)
            emitted.extend(produced)
            new_memory[ticket_id] = (
                partition,
                row.state if row.open else None,
                _epoch(row.next_due),
            )

        async def dead_letter_refused(refused: Mapping[str, BaseException]) -> None:
            late = []
            for ticket_id, exc in refused.items():
                for key, value in records_by_ticket.get(ticket_id, ()):
                    late.append((key, value, "store: " + describe(exc)))
            await self._dead_letter(late)

        committing = time.perf_counter()
        try:
            # Poison found so far first: acked before any offset past it is committed.
            await self._dead_letter(poison)
            refused = await self._store(write, dead_letter_refused)
        except DeadLetterFailed as exc:
            log.warning("dead-letter publish failed; batch will be retried: %s", exc.__cause__)
            self._seek_back(first_offsets)
            await asyncio.sleep(0.5)
            return
        except DB_ERRORS as exc:
            await self._db_failed("committing a batch", exc, first_offsets)
            return
        self.metrics.commit_seconds.observe(time.perf_counter() - committing)
        self._db_ok()

        for ticket_id in refused:
            new_memory.pop(ticket_id, None)
            applied -= len(events_by_ticket.get(ticket_id, ()))
        if refused:
            emitted = [sla for sla in emitted if sla.ticket_id not in refused]
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

    def _apply_ticket(
        self,
        ticket_id: str,
        partition: int,
        events: list[tuple[TicketEvent, bytes]],
        stored: Mapping[str, bytes],
        now: float,
    ):
        """One ticket's events through the engine: its rows, or raises (the caller isolates)."""
        part = self.partitions[partition]
        blob = part.tickets.get(ticket_id) or stored.get(ticket_id)
        state = engine_port.load(blob, self.policies) if blob else None
        sla_events: list[SlaRecord] = []
        arrivals: list[str] = []
        retained: list[RetainedEvent] = []
        for event, raw in events:
            state, produced, arrival = engine_port.apply(state, event, self.policies)
            if arrival != "new":
                arrivals.append(arrival)
            sla_events.extend(produced)
            # The record as ingest published it (with received_at and source), for replay.
            retained.append(
                RetainedEvent(ticket_id, event.event_id, event.occurred_at, raw.decode())
            )
        if state is None:
            return None, None, retained, [], [], arrivals
        # Deadlines that are already due fire in fire_due() right after this commit,
        # under the partition's safe instant; applying events emits only what they decide.
        row = TicketRow(
            ticket_id,
            partition,
            engine_port.dump(state),
            engine_port.next_due(state),
            engine_port.is_open(state),
            engine_port.earliest_deadline(state),
        )
        facts = engine_port.facts_row(state)
        outbox, emitted = self._finalise(sla_events, partition, now)
        return row, facts, retained, outbox, emitted, arrivals

    async def _read_states(
        self, ticket_ids: list[str]
    ) -> tuple[dict[str, bytes], dict[str, BaseException]]:
        """Stored states of tickets not in memory, and the tickets the database refused to
        look up (one query; after a data error, halves of the ids until the refused ones
        are found)."""
        if not ticket_ids:
            return {}, {}
        try:
            return await self.store.ticket_states(ticket_ids), {}
        except DB_ERRORS as exc:
            if not is_data_error(exc):
                raise
        found: dict[str, bytes] = {}
        refused: dict[str, BaseException] = {}

        async def attempt(ids: list[str]) -> None:  # bisect down to the refused ids
            try:
                found.update(await self.store.ticket_states(ids))
            except DB_ERRORS as exc:
                if not is_data_error(exc):
                    raise
                if len(ids) == 1:
                    refused[ids[0]] = exc
                    return
                await attempt(ids[: len(ids) // 2])
                await attempt(ids[len(ids) // 2 :])

        await attempt(ticket_ids[: len(ticket_ids) // 2])
        await attempt(ticket_ids[len(ticket_ids) // 2 :])
        return found, refused

    async def _store(
        self,
        write: BatchWrite,
        before_commit: Callable[[Mapping[str, BaseException]], Awaitable[None]],
    ) -> dict[str, BaseException]:
        """Commit a round; returns the tickets whose rows the database refused (not written).

        The fast path is the one transaction; after a data error the round is written again
        isolating tickets (Store.write_isolating), and ``before_commit`` gets the refused ones.
        """
        try:
            await self.store.write(write)
            return {}
        except DB_ERRORS as exc:
            if not is_data_error(exc):
                raise
            log.warning("the database refused a batch (%s); isolating the tickets", describe(exc))
        parts, rest = write.split_by_ticket()
        return await self.store.write_isolating(parts, rest, before_commit)

    # ------------------------------------------------------------------ timers
    async def fire_due(self) -> None:
        now = time.time()
        write = BatchWrite()
        popped: list[tuple[int, str, float]] = []
        emitted: list[SlaRecord] = []
        for partition, part in self.partitions.items():
            horizon = part.safe_instant(now)
            for ticket_id in part.heap.pop_due(horizon, limit=5000):
                blob = part.tickets.get(ticket_id)
                if blob is None:
                    continue
                try:
                    row, facts, outbox, produced = self._advance_ticket(
                        ticket_id, partition, blob, horizon, now
                    )
                except Exception as exc:  # noqa: BLE001 - one ticket must not stop the timers
                    # Its timer stays popped: a ticket the engine cannot advance would fail
                    # again on every round. Its next event tries again.
                    self._ticket_failed("timer", "engine", ticket_id, exc)
                    continue
                # Already due: if the commit fails it is retried at `horizon`, still due.
                popped.append((partition, ticket_id, horizon))
                write.tickets[ticket_id] = row
                write.facts[ticket_id] = facts
                write.outbox.extend(outbox)
                emitted.extend(produced)
        if not write:
            return

        async def count_refused(refused: Mapping[str, BaseException]) -> None:
            for ticket_id, exc in refused.items():
                self._ticket_failed("timer", "store", ticket_id, exc)

        try:
            refused = await self._store(write, count_refused)
        except DB_ERRORS as exc:
            for partition, ticket_id, due in popped:
                if partition in self.partitions:
                    self.partitions[partition].heap.schedule(ticket_id, due)
            await self._db_failed("committing fired deadlines", exc)
            return
        self._db_ok()
        for ticket_id, row in write.tickets.items():
            if ticket_id in refused:
                continue  # keeps its last stored state; its timer stays popped (see above)
            part = self.partitions[row.partition]
            if row.open:
                part.tickets[ticket_id] = row.state
                part.heap.schedule(ticket_id, _epoch(row.next_due))
            else:
                part.tickets.pop(ticket_id, None)
        emitted = [sla for sla in emitted if sla.ticket_id not in refused]
        for sla in emitted:
            self.metrics.fire_delay_seconds.observe(max(0.0, now - sla.at_ms / 1000))
        self._count(emitted)
        self.refresh_gauges()
        if write.outbox:
            self.wake_outbox.set()

    def _advance_ticket(
        self, ticket_id: str, partition: int, blob: bytes, horizon: float, now: float
    ) -> tuple[TicketRow, FactsRow, list[OutboxRow], list[SlaRecord]]:
        state = engine_port.load(blob, self.policies)
        state, produced = engine_port.advance(
            state, datetime.fromtimestamp(horizon, UTC), self.policies
        )
        row = TicketRow(
            ticket_id,
            partition,
            engine_port.dump(state),
            engine_port.next_due(state),
            engine_port.is_open(state),
            engine_port.earliest_deadline(state),
        )
        outbox, emitted = self._finalise(produced, partition, now)
        return row, engine_port.facts_row(state), outbox, emitted

    async def recompute_all(self, chunk: int = 2000) -> None:
        """After a policy reload: recompute every owned open ticket under the new policies.

        The engine replays a ticket whose policy fingerprint changed; running targets are
        recounted from their original start, met and breached ones keep their outcome.
        A ticket that fails (engine or store) keeps its state and is logged and counted;
        the others go on.
        """
        now = time.time()
        items = [(p, t) for p, part in self.partitions.items() for t in part.tickets]
        failed = 0
        for start in range(0, len(items), chunk):
            write = BatchWrite()
            emitted: list[SlaRecord] = []
            for partition, ticket_id in items[start : start + chunk]:
                part = self.partitions.get(partition)
                blob = part.tickets.get(ticket_id) if part else None
                if part is None or blob is None:
                    continue  # revoked or closed meanwhile
                try:
                    row, facts, outbox, produced = self._advance_ticket(
                        ticket_id, partition, blob, part.safe_instant(now), now
                    )
                except Exception as exc:  # noqa: BLE001 - one ticket must not stop the others
                    self._ticket_failed("recompute", "engine", ticket_id, exc)
                    failed += 1
                    continue
                write.tickets[ticket_id] = row
                write.facts[ticket_id] = facts
                write.outbox.extend(outbox)
                emitted.extend(produced)

            async def count_refused(refused: Mapping[str, BaseException]) -> None:
                for ticket_id, exc in refused.items():
                    self._ticket_failed("recompute", "store", ticket_id, exc)

            while True:
                try:
                    refused = await self._store(write, count_refused)
                    break
                except DB_ERRORS as exc:
                    await self._db_failed("recomputing after a policy change", exc)
            self._db_ok()
            failed += len(refused)
            for ticket_id, row in write.tickets.items():
                part = self.partitions.get(row.partition)
                if part is None or ticket_id in refused:
                    continue
                part.tickets[ticket_id] = row.state
                part.heap.schedule(ticket_id, _epoch(row.next_due))
            self._count([sla for sla in emitted if sla.ticket_id not in refused])
            if write.outbox:
                self.wake_outbox.set()
        self.recompute_requested = False
        log.info(
            "recomputed %d open tickets under the reloaded policies (%d failed)",
            len(items) - failed,
            failed,
        )

    # ------------------------------------------------------------------ helpers
    def _finalise(
        self, sla_events: list[SlaRecord], partition: int, now: float
    ) -> tuple[list[OutboxRow], list[SlaRecord]]:
        """Flag late SLA events; their outbox rows and the events to count once committed."""
        rows, out = [], []
        late_after = self.settings.monitor_late_after_s
        for sla in sla_events:
            if (
                sla.kind in ("sla.warning", "sla.breached", "sla.escalated")
                and now - sla.at_ms / 1000 > late_after
            ):
                sla = sla.flagged_late()
            rows.append(OutboxRow(sla.id, sla.ticket_id, partition, sla.to_json()))
            out.append(sla)
        return rows, out

    def _ticket_failed(self, stage: str, reason: str, ticket_id: str, exc: BaseException) -> None:
        """A ticket the timers or a recompute could not advance or store: logged, counted."""
        self.metrics.ticket_errors.labels(stage, reason).inc()
        log.error(
            "%s: ticket skipped, %s failed: %s",
            stage,
            reason,
            describe(exc),
            extra={"ticket_id": ticket_id},
            exc_info=reason == "engine",
        )

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

    async def _dead_letter(self, poison: list[DeadLetter]) -> None:
        """Publish records to the dead-letter topic and wait for the acks; raises
        DeadLetterFailed when the broker did not ack (then nothing may be committed)."""
        if not poison:
            return
        try:
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
        except (TimeoutError, KafkaError, OSError) as exc:
            raise DeadLetterFailed(str(exc)) from exc
        for key, _, reason in poison:
            self.metrics.events_dead_lettered.labels(reason_label(reason)).inc()
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
        self.db_failing = True
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

    def _db_ok(self) -> None:
        self.db_failing = False
        self._db_backoff = 0.2

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
