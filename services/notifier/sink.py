"""Where the dispatcher's results go: the delivery log and the dead-letter topic.

:class:`DeliverySink` is the port; ``store.PgDeliverySink`` is the production adapter
(PostgreSQL + Kafka). :class:`MemorySink` keeps everything in this process, for tests and
benchmarks of the pipeline that are not about storage; the service never uses it, since it
would lose queued notifications on a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.notifier.model import Notice, NoticeKey, Status, StatusChange


class DeliverySink(Protocol):
    async def enqueue(self, notices: Sequence[Notice]) -> list[Notice]:
        """Durably queue notices; return those not already known (the rest are duplicates)."""
        ...

    async def record(self, changes: Sequence[StatusChange]) -> None:
        """Persist status transitions (and attempt counts of still-queued notices)."""
        ...

    async def dead_letter(self, notices: Sequence[Notice], reason: str) -> None:
        """Publish given-up notices with the reason; raise if that could not be done."""
        ...


@dataclass
class MemoryRow:
    notice: Notice
    status: Status
    reason: str = ""
    message_id: str | None = None
    duplicates: int = 0


@dataclass
class MemorySink:
    rows: dict[NoticeKey, MemoryRow] = field(default_factory=dict)
    dead_letters: list[tuple[Notice, str]] = field(default_factory=list)
    history: list[StatusChange] = field(default_factory=list)

    async def enqueue(self, notices: Sequence[Notice]) -> list[Notice]:
        fresh = []
        for notice in notices:
            row = self.rows.get(notice.key)
            if row is None:
                self.rows[notice.key] = MemoryRow(notice, Status.queued)
                fresh.append(notice)
            else:
                row.duplicates += 1
        return fresh

    async def record(self, changes: Sequence[StatusChange]) -> None:
        for change in changes:
            self.history.append(change)
            row = self.rows.setdefault(change.notice.key, MemoryRow(change.notice, change.status))
            row.notice, row.status, row.reason = change.notice, change.status, change.reason
            if change.message_id:
                row.message_id = change.message_id

    async def dead_letter(self, notices: Sequence[Notice], reason: str) -> None:
        self.dead_letters.extend((n, reason) for n in notices)

    def with_status(self, status: Status) -> list[Notice]:
        return [row.notice for row in self.rows.values() if row.status is status]
