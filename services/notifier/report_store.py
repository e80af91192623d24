"""Scheduled reports in PostgreSQL: the lease (table ``report_runs``) that lets one of
several notifier processes send a report, and the report's rows in the delivery log
(``notification_log``, kind ``report.compliance``, no ticket, no partition).

Leases run on the database's clock, not the notifier's: processes agree on it, and a
test may drive the notifiers' schedule clock without touching it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from slawatch.services.notifier.model import Status
from slawatch.services.notifier.reports import REPORT_KIND


@dataclass(frozen=True)
class ReportRow:
    """One integration's row of a report in the delivery log."""

    status: Status
    attempts: int


class ReportStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(
        self,
        report: str,
        receiver: str,
        start: datetime,
        end: datetime,
        owner: str,
        lease_s: float,
    ) -> bool:
        """Take the lease of one report period for one receiver: True if this process
        now holds it (new, or the last holder's lease ran out), False if another holds
        it or it is done."""
        row = await self.pool.fetchrow(
            """
            INSERT INTO report_runs (report, receiver, period_start, period_end, claimed_by,
                                     lease_until)
            VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
            ON CONFLICT (report, receiver, period_start) DO UPDATE SET
                claimed_by = EXCLUDED.claimed_by,
                lease_until = EXCLUDED.lease_until,
                claims = report_runs.claims + 1
            WHERE report_runs.done_at IS NULL AND report_runs.lease_until < now()
            RETURNING claimed_by
            """,
            report,
            receiver,
            start,
            end,
            owner,
            lease_s,
        )
        return row is not None

    async def finish(self, report: str, receiver: str, start: datetime, owner: str) -> None:
        await self.pool.execute(
            "UPDATE report_runs SET done_at = now() WHERE report = $1 AND receiver = $2"
            " AND period_start = $3 AND claimed_by = $4",
            report,
            receiver,
            start,
            owner,
        )

    async def rows(
        self,
        notification_id: str,
        receiver: str,
        integrations: list[str],
        event: dict[str, Any],
        created_at: datetime,
        not_before: datetime,
    ) -> dict[str, ReportRow]:
        """The report's delivery-log rows, one per integration, inserted ``queued`` if new."""
        await self.pool.execute(
            """
            INSERT INTO notification_log (
                notification_id, receiver, integration, sla_event_id, ticket_id, kind, repeat,
                shard, status, via, event, created_at, not_before)
            SELECT $1, $2, i, $1, '', $4, 0, NULL, 'queued', NULL, $5::jsonb, $6, $7
            FROM unnest($3::text[]) AS i
            ON CONFLICT DO NOTHING
            """,
            notification_id,
            receiver,
            integrations,
            REPORT_KIND,
            json.dumps(event),
            created_at,
            not_before,
        )
        found = await self.pool.fetch(
            "SELECT integration, status, attempts FROM notification_log"
            " WHERE notification_id = $1 AND receiver = $2",
            notification_id,
            receiver,
        )
        return {r["integration"]: ReportRow(Status(r["status"]), r["attempts"]) for r in found}

    async def record(
        self,
        notification_id: str,
        receiver: str,
        integration: str,
        status: Status,
        reason: str,
        message_id: str | None,
        at: datetime,
    ) -> None:
        """One attempt's outcome; a row already final stays as it is."""
        await self.pool.execute(
            """
            UPDATE notification_log SET
                status = $4::text, reason = $5::text, attempts = attempts + 1,
                first_attempt_at = COALESCE(first_attempt_at, $7::timestamptz),
                message_id = COALESCE($6::text, message_id),
                sent_at = CASE WHEN $4::text = 'sent' THEN $7::timestamptz ELSE sent_at END,
                updated_at = now()
            WHERE notification_id = $1 AND receiver = $2 AND integration = $3
              AND status IN ('queued', 'failed')
            """,
            notification_id,
            receiver,
            integration,
            status.value,
            reason,
            message_id,
            at,
        )
