"""The monitor's durable state in PostgreSQL (tables in schema.py, created by migrations).

The hot path is one transaction per consumed batch; each table gets one statement for the
whole batch (``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT ...``, COPY for the
retained events), so the cost is per batch, not per event; a table the batch did not
change gets no statement at all. asyncpg is used directly here because SQLAlchemy would
only add per-statement overhead to statements it cannot help build.

The outbox holds each SLA record as the bytes that are published; the monitor publishes
them from memory once their transaction committed and marks them sent per partition
(``sla_outbox_sent``: sent up to a seq), so the table is read only after a crash or a
rebalance, to send what the previous owner left unsent.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from pydantic_core import to_json

from slawatch.services.sla_monitor.customers import CustomerRow, OpenTicket
from slawatch.shared.db import asyncpg_dsn
from slawatch.shared.failures import is_data_error


@dataclass(slots=True)
class TicketRow:
    ticket_id: str
    partition: int
    state: bytes
    next_due: datetime | None
    open: bool
    deadline: datetime | None = None


@dataclass(slots=True)
class FactsRow:
    ticket_id: str
    policy: str | None
    customer_tier: str | None
    channel: str | None
    priority: str | None
    created_at: datetime | None
    solved_at: datetime | None
    facts: dict[str, Any]
    # The facts' work / wait times (views._work_time), as their own columns.
    agent_work_business_ms: int | None = None
    agent_work_calendar_ms: int | None = None
    requester_wait_business_ms: int | None = None
    requester_wait_calendar_ms: int | None = None
    # What reports group by and the customer.updated lookup reads (columns, not JSONB).
    customer_id: str | None = None
    team: str | None = None
    assignee: str | None = None
    handle_seconds: float = 0.0


@dataclass(slots=True)
class OutboxRow:
    sla_event_id: str
    ticket_id: str
    partition: int
    payload: bytes  # the SLA event's JSON


@dataclass(slots=True)
class RetainedEvent:
    ticket_id: str
    event_id: str
    occurred_at: datetime
    payload: str


@dataclass
class BatchWrite:
    """Everything one consumed batch (or one timer round) changes, written atomically."""

    tickets: dict[str, TicketRow] = field(default_factory=dict)
    facts: dict[str, FactsRow] = field(default_factory=dict)
    outbox: list[OutboxRow] = field(default_factory=list)
    retained: list[RetainedEvent] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    customers: dict[str, CustomerRow] = field(default_factory=dict)  # customer.updated
    # Filled by the store when committed: per partition, the highest outbox seq written.
    outbox_up_to: dict[int, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(
            self.tickets
            or self.outbox
            or self.retained
            or self.offsets
            or self.facts
            or self.customers
        )

    def split_by_ticket(self) -> tuple[dict[str, BatchWrite], BatchWrite]:
        """Each ticket's rows apart, and the rest (offsets): tickets are independent, so
        the database may refuse one ticket's rows without the others being wrong."""
        parts: dict[str, BatchWrite] = defaultdict(BatchWrite)
        for ticket_id, row in self.tickets.items():
            parts[ticket_id].tickets[ticket_id] = row
        for ticket_id, facts in self.facts.items():
            parts[ticket_id].facts[ticket_id] = facts
        for outbox in self.outbox:
            parts[outbox.ticket_id].outbox.append(outbox)
        for retained in self.retained:
            parts[retained.ticket_id].retained.append(retained)
        return dict(parts), BatchWrite(offsets=dict(self.offsets), customers=dict(self.customers))

    @classmethod
    def merged(cls, parts: Iterable[BatchWrite]) -> BatchWrite:
        out = cls()
        for part in parts:
            out.tickets.update(part.tickets)
            out.facts.update(part.facts)
            out.outbox.extend(part.outbox)
            out.retained.extend(part.retained)
            out.offsets.update(part.offsets)
            out.customers.update(part.customers)
        return out


# Called inside the isolating transaction, before it commits, with the tickets whose rows
# were refused and why: the place to dead-letter their records (raise to roll back all).
BeforeCommit = Callable[[Mapping[str, BaseException]], Awaitable[None]]


class Store:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        # One compliance report at a time: a report holds one connection while its shares
        # take more (reports._fetch), so several at once could hold the whole pool waiting
        # for each other; one at a time, a report has the cores to itself anyway.
        self.report_gate = asyncio.Semaphore(1)

    @classmethod
    async def connect(cls, database_url: str, min_size: int = 1, max_size: int = 4) -> Store:
        pool = await asyncpg.create_pool(
            asyncpg_dsn(database_url), min_size=min_size, max_size=max_size
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def write(self, batch: BatchWrite) -> None:
        """The fast path: the whole batch in one transaction."""
        if not batch:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            batch.outbox_up_to = await self._write_rows(conn, batch)

    async def write_isolating(
        self, parts: Mapping[str, BatchWrite], rest: BatchWrite, before_commit: BeforeCommit
    ) -> dict[str, BaseException]:
        """The slow path after a data error: one transaction still, but each half of the
        tickets under a savepoint, halved again where the database refuses (bisection:
        a few bad tickets among n cost O(log n) statements each). Returns the refused
        tickets; their rows are not written, everyone else's and ``rest`` are.
        A non-data error (an outage) propagates and rolls everything back.
        """
        refused: dict[str, BaseException] = {}
        up_to: dict[int, int] = {}
        async with self.pool.acquire() as conn, conn.transaction():

            async def attempt(ticket_ids: list[str]) -> None:
                try:
                    async with conn.transaction():  # a savepoint inside the outer one
                        written = await self._write_rows(
                            conn, BatchWrite.merged(parts[t] for t in ticket_ids)
                        )
                    for partition, seq in written.items():
                        up_to[partition] = max(seq, up_to.get(partition, 0))
                except Exception as exc:
                    if not is_data_error(exc):
                        raise
                    if len(ticket_ids) == 1:
                        refused[ticket_ids[0]] = exc
                        return
                    middle = len(ticket_ids) // 2
                    await attempt(ticket_ids[:middle])
                    await attempt(ticket_ids[middle:])

            if parts:
                await attempt(list(parts))
            await before_commit(refused)
            await self._write_rows(conn, rest)
        for partition, seq in up_to.items():
            rest.outbox_up_to[partition] = seq
        return refused

    async def _write_rows(self, conn: asyncpg.Connection, batch: BatchWrite) -> dict[int, int]:
        """Write the batch's rows (one statement per table it changes); per partition, the
        highest outbox seq written."""
        up_to: dict[int, int] = {}
        if batch.tickets:
            rows = list(batch.tickets.values())
            await conn.execute(
                """
                INSERT INTO ticket_state (ticket_id, partition, state, next_due, deadline, open, updated_at)
                SELECT t, p, s, d, dl, o, now()
                FROM unnest($1::text[], $2::int[], $3::bytea[], $4::timestamptz[], $5::bool[], $6::timestamptz[])
                     AS u(t, p, s, d, o, dl)
                ON CONFLICT (ticket_id) DO UPDATE SET
                  partition = EXCLUDED.partition, state = EXCLUDED.state, next_due = EXCLUDED.next_due,
                  deadline = EXCLUDED.deadline, open = EXCLUDED.open, updated_at = now()
                """,
                [r.ticket_id for r in rows],
                [r.partition for r in rows],
                [r.state for r in rows],
                [r.next_due for r in rows],
                [r.open for r in rows],
                [r.deadline for r in rows],
            )
        if batch.facts:
            rows_f = list(batch.facts.values())
            await conn.execute(
                """
                INSERT INTO ticket_facts (ticket_id, policy, customer_tier, channel, priority,
                                          created_at, solved_at, facts, customer_id, team,
                                          assignee, handle_seconds, updated_at,
                                          agent_work_business_ms, agent_work_calendar_ms,
                                          requester_wait_business_ms, requester_wait_calendar_ms)
                SELECT t, po, ti, ch, pr, ca, sa, f::jsonb, cu, tm, asg, hs, now(), wb, wc, rb, rc
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[],
                            $10::text[], $11::text[], $12::float8[],
                            $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[])
                     AS u(t, po, ti, ch, pr, ca, sa, f, cu, tm, asg, hs, wb, wc, rb, rc)
                ON CONFLICT (ticket_id) DO UPDATE SET
                  policy = EXCLUDED.policy, customer_tier = EXCLUDED.customer_tier,
                  channel = EXCLUDED.channel, priority = EXCLUDED.priority,
                  created_at = EXCLUDED.created_at, solved_at = EXCLUDED.solved_at,
                  facts = EXCLUDED.facts, customer_id = EXCLUDED.customer_id,
                  team = EXCLUDED.team, assignee = EXCLUDED.assignee,
                  handle_seconds = EXCLUDED.handle_seconds, updated_at = now(),
                  agent_work_business_ms = EXCLUDED.agent_work_business_ms,
                  agent_work_calendar_ms = EXCLUDED.agent_work_calendar_ms,
                  requester_wait_business_ms = EXCLUDED.requester_wait_business_ms,
                  requester_wait_calendar_ms = EXCLUDED.requester_wait_calendar_ms
                """,
                [r.ticket_id for r in rows_f],
                [r.policy for r in rows_f],
                [r.customer_tier for r in rows_f],
                [r.channel for r in rows_f],
                [r.priority for r in rows_f],
                [r.created_at for r in rows_f],
                [r.solved_at for r in rows_f],
                [to_json(r.facts).decode() for r in rows_f],
                [r.customer_id for r in rows_f],
                [r.team for r in rows_f],
                [r.assignee for r in rows_f],
                [r.handle_seconds for r in rows_f],
                [r.agent_work_business_ms for r in rows_f],
                [r.agent_work_calendar_ms for r in rows_f],
                [r.requester_wait_business_ms for r in rows_f],
                [r.requester_wait_calendar_ms for r in rows_f],
            )
        if batch.retained:
            await conn.copy_records_to_table(
                "retained_events",
                records=[
                    (e.ticket_id, e.event_id, e.occurred_at, e.payload) for e in batch.retained
                ],
                columns=["ticket_id", "event_id", "occurred_at", "payload"],
            )
        if batch.outbox:
            rows = await conn.fetch(
                """
                WITH written AS (
                  INSERT INTO sla_outbox (sla_event_id, ticket_id, partition, payload)
                  SELECT i, t, p, v FROM unnest($1::text[], $2::text[], $3::int[], $4::bytea[])
                         WITH ORDINALITY AS u(i, t, p, v, n)
                  ORDER BY n
                  RETURNING partition, seq
                )
                SELECT partition, max(seq) AS up_to FROM written GROUP BY partition
                """,
                [o.sla_event_id for o in batch.outbox],
                [o.ticket_id for o in batch.outbox],
                [o.partition for o in batch.outbox],
                [o.payload for o in batch.outbox],
            )
            up_to = {r["partition"]: r["up_to"] for r in rows}
        if batch.customers:
            rows_c = list(batch.customers.values())
            await conn.execute(
                """
                INSERT INTO customers (customer_id, tier, status, churned_at, changed_at, updated_at)
                SELECT c, t, s, ch, ca, now()
                FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
                     AS u(c, t, s, ch, ca)
                ON CONFLICT (customer_id) DO UPDATE SET
                  tier = EXCLUDED.tier, status = EXCLUDED.status, churned_at = EXCLUDED.churned_at,
                  changed_at = EXCLUDED.changed_at, updated_at = now()
                """,
                [c.customer_id for c in rows_c],
                [c.tier for c in rows_c],
                [c.status for c in rows_c],
                [c.churned_at for c in rows_c],
                [c.changed_at for c in rows_c],
            )
        if batch.offsets:
            items = list(batch.offsets.items())
            await conn.execute(
                """
                INSERT INTO partition_offsets (topic, partition, next_offset, updated_at)
                SELECT t, p, o, now() FROM unnest($1::text[], $2::int[], $3::bigint[]) AS u(t, p, o)
                ON CONFLICT (topic, partition) DO UPDATE SET
                  next_offset = EXCLUDED.next_offset, updated_at = now()
                """,
                [topic for (topic, _), _ in items],
                [partition for (_, partition), _ in items],
                [offset for _, offset in items],
            )
        return up_to

    async def offsets(self, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        rows = await self.pool.fetch(
            "SELECT partition, next_offset FROM partition_offsets WHERE topic = $1 AND partition = ANY($2::int[])",
            topic,
            list(partitions),
        )
        return {r["partition"]: r["next_offset"] for r in rows}

    async def load_open_tickets(self, partitions: Sequence[int]) -> list[TicketRow]:
        """The states of the open tickets of these partitions (closed ones need no timer)."""
        rows: list[TicketRow] = []
        async with self.pool.acquire() as conn, conn.transaction():
            cursor = conn.cursor(
                "SELECT ticket_id, partition, state, next_due FROM ticket_state "
                "WHERE partition = ANY($1::int[]) AND open",
                list(partitions),
                prefetch=20_000,
            )
            async for r in cursor:
                rows.append(
                    TicketRow(r["ticket_id"], r["partition"], r["state"], r["next_due"], True)
                )
        return rows

    async def customers(self, customer_ids: Sequence[str]) -> dict[str, CustomerRow]:
        rows = await self.pool.fetch(
            "SELECT customer_id, tier, status, churned_at, changed_at FROM customers "
            "WHERE customer_id = ANY($1::text[])",
            list(customer_ids),
        )
        return {r["customer_id"]: CustomerRow(*r.values()) for r in rows}

    async def open_tickets_of(self, customer_ids: Sequence[str]) -> list[OpenTicket]:
        """The open tickets of these customers, whichever partition holds them."""
        rows = await self.pool.fetch(
            "SELECT f.ticket_id, f.customer_id, f.customer_tier FROM ticket_facts f "
            "JOIN ticket_state s USING (ticket_id) WHERE f.customer_id = ANY($1::text[]) AND s.open",
            list(customer_ids),
        )
        return [OpenTicket(r["ticket_id"], r["customer_id"], r["customer_tier"]) for r in rows]

    async def ping(self, timeout: float = 1.0) -> None:
        """A cheap round trip (readiness): raises when the database does not answer."""
        await self.pool.fetchval("SELECT 1", timeout=timeout)

    async def ticket_states(self, ticket_ids: Sequence[str]) -> dict[str, bytes]:
        rows = await self.pool.fetch(
            "SELECT ticket_id, state FROM ticket_state WHERE ticket_id = ANY($1::text[])",
            list(ticket_ids),
        )
        return {r["ticket_id"]: r["state"] for r in rows}

    async def outbox_marks(self, partitions: Sequence[int]) -> dict[int, tuple[int, int]]:
        """Per partition: (sent up to, highest seq written). Rows in between were committed
        but never acked (a crash, or a revocation, came first): the new owner sends them."""
        rows = await self.pool.fetch(
            """
            SELECT p, coalesce((SELECT sent_seq FROM sla_outbox_sent s WHERE s.partition = p), 0) AS sent,
                   coalesce((SELECT max(seq) FROM sla_outbox o WHERE o.partition = p), 0) AS written
            FROM unnest($1::int[]) AS u(p)
            """,
            list(partitions),
        )
        return {r["p"]: (r["sent"], r["written"]) for r in rows}

    async def unsent_outbox(
        self, partition: int, after: int, up_to: int, limit: int
    ) -> list[asyncpg.Record]:
        """A partition's rows with ``after < seq <= up_to``, oldest first (recovery)."""
        return await self.pool.fetch(
            "SELECT seq, ticket_id, payload FROM sla_outbox "
            "WHERE partition = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
            partition,
            after,
            up_to,
            limit,
        )

    async def mark_sent(self, up_to: Mapping[int, int]) -> None:
        """Partitions' rows up to these seqs are acked (never moves a mark backwards).

        Committed without waiting for the disk (``synchronous_commit = off``): a mark lost
        to a crash only means its records are sent again by the next owner, and they carry
        deterministic ids the notifier drops as repeats. Waiting for the flush held the
        records of the next commit behind it: in bench/monitor.py's breach-latency run a
        flush took 45-490 ms on this host while the tables were being written back."""
        if not up_to:
            return
        items = list(up_to.items())
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit = off")
            await conn.execute(
                """
            INSERT INTO sla_outbox_sent (partition, sent_seq, updated_at)
            SELECT p, s, now() FROM unnest($1::int[], $2::bigint[]) AS u(p, s)
            ON CONFLICT (partition) DO UPDATE SET
              sent_seq = GREATEST(sla_outbox_sent.sent_seq, EXCLUDED.sent_seq), updated_at = now()
            """,
                [p for p, _ in items],
                [s for _, s in items],
            )

    async def due_soonest(self, until: datetime, limit: int, offset: int) -> list[asyncpg.Record]:
        """Open tickets whose earliest running deadline is at or before ``until``."""
        return await self.pool.fetch(
            "SELECT ticket_id, state FROM ticket_state WHERE open AND deadline <= $1 "
            "ORDER BY deadline, ticket_id LIMIT $2 OFFSET $3",
            until,
            limit,
            offset,
        )

    async def retained_events(self, ticket_id: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT payload FROM (SELECT DISTINCT ON (event_id) event_id, occurred_at, payload "
            "FROM retained_events WHERE ticket_id = $1 ORDER BY event_id) AS once ORDER BY occurred_at, event_id",
            ticket_id,
        )
        return [r["payload"] for r in rows]
