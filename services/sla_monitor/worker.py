"""The monitor's consume-apply-commit loop and its timers: the imperative shell around the engine.

One task does everything that changes state (apply a batch, fire due deadlines), so no
two writers ever race on a ticket; the rebalance listener takes the same lock, so a
partition is handed over only between two rounds, after the round in flight committed.

Guarantees, and where they come from:
- nothing lost, nothing applied twice: state, the next offset and the outbox rows of a
  round are one database transaction; on assignment we seek to the stored offset (and
  drop what a poll fetched before that seek: shared/consumer.py).
- pipelined, ordered commits: a round (a batch's events and the deadlines then due) is
  applied in memory and its transaction started; the next round is applied while it
  commits, and its transaction starts only once the previous one committed, so commits
  stay in order per partition and at most one is in flight. Nothing leaves the process
  before its transaction is durable: the Kafka offsets, the SLA records (published from
  memory by the outbox) and the metrics of round k are settled when round k committed.
  When it did not (an outage), every change applied in memory since the last commit is
  undone and the partitions are sought back to their stored offsets: the rounds are
  applied again from there, after the backoff.
  A batch holding customer.updated events (customers.py) settles the round in flight
  before it is applied: it reads the customers' rows and their open tickets from the
  tables, which must hold everything applied before it.
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
  rounds since the last commit are undone and re-fetched, and retried with backoff.
- a stop (SIGTERM) ends the loop between two rounds: the round in flight is committed.

Only what changed is written: a ticket whose stored form is unchanged (a duplicate
event) gets no state, facts or retained row. Tickets needed again soon can be kept
deserialised in a bounded cache (SLAWATCH_MONITOR_STATE_CACHE, off by default: measured,
the garbage collector's walks over the cached objects cost more than the decoding saved).

The loop, the rebalance listener and lock, the backoff, the dead-letter headers and the
offset commit are the shared partitioned-consumer runtime's (shared/consumer.py). Applying
events, firing deadlines and recomputing after a policy reload all go through one
:meth:`Worker.step` of a ticket: load -> engine -> dump -> rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from slawatch.services.sla_monitor import customers, engine_port
from slawatch.services.sla_monitor.metrics import MonitorMetrics
from slawatch.services.sla_monitor.outbox import OutboxDrainer
from slawatch.services.sla_monitor.settings import MonitorSettings
from slawatch.services.sla_monitor.store import (
    BatchWrite,
    FactsRow,
    OutboxRow,
    RetainedEvent,
    Store,
    TicketRow,
)
from slawatch.services.sla_monitor.timers import DeadlineHeap
from slawatch.shared.consumer import (
    Batches,
    DeadLetter,
    DeadLetterFailed,
    PartitionedConsumer,
    Round,
)
from slawatch.shared.engine import SlaRecord, State
from slawatch.shared.events import CustomerUpdated, TicketEvent, parse_posted
from slawatch.shared.failures import describe, is_data_error
from slawatch.shared.kafka import send_confirmed

log = logging.getLogger("slawatch.monitor")

# Everything the database client can raise; after the data errors were isolated, what is
# left is an outage (or a fault of the schema): pause and retry, never dead-letter.
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)
AT_RISK_WINDOW_S = 30 * 60
# Tickets stepped between two yields to the event loop while a round is applied: the
# transaction in flight sends its next statement, and the fetcher its next request, at
# each yield (one loop, one thread: without them a commit would wait for the whole apply).
YIELD_EVERY = 32


@dataclass
class PartitionState:
    """What one owned partition holds in memory: serialised states and their deadlines."""

    tickets: dict[str, bytes] = field(default_factory=dict)
    heap: DeadlineHeap = field(default_factory=DeadlineHeap)
    last_timestamp: float = 0.0  # broker timestamp (s) of the last record applied
    caught_up: bool = False
    lag: int = 0  # records between the position and the high watermark, last measured
    committed_offset: int = 0  # the stored next offset: where an undo seeks back to
    committed_timestamp: float = 0.0  # last_timestamp as of that offset

    def safe_instant(self, now: float) -> float:
        return now if self.caught_up else min(now, self.last_timestamp)


class StateCache:
    """Deserialised states of recently stepped open tickets, least recently used first out.

    Bounded by count: a state is about 8 KB deserialised, so 10,000 keep the cache near
    80 MB whatever the number of open tickets (their stored forms stay in the
    partitions' maps). ``apply`` and ``advance`` mutate the state they get: whoever
    abandons a step (an engine failure, an undo) evicts the ticket.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.states: OrderedDict[str, State] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, ticket_id: str) -> State | None:
        state = self.states.get(ticket_id)
        if state is None:
            self.misses += 1
            return None
        self.hits += 1
        self.states.move_to_end(ticket_id)
        return state

    def put(self, ticket_id: str, state: State) -> None:
        if self.size <= 0:
            return
        self.states[ticket_id] = state
        self.states.move_to_end(ticket_id)
        while len(self.states) > self.size:
            self.states.popitem(last=False)

    def evict(self, ticket_id: str) -> None:
        self.states.pop(ticket_id, None)

    def clear(self) -> None:
        self.states.clear()

    def __len__(self) -> int:
        return len(self.states)


@dataclass
class Step:
    """One ticket after a step: its rows (None when its stored form did not change) and
    what it emitted."""

    row: TicketRow | None = None
    facts: FactsRow | None = None
    state: State | None = None
    outbox: list[OutboxRow] = field(default_factory=list)
    emitted: list[SlaRecord] = field(default_factory=list)
    retained: list[RetainedEvent] = field(default_factory=list)
    arrivals: list[str] = field(default_factory=list)  # "duplicate" / "late" events


@dataclass
class Pending:
    """One round: applied in memory, then committed as one transaction (maybe in flight
    while the next round is applied). ``undo`` holds each touched ticket's stored form
    before the round (None: it had none in memory), to take the round back."""

    write: BatchWrite = field(default_factory=BatchWrite)
    poison: list[DeadLetter] = field(default_factory=list)
    records_by_ticket: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    emitted: list[SlaRecord] = field(default_factory=list)
    fired: list[SlaRecord] = field(default_factory=list)  # emitted by the timers
    applied: dict[str, int] = field(default_factory=dict)
    arrivals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    undo: dict[str, tuple[int, bytes | None]] = field(default_factory=dict)
    last_ts: dict[int, float] = field(default_factory=dict)
    stage: str = "committing a batch"
    started: float = field(default_factory=time.perf_counter)
    now: float = field(default_factory=time.time)
    task: asyncio.Task | None = None
    committing: float = 0.0
    refused: dict[str, BaseException] = field(default_factory=dict)  # once committed

    def __bool__(self) -> bool:
        return bool(self.write or self.poison)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


class Worker(PartitionedConsumer):
    load_seeks = True  # load() seeks every partition to its stored offset

    def __init__(
        self,
        settings: MonitorSettings,
        store: Store,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        policies: engine_port.Policies,
        metrics: MonitorMetrics,
        outbox: OutboxDrainer,
    ) -> None:
        super().__init__(
            consumer,
            producer,
            topic=settings.topic_events,
            dlq_topic=settings.topic_events_dlq,
            max_batch=settings.monitor_max_batch,
            dead_lettered=metrics.events_dead_lettered,
            log=log,
        )
        self.settings = settings
        self.store = store
        self.policies = policies
        self.metrics = metrics
        self.outbox = outbox
        self.partitions: dict[int, PartitionState] = {}
        self.cache = StateCache(settings.monitor_state_cache)
        self.inflight: Pending | None = None  # the round whose transaction is committing
        self.ready = asyncio.Event()  # assigned, loaded and caught up once
        self.recompute_requested = False
        self.db_failing = False  # the last database operation failed (readiness)

    # ------------------------------------------------------------------ ownership
    async def load(self, partitions: list[int]) -> None:
        started = time.perf_counter()
        while True:
            try:
                offsets = await self.store.offsets(self.topic, partitions)
                rows = await self.store.load_open_tickets(partitions)
                marks = await self.store.outbox_marks(partitions)
                break
            except DB_ERRORS as exc:
                await self.wait_out("loading assigned partitions", exc)
        self.recovered()
        for number in partitions:
            self.partitions[number] = PartitionState()
            sent, written = marks.get(number, (0, 0))
            self.outbox.recover(number, sent, written)
        for row in rows:
            part = self.partitions[row.partition]
            part.tickets[row.ticket_id] = row.state
            part.heap.schedule(row.ticket_id, _epoch(row.next_due))
            self.cache.evict(row.ticket_id)
        fresh = [TopicPartition(self.topic, number) for number in partitions]
        # Never-consumed partitions start at their beginning: one ListOffsets request for
        # all of them (seek_to_beginning waits out a fetch round per partition: seconds).
        beginnings = [tp for tp in fresh if tp.partition not in offsets]
        if beginnings:
            starts = await self.consumer.beginning_offsets(beginnings)
            offsets.update({tp.partition: starts[tp] for tp in beginnings})
        for tp in fresh:
            self.consumer.seek(tp, offsets[tp.partition])
            self.partitions[tp.partition].committed_offset = offsets[tp.partition]
        self.metrics.ready_seconds.set(time.perf_counter() - started)
        self.refresh_gauges()
        log.info(
            "partitions assigned: %s (%d open tickets loaded in %.2fs)",
            partitions,
            len(rows),
            time.perf_counter() - started,
        )

    def loaded_offset(self, partition: int) -> int:
        return self.partitions[partition].committed_offset

    async def drop(self, partitions: list[int]) -> None:
        # The round in flight commits first: a partition changes hands between commits.
        done = Round()
        await self.settle(done)
        if done.commit:
            await self._commit(done.commit)
        for number in partitions:
            part = self.partitions.pop(number, None)
            if part is not None:
                for ticket_id in part.tickets:
                    self.cache.evict(ticket_id)
            try:
                self.metrics.lag.remove(str(number))
            except KeyError:
                pass  # never measured
        self.outbox.forget(partitions)
        self.refresh_gauges()
        log.info("partitions revoked: %s", partitions)

    async def finish(self, done: Round) -> None:
        await self.settle(done)

    # ------------------------------------------------------------------ one round
    async def process(self, batches: Batches, done: Round) -> None:
        """Apply what was fetched and fire what is due (one round, one transaction), start
        committing it once the previous round committed; settle at once when idle."""
        pending = Pending()
        try:
            await self._round(batches, pending, done)
        except BaseException:
            # A bug or a cancellation mid-round: take the round back out of memory (the
            # runtime re-fetches its records); what is in flight settles in run().
            self._undo(pending)
            self.cache.clear()
            raise

    async def run(self) -> None:
        try:
            await super().run()
        except BaseException:
            done = Round()
            await asyncio.shield(self.settle(done))
            if done.commit:
                await self._commit(done.commit)
            raise

    async def _round(self, batches: Batches, pending: Pending, done: Round) -> None:
        if batches and not await self.apply_batches(batches, pending, done):
            return
        await self._update_caught_up()
        if self.recompute_requested:
            if not await self.settle(done):
                return
            await self.recompute_all(done)
        await self.fire_due(pending)
        if pending:
            await self.submit(pending, done)
        if not batches or self.stopping:
            await self.settle(done)  # nothing to overlap with: publish without delay
        if self.assigned_once.is_set() and all(p.caught_up for p in self.partitions.values()):
            self.ready.set()

    def gather_more(self, fetched: int) -> bool:
        # While a round commits, records polled meanwhile join the next round rather than
        # each poll's few becoming a transaction of their own.
        inflight = self.inflight
        return (
            inflight is not None
            and inflight.task is not None
            and not inflight.task.done()
            and fetched < self.max_batch
        )

    def poll_timeout_ms(self) -> int:
        if self.inflight is not None:
            return 0  # records already fetched overlap the commit; none: settle it now
        now = time.time()
        soonest = min(
            (due for p in self.partitions.values() if (due := p.heap.next_due()) is not None),
            default=None,
        )
        if soonest is None:
            return 500
        return int(max(0.0, min(0.5, soonest - now)) * 1000)

    def on_trouble(self, exc: BaseException) -> None:
        if not isinstance(exc, DeadLetterFailed):  # the broker's trouble, not the database's
            self.metrics.db_errors.inc()
            self.db_failing = True

    def on_recovered(self) -> None:
        self.db_failing = False

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

    # ------------------------------------------------------------------ one ticket
    def step(
        self,
        ticket_id: str,
        partition: int,
        blob: bytes | None,
        now: float,
        *,
        events: Sequence[tuple[TicketEvent, bytes]] = (),
        until: float | None = None,
    ) -> Step:
        """One ticket through the engine: its events applied, or its clocks advanced to
        ``until`` (a partition's safe instant); then its rows, when its stored form
        changed. Raises what the engine raises (the caller isolates the ticket)."""
        state = self.cache.get(ticket_id) if blob else None
        if state is None and blob:
            state = engine_port.load(blob, self.policies)
        step = Step()
        produced: list[SlaRecord] = []
        for event, raw in events:
            state, sla_events, arrival = engine_port.apply(state, event, self.policies)
            if arrival != "new":
                step.arrivals.append(arrival)
            if arrival == "duplicate":
                continue  # nothing changed: nothing to retain
            produced.extend(sla_events)
            # The record as ingest published it (with received_at and source), for replay.
            step.retained.append(
                RetainedEvent(ticket_id, event.event_id, event.occurred_at, raw.decode())
            )
        if state is None:
            return step
        if until is not None:
            state, sla_events = engine_port.advance(
                state, datetime.fromtimestamp(until, UTC), self.policies
            )
            produced.extend(sla_events)
        step.state = state
        stored = engine_port.dump(state)
        if stored == blob and not produced:
            return step  # e.g. only duplicates: the stored form stands
        # Deadlines already due when events are applied fire in fire_due() right after,
        # under the partition's safe instant; applying emits only what events decide.
        step.row = TicketRow(
            ticket_id,
            partition,
            stored,
            engine_port.next_due(state),
            engine_port.is_open(state),
            engine_port.earliest_deadline(state),
        )
        step.facts = engine_port.facts_row(state)
        step.outbox, step.emitted = self._finalise(produced, partition, now)
        return step

    def _blob(self, pending: Pending, ticket_id: str, partition: int) -> bytes | None:
        """A ticket's newest stored form in memory: this round's, the round in flight's
        (a ticket closed there is in no partition map), or the partition's."""
        for round_ in (pending, self.inflight):
            if round_ is not None and (row := round_.write.tickets.get(ticket_id)) is not None:
                return row.state
        part = self.partitions.get(partition)
        return part.tickets.get(ticket_id) if part else None

    def _stage(self, pending: Pending, step: Step, ticket_id: str, partition: int) -> None:
        """Add a stepped ticket's rows to the round and apply them in memory (undoable)."""
        write = pending.write
        write.retained.extend(step.retained)
        part = self.partitions.get(partition)
        row = step.row
        if row is None or step.facts is None or part is None:
            if step.state is not None and part is not None and ticket_id in part.tickets:
                # Unchanged: nothing to write, but a popped timer is due again later.
                self.cache.put(ticket_id, step.state)
                part.heap.schedule(ticket_id, _epoch(engine_port.next_due(step.state)))
            return
        if ticket_id not in pending.undo:
            pending.undo[ticket_id] = (partition, part.tickets.get(ticket_id))
        write.tickets[ticket_id] = row
        write.facts[ticket_id] = step.facts
        write.outbox.extend(step.outbox)
        if row.open:
            part.tickets[ticket_id] = row.state
            part.heap.schedule(ticket_id, _epoch(row.next_due))
            if step.state is not None:
                self.cache.put(ticket_id, step.state)
        else:
            part.tickets.pop(ticket_id, None)
            part.heap.cancel(ticket_id)
            self.cache.evict(ticket_id)

    def _undo(self, pending: Pending, tickets: Sequence[str] | None = None) -> None:
        """Take a round (or these tickets of it) back out of memory."""
        for ticket_id, (partition, blob) in list(pending.undo.items()):
            if tickets is not None and ticket_id not in tickets:
                continue
            self.cache.evict(ticket_id)
            part = self.partitions.get(partition)
            if part is None:
                continue
            if blob is None:
                part.tickets.pop(ticket_id, None)
                part.heap.cancel(ticket_id)
                continue
            part.tickets[ticket_id] = blob
            try:
                due = engine_port.next_due(engine_port.load(blob, self.policies))
            except Exception:  # noqa: BLE001 - unreadable: its next event isolates it
                due = None
            part.heap.schedule(ticket_id, _epoch(due))

    def _rewind(self, *rounds: Pending | None) -> None:
        """After a failed commit: undo the rounds (newest first) and seek every owned
        partition back to its stored offset; they are applied again from there."""
        for round_ in rounds:
            if round_ is not None:
                self._undo(round_)
        self.cache.clear()
        for number, part in self.partitions.items():
            part.last_timestamp = part.committed_timestamp
            if number in self.owned:
                self.consumer.seek(TopicPartition(self.topic, number), part.committed_offset)

    # ------------------------------------------------------------------ committing
    async def submit(self, pending: Pending, done: Round) -> None:
        """Start committing a round, after the round in flight committed (commits stay in
        order). When that one failed, this round is taken back too."""
        if not await self.settle(done, following=pending):
            return
        pending.committing = time.perf_counter()
        pending.task = asyncio.create_task(self._commit_round(pending))
        self.inflight = pending

    async def _commit_round(self, pending: Pending) -> dict[str, BaseException]:
        # Poison found so far first: acked before any offset past it is committed.
        await self.dead_letter(pending.poison)

        async def dead_letter_refused(refused: Mapping[str, BaseException]) -> None:
            for ticket_id, exc in refused.items():
                if ticket_id not in pending.records_by_ticket:  # a timer's, not an event's
                    self._ticket_failed("timer", "store", ticket_id, exc)
            await self.dead_letter(
                DeadLetter.of(record, "store: " + describe(exc))
                for ticket_id, exc in refused.items()
                for record in pending.records_by_ticket.get(ticket_id, ())
            )

        return await self._store(pending.write, dead_letter_refused)

    async def settle(self, done: Round, following: Pending | None = None) -> bool:
        """Wait for the round in flight; once durable, let its effects out (Kafka offsets
        in ``done``, SLA records to the outbox, metrics). False when it failed: it and
        ``following`` (applied on top of it) are undone and their records re-fetched."""
        inflight, self.inflight = self.inflight, None
        if inflight is None or inflight.task is None:
            return True
        try:
            refused = await inflight.task
        except DeadLetterFailed as exc:
            self._rewind(following, inflight)
            done.retry_later("publishing to the dead-letter topic", exc)
            return False
        except DB_ERRORS as exc:
            self._rewind(following, inflight)
            done.retry_later(inflight.stage, exc)
            return False
        self.metrics.commit_seconds.observe(time.perf_counter() - inflight.committing)
        self.recovered()
        inflight.refused = refused
        # The next round stepped a ticket whose rows were refused (from a state that was
        # never stored): take that round back first, and apply its records again.
        redo = bool(refused and following is not None and following.undo.keys() & refused.keys())
        if redo and following is not None:
            self._undo(following)
        self._committed(inflight, refused)
        done.commit.update(
            {TopicPartition(t, p): o for (t, p), o in inflight.write.offsets.items()}
        )
        if redo:
            self._rewind()
            return False
        return True

    def _committed(self, pending: Pending, refused: Mapping[str, BaseException]) -> None:
        """After a round committed: what it did is durable, so it may be seen."""
        if refused:
            # A refused ticket keeps its last stored state; a timer's stays popped (a
            # ticket that cannot be stored would fail again every round).
            self._undo(pending, list(refused))
            for ticket_id in refused:
                partition = pending.undo.get(ticket_id, (None, None))[0]
                part = self.partitions.get(partition) if partition is not None else None
                if part is not None and ticket_id not in pending.applied:
                    part.heap.cancel(ticket_id)
        for (_, number), offset in pending.write.offsets.items():
            part = self.partitions.get(number)
            if part is not None:
                part.committed_offset = offset
                if number in pending.last_ts:
                    part.committed_timestamp = max(
                        part.committed_timestamp, pending.last_ts[number]
                    )
        by_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for row in pending.write.outbox:
            if row.ticket_id not in refused:
                by_partition[row.partition].append((row.ticket_id.encode(), row.payload))
        for number, records in by_partition.items():
            if number in self.partitions:
                self.outbox.enqueue(number, records, pending.write.outbox_up_to.get(number, 0))
        self._count([sla for sla in pending.emitted if sla.ticket_id not in refused])
        for sla in pending.fired:
            if sla.ticket_id not in refused:
                self.metrics.fire_delay_seconds.observe(max(0.0, pending.now - sla.at_ms / 1000))
        if pending.applied:
            self.metrics.events_applied.inc(
                sum(n for ticket_id, n in pending.applied.items() if ticket_id not in refused)
            )
            self.metrics.batch_seconds.observe(time.perf_counter() - pending.started)
        self.metrics.events_duplicate.inc(pending.arrivals["duplicate"])
        self.metrics.events_late.inc(pending.arrivals["late"])
        self.refresh_gauges()

    # ------------------------------------------------------------------ applying events
    async def apply_batches(self, batches: Batches, pending: Pending, done: Round) -> bool:
        """Apply a fetched batch to the round; False when its records are to be fetched
        again (the stored states of new tickets could not be read)."""
        write = pending.write
        events_by_ticket: dict[str, list[tuple[TicketEvent, bytes]]] = defaultdict(list)
        records_by_ticket = pending.records_by_ticket
        ticket_partition: dict[str, int] = {}
        first_offsets: dict[TopicPartition, int] = {}
        customer_events: list[CustomerUpdated] = []
        for tp, records in batches.items():
            first_offsets[tp] = records[0].offset
            for record in records:
                try:
                    event = parse_posted(record.value)
                except (ValidationError, ValueError, TypeError) as exc:
                    pending.poison.append(DeadLetter.of(record, _poison_reason(exc)))
                    continue
                if isinstance(event, CustomerUpdated):
                    customer_events.append(event)
                    continue
                events_by_ticket[event.ticket_id].append((event, record.value))
                records_by_ticket[event.ticket_id].append(record)
                ticket_partition[event.ticket_id] = tp.partition
            write.offsets[(self.topic, tp.partition)] = records[-1].offset + 1
            pending.last_ts[tp.partition] = records[-1].timestamp / 1000.0

        # customer.updated reads the customers' and open tickets' rows from the table: the
        # round in flight commits first, so the table holds everything applied before.
        if customer_events and not await self.settle(done):
            return False  # it failed: every partition was sought back to its stored offset

        def isolate(ticket_id: str, reason: str) -> None:
            """Take a ticket out of this batch: its records go to the dead-letter topic."""
            events_by_ticket.pop(ticket_id, None)
            for record in records_by_ticket.pop(ticket_id, ()):
                pending.poison.append(DeadLetter.of(record, reason))

        blobs = {t: self._blob(pending, t, ticket_partition[t]) for t in events_by_ticket}
        unknown = [t for t, blob in blobs.items() if blob is None]
        try:
            stored, unreadable = await self._read_states(unknown)
        except DB_ERRORS as exc:
            self.seek_back(first_offsets)
            await self.settle(done)  # a failed round in flight seeks back further
            done.retry_later("reading ticket states", exc)
            return False
        for ticket_id, problem in unreadable.items():
            isolate(ticket_id, "store: " + describe(problem))

        now = pending.now
        # Each ticket's clocks also advance, in the same step, to the instant nothing older
        # can still arrive on its partition (the last record's broker time, never later
        # than now): what fire_due would fire right after, without a second step. Later
        # deadlines, up to the partition's safe instant, are fire_due's.
        horizon = {
            p: min(now, max(self.partitions[p].last_timestamp, ts))
            for p, ts in pending.last_ts.items()
        }
        for n, ticket_id in enumerate(list(events_by_ticket)):
            if n % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            events = events_by_ticket[ticket_id]
            partition = ticket_partition[ticket_id]
            blob = blobs[ticket_id] or stored.get(ticket_id)
            try:
                step = self.step(
                    ticket_id, partition, blob, now, events=events, until=horizon[partition]
                )
            except Exception as exc:  # noqa: BLE001 - one ticket's engine failure is that ticket's
                self.cache.evict(ticket_id)  # apply may have changed it half way
                log.exception(
                    "the engine failed on a ticket; its records go to the dead-letter topic",
                    extra={"ticket_id": ticket_id},
                )
                isolate(ticket_id, "engine: " + describe(exc))
                continue
            self._stage(pending, step, ticket_id, partition)
            pending.applied[ticket_id] = len(events)
            for arrival in step.arrivals:
                pending.arrivals[arrival] += 1
            pending.emitted.extend(step.emitted)
        if customer_events:
            try:
                await self._apply_customers(customer_events, write)
            except DB_ERRORS + (DeadLetterFailed,) as exc:
                self._rewind(pending)  # nothing in flight: back to the stored offsets
                done.retry_later("applying customer events", exc)
                return False
        for partition, ts in pending.last_ts.items():
            part = self.partitions[partition]
            part.last_timestamp = max(part.last_timestamp, ts)
        return True

    async def _apply_customers(self, events: list[CustomerUpdated], write: BatchWrite) -> None:
        """customer.updated (services/sla_monitor/customers.py): the customers' rows join the
        batch's write; a tier change is published as ticket.updated to each open ticket of
        the customer, acked before the batch commits (raises DeadLetterFailed when not)."""
        ids = sorted({e.data.customer_id for e in events})
        rows, changes = customers.fold(await self.store.customers(ids), events)
        write.customers.update(rows)
        if not changes:
            return
        changed = {event.data.customer_id for event, _ in changes}
        found = {t.ticket_id: t for t in await self.store.open_tickets_of(sorted(changed))}
        for ticket_id, facts in write.facts.items():  # this batch's, fresher than the table's
            if facts.customer_id in changed:
                if write.tickets[ticket_id].open:
                    found[ticket_id] = customers.OpenTicket(
                        ticket_id, facts.customer_id, facts.customer_tier
                    )
                else:
                    found.pop(ticket_id, None)
        records = customers.derived_updates(changes, found.values())
        try:
            await send_confirmed(self.producer, self.topic, ((k, v, []) for k, v in records))
        except (TimeoutError, KafkaError, OSError) as exc:
            raise DeadLetterFailed(f"derived ticket.updated not acked: {exc}") from exc
        self.metrics.customer_retargeted.inc(len(records))

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
        refused = await self.store.write_isolating(parts, rest, before_commit)
        write.outbox_up_to = rest.outbox_up_to
        return refused

    # ------------------------------------------------------------------ timers
    async def _advance_all(
        self, stage: str, pending: Pending, due: Sequence[tuple[int, str, float]]
    ) -> int:
        """Advance these (partition, ticket, up-to) clocks into the round; how many tickets
        the engine failed on (logged, counted, skipped)."""
        failed = 0
        for n, (partition, ticket_id, until) in enumerate(due):
            if n % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            blob = self._blob(pending, ticket_id, partition)
            part = self.partitions.get(partition)
            if blob is None or part is None or ticket_id not in part.tickets:
                continue  # revoked or closed meanwhile
            try:
                step = self.step(ticket_id, partition, blob, pending.now, until=until)
            except Exception as exc:  # noqa: BLE001 - one ticket must not stop the others
                self.cache.evict(ticket_id)
                self._ticket_failed(stage, "engine", ticket_id, exc)
                failed += 1
                continue
            self._stage(pending, step, ticket_id, partition)
            pending.emitted.extend(step.emitted)
            if stage == "timer":
                pending.fired.extend(step.emitted)
        return failed

    async def fire_due(self, pending: Pending) -> None:
        """Advance the clocks due by their partitions' safe instants, into the round (an
        engine failure leaves its timer popped: it would fail again on every round)."""
        now = time.time()
        due = [
            (partition, ticket_id, horizon)
            for partition, part in self.partitions.items()
            for horizon in (part.safe_instant(now),)
            for ticket_id in part.heap.pop_due(horizon, limit=5000)
        ]
        if not due:
            return
        for partition, ticket_id, _ in due:
            # A popped timer is part of the round: undone with it (rescheduled) on failure.
            part = self.partitions[partition]
            if ticket_id not in pending.undo and ticket_id in part.tickets:
                pending.undo[ticket_id] = (partition, part.tickets[ticket_id])
        await self._advance_all("timer", pending, due)

    async def recompute_all(self, done: Round, chunk: int = 2000) -> None:
        """After a policy reload: recompute every owned open ticket under the new policies.

        The engine replays a ticket whose policy fingerprint changed; running targets are
        recounted from their original start, met and breached ones keep their outcome.
        A ticket that fails (engine or store) keeps its state and is logged and counted;
        the others go on. Each chunk commits before the next (an outage leaves the
        request standing: it starts again after the backoff).
        """
        self.cache.clear()  # states recomputed under the new policies from here on
        now = time.time()
        items = [
            (p, t, part.safe_instant(now))
            for p, part in self.partitions.items()
            for t in part.tickets
        ]
        failed = 0
        for start in range(0, len(items), chunk):
            pending = Pending(stage="recomputing after a policy change")
            failed += await self._advance_all("recompute", pending, items[start : start + chunk])
            if not pending:
                continue

            async def count_refused(refused: Mapping[str, BaseException]) -> None:
                for ticket_id, exc in refused.items():
                    self._ticket_failed("recompute", "store", ticket_id, exc)

            pending.committing = time.perf_counter()
            pending.task = asyncio.create_task(self._store(pending.write, count_refused))
            self.inflight = pending
            if not await self.settle(done):
                return
            failed += len(pending.refused)
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
        """Count and log committed SLA events; the log line carries the ids for correlation
        (its extras built only when the level keeps it)."""
        logging_info = log.isEnabledFor(logging.INFO)
        for sla in emitted:
            self.metrics.sla_events.labels(
                sla.kind, sla.target, sla.policy, sla.customer_tier or ""
            ).inc()
            if sla.kind == "sla.met" and sla.target == "first_response":
                self.metrics.first_response_seconds.labels(sla.policy).observe(sla.elapsed_seconds)
            elif sla.kind == "sla.met" and sla.target == "resolution":
                self.metrics.resolution_seconds.labels(sla.policy).observe(sla.elapsed_seconds)
            if logging_info:
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
