"""Where the dispatcher's results go: the delivery log and the dead-letter topic.

:class:`DeliverySink` is the port; ``store.PgDeliverySink`` is the production adapter
(PostgreSQL + Kafka). The tests' in-memory sink lives in tests/notifier/support.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from slawatch.services.notifier.model import Notice, StatusChange


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
