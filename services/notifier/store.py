"""The notifier's durable state in PostgreSQL: the delivery log and the silences.

:class:`PgDeliverySink` is the production :class:`~slawatch.services.notifier.sink.DeliverySink`:
the delivery log in PostgreSQL plus the notifications dead-letter topic in Kafka. Writes
are one statement per call whatever the number of notices (``unnest`` arrays), as in the
monitor's store. asyncpg is used directly; tables are declared in schema.py.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from slawatch.services.notifier.matchers import Matchers
from slawatch.services.notifier.model import Notice, NoticeKey, Status, StatusChange
from slawatch.services.notifier.reports import REPORT_KIND
from slawatch.services.notifier.stages.repeat import Acknowledgement
from slawatch.services.notifier.stages.silences import Silence
from slawatch.shared.db import asyncpg_dsn
from slawatch.shared.kafka import send_confirmed
from slawatch.shared.sla_events import parse_sla_event

UNFINISHED = (Status.queued.value, Status.failed.value)
SILENCE_MATCHER_FIELDS = ("receiver",)


@dataclass(frozen=True)
class LogEntry:
    """One row of the delivery log, as the read API shows it."""

    notice: Notice
    status: Status
    reason: str
    message_id: str | None
    sent_at: datetime | None
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        n = self.notice
        return {
            "notification_id": n.notification_id,
            "sla_event_id": n.event.id,
            "ticket_id": n.event.ticket_id,
            "kind": n.event.kind.value,
            "target": n.event.target.value,
            "receiver": n.receiver,
            "integration": n.integration,
            "repeat": n.repeat,
            "via": n.via,
            "status": self.status.value,
            "reason": self.reason,
            "attempts": n.attempts,
            "message_id": self.message_id,
            "created_at": n.created_at.isoformat(),
            "not_before": n.not_before.isoformat(),
            "first_attempt_at": n.first_attempt_at.isoformat() if n.first_attempt_at else None,
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class ReportLogEntry:
    """A scheduled report's row of the delivery log (no SLA event, no ticket)."""

    row: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        r = self.row
        report = json.loads(r["event"]) if isinstance(r["event"], str) else r["event"]

        def instant(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "notification_id": r["notification_id"],
            "sla_event_id": r["sla_event_id"],
            "ticket_id": "",
            "kind": r["kind"],
            "target": "",
            "receiver": r["receiver"],
            "integration": r["integration"],
            "repeat": 0,
            "via": None,
            "status": r["status"],
            "reason": r["reason"],
            "attempts": r["attempts"],
            "message_id": r["message_id"],
            "created_at": instant(r["created_at"]),
            "not_before": instant(r["not_before"]),
            "first_attempt_at": instant(r["first_attempt_at"]),
            "sent_at": instant(r["sent_at"]),
            "updated_at": instant(r["updated_at"]),
            "report": report,
        }


def report_entry(row: asyncpg.Record) -> ReportLogEntry:
    return ReportLogEntry(dict(row))


def _notice(row: asyncpg.Record) -> Notice:
    return Notice(
        event=parse_sla_event(row["event"]),
        receiver=row["receiver"],
        integration=row["integration"],
        created_at=row["created_at"],
        not_before=row["not_before"],
        repeat=row["repeat"],
        via=row["via"],
        shard=row["shard"],
        attempts=row["attempts"],
        first_attempt_at=row["first_attempt_at"],
        last_error=row["reason"] or None,
    )


def silence_from_row(row: asyncpg.Record) -> Silence:
    spec = json.loads(row["matchers"]) if isinstance(row["matchers"], str) else row["matchers"]
    return Silence(
        id=row["id"],
        matchers=Matchers.parse(
            spec.get("match"), spec.get("match_re"), extra_fields=SILENCE_MATCHER_FIELDS
        ),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        created_by=row["created_by"],
        comment=row["comment"],
        created_at=row["created_at"],
    )


class NotifierStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(
        cls, database_url: str, min_size: int = 1, max_size: int = 4
    ) -> NotifierStore:
        pool = await asyncpg.create_pool(
            asyncpg_dsn(database_url), min_size=min_size, max_size=max_size, command_timeout=30
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    # ------------------------------------------------------------ delivery log

    async def insert_new(self, notices: Sequence[Notice]) -> set[NoticeKey]:
        """Insert notices as ``queued`` unless their key exists; the keys that were new."""
        unique: dict[NoticeKey, Notice] = {}
        for notice in notices:
            unique.setdefault(notice.key, notice)
        if not unique:
            return set()
        rows = list(unique.values())
        inserted = await self.pool.fetch(
            """
            INSERT INTO notification_log (
                notification_id, receiver, integration, sla_event_id, ticket_id, kind, repeat,
                shard, status, via, event, created_at, not_before)
            SELECT * FROM unnest(
                $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::int[], $8::int[], $9::text[], $10::text[], $11::jsonb[],
                $12::timestamptz[], $13::timestamptz[])
            ON CONFLICT DO NOTHING
            RETURNING notification_id, receiver, integration
            """,
            [n.notification_id for n in rows],
            [n.receiver for n in rows],
            [n.integration for n in rows],
            [n.event.id for n in rows],
            [n.event.ticket_id for n in rows],
            [n.event.kind.value for n in rows],
            [n.repeat for n in rows],
            [n.shard for n in rows],
            [Status.queued.value] * len(rows),
            [n.via for n in rows],
            [n.event.model_dump_json(exclude_none=True) for n in rows],
            [n.created_at for n in rows],
            [n.not_before for n in rows],
        )
        return {NoticeKey(r["notification_id"], r["receiver"], r["integration"]) for r in inserted}

    async def update_status(self, changes: Sequence[StatusChange]) -> None:
        """Record transitions. A final status is never overwritten, except by ``sent``: an
        attempt already under way when a notice was superseded may still have reached the
        provider, and the log must say what really happened.
        """
        if not changes:
            return
        await self.pool.execute(
            """
            UPDATE notification_log AS l SET
                status = c.status,
                reason = c.reason,
                attempts = c.attempts,
                first_attempt_at = c.first_attempt_at,
                message_id = COALESCE(c.message_id, l.message_id),
                sent_at = CASE WHEN c.status = 'sent' THEN c.at ELSE l.sent_at END,
                updated_at = now()
            FROM unnest(
                $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                $7::timestamptz[], $8::text[], $9::timestamptz[])
                AS c(notification_id, receiver, integration, status, reason, attempts,
                     first_attempt_at, message_id, at)
            WHERE l.notification_id = c.notification_id
              AND l.receiver = c.receiver AND l.integration = c.integration
              AND (l.status IN ('queued', 'failed') OR c.status = 'sent')
            """,
            *self._change_columns(changes),
        )

    @staticmethod
    def _change_columns(changes: Sequence[StatusChange]) -> list[list[Any]]:
        # Several changes of one notice in one call: the last one wins (UPDATE ... FROM
        # applies one arbitrary match per row), so keep only the last of each key.
        last: dict[NoticeKey, StatusChange] = {}
        for change in changes:
            last[change.notice.key] = change
        items = list(last.values())
        return [
            [c.notice.notification_id for c in items],
            [c.notice.receiver for c in items],
            [c.notice.integration for c in items],
            [c.status.value for c in items],
            [c.reason for c in items],
            [c.notice.attempts for c in items],
            [c.notice.first_attempt_at for c in items],
            [c.message_id for c in items],
            [c.at for c in items],
        ]

    async def unfinished(self, shards: Collection[int]) -> list[tuple[Notice, Status]]:
        """Queued and failed notices of these partitions, oldest first (for a restart)."""
        rows = await self.pool.fetch(
            """
            SELECT * FROM notification_log
            WHERE status = ANY($1::text[]) AND shard = ANY($2::int[])
            ORDER BY created_at, notification_id
            """,
            list(UNFINISHED),
            list(shards),
        )
        return [(_notice(row), Status(row["status"])) for row in rows]

    async def log(
        self,
        *,
        ticket_id: str | None = None,
        status: str | None = None,
        receiver: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[LogEntry | ReportLogEntry]:
        rows = await self.pool.fetch(
            """
            SELECT * FROM notification_log
            WHERE ($1::text IS NULL OR ticket_id = $1)
              AND ($2::text IS NULL OR status = $2)
              AND ($3::text IS NULL OR receiver = $3)
            ORDER BY created_at DESC, notification_id, receiver, integration
            LIMIT $4 OFFSET $5
            """,
            ticket_id,
            status,
            receiver,
            limit,
            offset,
        )
        return [
            report_entry(r)
            if r["kind"] == REPORT_KIND
            else LogEntry(
                _notice(r),
                Status(r["status"]),
                r["reason"],
                r["message_id"],
                r["sent_at"],
                r["updated_at"],
            )
            for r in rows
        ]

    # ------------------------------------------------------------ silences

    async def put_silence(self, silence: Silence) -> None:
        await self.pool.execute(
            """
            INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at)
            VALUES ($1, $2::jsonb, $3, $4, $5, $6, COALESCE($7, now()))
            ON CONFLICT (id) DO UPDATE SET
                matchers = EXCLUDED.matchers, starts_at = EXCLUDED.starts_at,
                ends_at = EXCLUDED.ends_at, comment = EXCLUDED.comment, updated_at = now()
            """,
            silence.id,
            json.dumps(silence.matchers.describe()),
            silence.starts_at,
            silence.ends_at,
            silence.created_by,
            silence.comment,
            silence.created_at,
        )

    async def silences(self, *, since: datetime | None = None) -> list[Silence]:
        """All silences, or those that have not ended before ``since``."""
        rows = await self.pool.fetch(
            "SELECT * FROM silences WHERE $1::timestamptz IS NULL OR ends_at > $1"
            " ORDER BY starts_at, id",
            since,
        )
        return [silence_from_row(row) for row in rows]

    async def silence(self, silence_id: str) -> Silence | None:
        row = await self.pool.fetchrow("SELECT * FROM silences WHERE id = $1", silence_id)
        return silence_from_row(row) if row else None

    async def expire_silence(self, silence_id: str, at: datetime) -> Silence | None:
        """End a silence now (kept for the record); a silence already over is left as it is."""
        row = await self.pool.fetchrow(
            """
            UPDATE silences SET ends_at = LEAST(ends_at, GREATEST($2, starts_at)), updated_at = now()
            WHERE id = $1 RETURNING *
            """,
            silence_id,
            at,
        )
        return silence_from_row(row) if row else None


def ack_from_row(row: asyncpg.Record) -> Acknowledgement:
    return Acknowledgement(
        id=row["id"],
        ticket_id=row["ticket_id"],
        target=row["target"],
        cycle=row["cycle"],
        acknowledged_by=row["acknowledged_by"],
        acknowledged_at=row["acknowledged_at"],
        comment=row["comment"],
        withdrawn_at=row["withdrawn_at"],
        withdrawn_by=row["withdrawn_by"],
    )


class AlreadyAcknowledged(Exception):
    def __init__(self, standing: Acknowledgement) -> None:
        super().__init__(standing.id)
        self.standing = standing


class AckStore:
    """Acknowledgements of breaches (table ``acknowledgements``), on the notifier's pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def put(self, ack: Acknowledgement) -> Acknowledgement:
        """Store a new acknowledgement; :class:`AlreadyAcknowledged` if one stands."""
        row = await self.pool.fetchrow(
            """
            INSERT INTO acknowledgements
                (id, ticket_id, target, cycle, acknowledged_by, comment, acknowledged_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (ticket_id, target, cycle) WHERE withdrawn_at IS NULL DO NOTHING
            RETURNING *
            """,
            ack.id,
            ack.ticket_id,
            ack.target,
            ack.cycle,
            ack.acknowledged_by,
            ack.comment,
            ack.acknowledged_at,
        )
        if row is None:
            standing = await self.pool.fetchrow(
                "SELECT * FROM acknowledgements WHERE ticket_id = $1 AND target = $2"
                " AND cycle = $3 AND withdrawn_at IS NULL",
                ack.ticket_id,
                ack.target,
                ack.cycle,
            )
            if standing is None:  # withdrawn in between: try once more
                return await self.put(ack)
            raise AlreadyAcknowledged(ack_from_row(standing))
        return ack_from_row(row)

    async def list(
        self, *, ticket_ids: Sequence[str] | None = None, standing_only: bool = False
    ) -> list[Acknowledgement]:
        rows = await self.pool.fetch(
            """
            SELECT * FROM acknowledgements
            WHERE ($1::text[] IS NULL OR ticket_id = ANY($1::text[]))
              AND (NOT $2 OR withdrawn_at IS NULL)
            ORDER BY acknowledged_at, id
            """,
            list(ticket_ids) if ticket_ids is not None else None,
            standing_only,
        )
        return [ack_from_row(row) for row in rows]

    async def withdraw(self, ack_id: str, by: str, at: datetime) -> Acknowledgement | None:
        """Withdraw (kept for the record); one already withdrawn is left as it is."""
        row = await self.pool.fetchrow(
            """
            UPDATE acknowledgements SET
                withdrawn_at = COALESCE(withdrawn_at, $3),
                withdrawn_by = COALESCE(withdrawn_by, $2)
            WHERE id = $1 RETURNING *
            """,
            ack_id,
            by,
            at,
        )
        return ack_from_row(row) if row else None


def dead_letter_record(notice: Notice, reason: str) -> bytes:
    """The notifications-DLQ record: enough to tell the people who missed it, by hand."""
    return json.dumps(
        {
            "notification_id": notice.notification_id,
            "receiver": notice.receiver,
            "integration": notice.integration,
            "reason": reason,
            "attempts": notice.attempts,
            "first_attempt_at": notice.first_attempt_at.isoformat()
            if notice.first_attempt_at
            else None,
            "event": notice.event.model_dump(mode="json", exclude_none=True),
        },
        ensure_ascii=False,
    ).encode()


class PgDeliverySink:
    """The delivery log in PostgreSQL; given-up notices to the notifications DLQ topic."""

    def __init__(self, store: NotifierStore, producer: AIOKafkaProducer, dlq_topic: str) -> None:
        self.store = store
        self.producer = producer
        self.dlq_topic = dlq_topic

    async def enqueue(self, notices: Sequence[Notice]) -> list[Notice]:
        new = await self.store.insert_new(notices)
        fresh, seen = [], set()
        for notice in notices:
            if notice.key in new and notice.key not in seen:
                seen.add(notice.key)
                fresh.append(notice)
        return fresh

    async def record(self, changes: Sequence[StatusChange]) -> None:
        await self.store.update_status(changes)

    async def dead_letter(self, notices: Sequence[Notice], reason: str) -> None:
        # raises if the broker did not ack: the rows stay `failed` and are tried again
        await send_confirmed(
            self.producer,
            self.dlq_topic,
            (
                (
                    notice.event.ticket_id.encode(),
                    dead_letter_record(notice, reason),
                    [
                        ("slawatch-error", reason.encode()[:1000]),
                        ("slawatch-notification-id", notice.notification_id.encode()[:1000]),
                    ],
                )
                for notice in notices
            ),
        )
