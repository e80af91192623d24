"""One structure for every upcoming deadline of the owned tickets.

A binary heap of ``(due_epoch, ticket_id)`` with lazy cancellation: rescheduling a ticket
only records its new due time in a dict and pushes a new entry; stale heap entries are
skipped when they surface. That keeps schedule/cancel O(log n)/O(1) with no per-ticket
asyncio handle (each costs ~3.5 us and a purge storm at a million), and memory stays two
small objects per ticket. When stale entries outnumber live ones the heap is rebuilt, so
a churn of reschedules cannot grow it without bound.
"""

from __future__ import annotations

import heapq


class DeadlineHeap:
    __slots__ = ("_heap", "_due")

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, ticket_id: object) -> bool:
        return ticket_id in self._due

    def schedule(self, ticket_id: str, due: float | None) -> None:
        """Set (or with ``None`` clear) the one due time of a ticket."""
        if due is None:
            self._due.pop(ticket_id, None)
        elif self._due.get(ticket_id) != due:
            self._due[ticket_id] = due
            heapq.heappush(self._heap, (due, ticket_id))
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._due):
            self._compact()

    def cancel(self, ticket_id: str) -> None:
        self.schedule(ticket_id, None)

    def next_due(self) -> float | None:
        """The earliest live due time (drops stale entries it meets on the way)."""
        heap, due = self._heap, self._due
        while heap:
            when, ticket_id = heap[0]
            if due.get(ticket_id) == when:
                return when
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float, limit: int | None = None) -> list[str]:
        """Remove and return the tickets due at or before ``now``, earliest first."""
        heap, due = self._heap, self._due
        out: list[str] = []
        while heap and heap[0][0] <= now and (limit is None or len(out) < limit):
            when, ticket_id = heapq.heappop(heap)
            if due.get(ticket_id) == when:
                del due[ticket_id]
                out.append(ticket_id)
        return out

    def count_due_before(self, limit: float) -> int:
        """How many tickets are due at or before ``limit`` (O(n); for scrape-time gauges)."""
        return sum(1 for when in self._due.values() if when <= limit)

    def _compact(self) -> None:
        self._heap = [(when, ticket_id) for ticket_id, when in self._due.items()]
        heapq.heapify(self._heap)
