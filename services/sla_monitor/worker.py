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

The loop, the rebalance listener and lock, the backoff, the dead-letter headers and the
offset commit are the shared partitioned-consumer runtime's (shared/consumer.py). Applying
events, firing deadlines and recomputing after a policy reload all go through one
:meth:`Worker.step` of a ticket: load -> engine -> dump -> rows.
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
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from slawatch.services.sla_monitor import customers, engine_port
from slawatch.services.sla_monitor.metrics import MonitorMetrics
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
from slawatch.shared.engine import SlaRecord
from slawatch.shared.events import CustomerUpdated, TicketEvent, parse_posted
from slawatch.shared.failures import describe, is_data_error
from slawatch.shared.kafka import send_confirmed

log = logging.getLogger("slawatch.monitor")

# Everything the database client can raise; after the data errors were isolated, what is
# left is an outage (or a fault of the schema): pause and retry, never dead-letter.
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)
AT_RISK_WINDOW_S = 30 * 60


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


@dataclass
class Step:
    """One ticket after a step: its rows (None when nothing was applied) and what it emitted."""

    row: TicketRow | None = None
    facts: FactsRow | None = None
    outbox: list[OutboxRow] = field(default_factory=list)
    emitted: list[SlaRecord] = field(default_factory=list)
    retained: list[RetainedEvent] = field(default_factory=list)
    arrivals: list[str] = field(default_factory=list)  # "duplicate" / "late" events


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


class Worker(PartitionedConsumer):
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
        self.wake_outbox = wake_outbox
        self.partitions: dict[int, PartitionState] = {}
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
                break
            except DB_ERRORS as exc:
                await self.wait_out("loading assigned partitions", exc)
        self.recovered()
        for number in partitions:
            self.partitions[number] = PartitionState()
        for row in rows:
            part = self.partitions[row.partition]
            part.tickets[row.ticket_id] = row.state
            part.heap.schedule(row.ticket_id, _epoch(row.next_due))
        fresh = [TopicPartition(self.topic, number) for number in partitions]
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
            partitions,
            len(rows),
            time.perf_counter() - started,
        )

    async def drop(self, partitions: list[int]) -> None:
        for number in partitions:
            self.partitions.pop(number, None)
            try:
                self.metrics.lag.remove(str(number))
            except KeyError:
                pass  # never measured
        self.refresh_gauges()
        log.info("partitions revoked: %s", partitions)

    # ------------------------------------------------------------------ one round
    async def process(self, batches: Batches, done: Round) -> None:
        """Apply and commit what was fetched, then fire what is due."""
        if batches:
            await self.apply_batches(batches, done)
        await self._update_caught_up()
        if self.recompute_requested:
            await self.recompute_all()
        await self.fire_due(done)
        if self.assigned_once.is_set() and all(p.caught_up for p in self.partitions.values()):
            self.ready.set()

    def poll_timeout_ms(self) -> int:
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
        ``until`` (a partition's safe instant); then its rows. Raises what the engine
        raises (the caller isolates the ticket)."""
        state = engine_port.load(blob, self.policies) if blob else None
        step = Step()
        produced: list[SlaRecord] = []
        for event, raw in events:
            state, sla_events, arrival = engine_port.apply(state, event, self.policies)
            if arrival != "new":
                step.arrivals.append(arrival)
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
        # Deadlines already due when events are applied fire in fire_due() right after the
        # commit, under the partition's safe instant; applying emits only what events decide.
        step.row = TicketRow(
            ticket_id,
            partition,
            engine_port.dump(state),
            engine_port.next_due(state),
            engine_port.is_open(state),
            engine_port.earliest_deadline(state),
        )
        step.facts = engine_port.facts_row(state)
        step.outbox, step.emitted = self._finalise(produced, partition, now)
        return step

    @staticmethod
    def _stage(write: BatchWrite, step: Step) -> None:
        """Add a stepped ticket's rows to the round's write."""
        write.retained.extend(step.retained)
        if step.row is not None and step.facts is not None:
            write.tickets[step.row.ticket_id] = step.row
            write.facts[step.row.ticket_id] = step.facts
            write.outbox.extend(step.outbox)

    def _remember(self, write: BatchWrite, refused: Mapping[str, BaseException]) -> None:
        """After a commit: the committed tickets' states and deadlines in memory."""
        for ticket_id, row in write.tickets.items():
            part = self.partitions.get(row.partition)
            if part is None or ticket_id in refused:
                continue  # revoked meanwhile, or keeps its last stored state
            if row.open:
                part.tickets[ticket_id] = row.state
                part.heap.schedule(ticket_id, _epoch(row.next_due))
            else:
                part.tickets.pop(ticket_id, None)
                part.heap.cancel(ticket_id)
        self.refresh_gauges()
        if write.outbox:
            self.wake_outbox.set()

    # ------------------------------------------------------------------ applying events
    async def apply_batches(self, batches: Batches, done: Round) -> None:
        started = time.perf_counter()
        write = BatchWrite()
        poison: list[DeadLetter] = []
        events_by_ticket: dict[str, list[tuple[TicketEvent, bytes]]] = defaultdict(list)
        records_by_ticket: dict[str, list] = defaultdict(list)
        ticket_partition: dict[str, int] = {}
        last_ts: dict[int, float] = {}
        first_offsets: dict[TopicPartition, int] = {}
        customer_events: list[CustomerUpdated] = []
        for tp, records in batches.items():
            first_offsets[tp] = records[0].offset
            for record in records:
                try:
                    event = parse_posted(record.value)
                except (ValidationError, ValueError, TypeError) as exc:
                    poison.append(DeadLetter.of(record, _poison_reason(exc)))
                    continue
                if isinstance(event, CustomerUpdated):
                    customer_events.append(event)
                    continue
                events_by_ticket[event.ticket_id].append((event, record.value))
                records_by_ticket[event.ticket_id].append(record)
                ticket_partition[event.ticket_id] = tp.partition
            write.offsets[(self.topic, tp.partition)] = records[-1].offset + 1
            last_ts[tp.partition] = records[-1].timestamp / 1000.0

        def isolate(ticket_id: str, reason: str) -> None:
            """Take a ticket out of this batch: its records go to the dead-letter topic."""
            events_by_ticket.pop(ticket_id, None)
            for record in records_by_ticket.pop(ticket_id, ()):
                poison.append(DeadLetter.of(record, reason))

        unknown = [
            t for t in events_by_ticket if t not in self.partitions[ticket_partition[t]].tickets
        ]
        try:
            stored, unreadable = await self._read_states(unknown)
        except DB_ERRORS as exc:
            self.seek_back(first_offsets)
            done.retry_later("reading ticket states", exc)
            return
        for ticket_id, problem in unreadable.items():
            isolate(ticket_id, "store: " + describe(problem))

        arrivals: dict[str, int] = defaultdict(int)
        applied: dict[str, int] = {}
        emitted: list[SlaRecord] = []
        now = time.time()
        for ticket_id in list(events_by_ticket):
            events = events_by_ticket[ticket_id]
            partition = ticket_partition[ticket_id]
            blob = self.partitions[partition].tickets.get(ticket_id) or stored.get(ticket_id)
            try:
                step = self.step(ticket_id, partition, blob, now, events=events)
            except Exception as exc:  # noqa: BLE001 - one ticket's engine failure is that ticket's
                log.exception(
                    "the engine failed on a ticket; its records go to the dead-letter topic",
                    extra={"ticket_id": ticket_id},
                )
                isolate(ticket_id, "engine: " + describe(exc))
                continue
            self._stage(write, step)
            applied[ticket_id] = len(events)
            for arrival in step.arrivals:
                arrivals[arrival] += 1
            emitted.extend(step.emitted)

        async def dead_letter_refused(refused: Mapping[str, BaseException]) -> None:
            await self.dead_letter(
                DeadLetter.of(record, "store: " + describe(exc))
                for ticket_id, exc in refused.items()
                for record in records_by_ticket.get(ticket_id, ())
            )

        if customer_events:
            try:
                await self._apply_customers(customer_events, write)
            except DB_ERRORS + (DeadLetterFailed,) as exc:
                self.seek_back(first_offsets)
                done.retry_later("applying customer events", exc)
                return

        committing = time.perf_counter()
        try:
            # Poison found so far first: acked before any offset past it is committed.
            await self.dead_letter(poison)
            refused = await self._store(write, dead_letter_refused)
        except DeadLetterFailed as exc:
            self.seek_back(first_offsets)
            done.retry_later("publishing to the dead-letter topic", exc)
            return
        except DB_ERRORS as exc:
            self.seek_back(first_offsets)
            done.retry_later("committing a batch", exc)
            return
        self.metrics.commit_seconds.observe(time.perf_counter() - committing)
        self.recovered()
        self._remember(write, refused)
        for partition, ts in last_ts.items():
            part = self.partitions[partition]
            part.last_timestamp = max(part.last_timestamp, ts)
        self._count([sla for sla in emitted if sla.ticket_id not in refused])
        self.metrics.events_applied.inc(
            sum(n for ticket_id, n in applied.items() if ticket_id not in refused)
        )
        self.metrics.events_duplicate.inc(arrivals["duplicate"])
        self.metrics.events_late.inc(arrivals["late"])
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        # The database holds the offsets; Kafka gets a mirror for lag tooling.
        done.commit.update({TopicPartition(t, p): o for (t, p), o in write.offsets.items()})

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
        return await self.store.write_isolating(parts, rest, before_commit)

    # ------------------------------------------------------------------ timers
    def _advance_all(
        self, stage: str, due: Sequence[tuple[int, str, float]], now: float
    ) -> tuple[BatchWrite, list[SlaRecord], int]:
        """Advance these (partition, ticket, up-to) clocks; the round's write, what it
        emitted and how many tickets the engine failed on (logged, counted, skipped)."""
        write = BatchWrite()
        emitted: list[SlaRecord] = []
        failed = 0
        for partition, ticket_id, until in due:
            part = self.partitions.get(partition)
            blob = part.tickets.get(ticket_id) if part else None
            if blob is None:
                continue  # revoked or closed meanwhile
            try:
                step = self.step(ticket_id, partition, blob, now, until=until)
            except Exception as exc:  # noqa: BLE001 - one ticket must not stop the others
                self._ticket_failed(stage, "engine", ticket_id, exc)
                failed += 1
                continue
            self._stage(write, step)
            emitted.extend(step.emitted)
        return write, emitted, failed

    async def _commit_advanced(
        self, stage: str, write: BatchWrite, emitted: list[SlaRecord]
    ) -> tuple[dict[str, BaseException], list[SlaRecord]]:
        """Store an advancing round (raises DB_ERRORS on an outage); the refused tickets
        and the emitted events that were committed."""

        async def count_refused(refused: Mapping[str, BaseException]) -> None:
            for ticket_id, exc in refused.items():
                self._ticket_failed(stage, "store", ticket_id, exc)

        refused = await self._store(write, count_refused)
        self.recovered()
        # A refused ticket keeps its last stored state; its timer stays popped (a ticket
        # that cannot be stored would fail again every round). Its next event tries again.
        self._remember(write, refused)
        committed = [sla for sla in emitted if sla.ticket_id not in refused]
        self._count(committed)
        return refused, committed

    async def fire_due(self, done: Round) -> None:
        now = time.time()
        due = [
            (partition, ticket_id, horizon)
            for partition, part in self.partitions.items()
            for horizon in (part.safe_instant(now),)
            for ticket_id in part.heap.pop_due(horizon, limit=5000)
        ]
        # An engine failure leaves its timer popped: it would fail again on every round.
        write, emitted, _ = self._advance_all("timer", due, now)
        if not write:
            return
        try:
            _, committed = await self._commit_advanced("timer", write, emitted)
        except DB_ERRORS as exc:
            # Already due: retried at the same instant, still due.
            for partition, ticket_id, horizon in due:
                if ticket_id in write.tickets and partition in self.partitions:
                    self.partitions[partition].heap.schedule(ticket_id, horizon)
            done.retry_later("committing fired deadlines", exc)
            return
        for sla in committed:
            self.metrics.fire_delay_seconds.observe(max(0.0, now - sla.at_ms / 1000))

    async def recompute_all(self, chunk: int = 2000) -> None:
        """After a policy reload: recompute every owned open ticket under the new policies.

        The engine replays a ticket whose policy fingerprint changed; running targets are
        recounted from their original start, met and breached ones keep their outcome.
        A ticket that fails (engine or store) keeps its state and is logged and counted;
        the others go on.
        """
        now = time.time()
        items = [
            (p, t, part.safe_instant(now))
            for p, part in self.partitions.items()
            for t in part.tickets
        ]
        failed = 0
        for start in range(0, len(items), chunk):
            write, emitted, engine_failed = self._advance_all(
                "recompute", items[start : start + chunk], now
            )
            failed += engine_failed
            while True:
                try:
                    refused, _ = await self._commit_advanced("recompute", write, emitted)
                    break
                except DB_ERRORS as exc:
                    await self.wait_out("recomputing after a policy change", exc)
            failed += len(refused)
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
