"""Grouping, as Alertmanager does it: per receiver (and integration, and ``group_by``
labels), the first notice of a quiet group waits ``group_wait`` for company; after a
flush, newcomers wait until ``group_interval`` has passed since it. So a storm of
breaches becomes one message per interval listing them, instead of one message each.

Notices whose ``not_before`` lies ahead (quiet hours, reminders) are held outside any
group until then: :class:`Holding`.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slawatch.services.notifier.model import Batch, Notice, NoticeKey


@dataclass(frozen=True)
class GroupTiming:
    group_wait: timedelta
    group_interval: timedelta


GroupKey = tuple[str, str, tuple[str, ...]]  # receiver, integration, group_by values


@dataclass
class _Group:
    notices: dict[NoticeKey, Notice] = field(default_factory=dict)
    flush_at: datetime | None = None
    last_flush: datetime | None = None
    interval: timedelta = timedelta(minutes=5)


class Grouper:
    def __init__(self) -> None:
        self._groups: dict[GroupKey, _Group] = {}
        self._where: dict[NoticeKey, GroupKey] = {}

    def __len__(self) -> int:
        return len(self._where)

    def add(
        self, notice: Notice, group: tuple[str, ...], timing: GroupTiming, now: datetime
    ) -> None:
        gkey: GroupKey = (notice.receiver, notice.integration, group)
        g = self._groups.get(gkey)
        if g is None:
            g = self._groups[gkey] = _Group()
        g.interval = timing.group_interval
        if notice.key in g.notices:
            return
        g.notices[notice.key] = notice
        self._where[notice.key] = gkey
        if g.flush_at is None:
            if g.last_flush is None or now - g.last_flush >= timing.group_interval:
                g.flush_at = now + timing.group_wait
            else:
                g.flush_at = g.last_flush + timing.group_interval

    def get(self, key: NoticeKey) -> Notice | None:
        gkey = self._where.get(key)
        return self._groups[gkey].notices.get(key) if gkey is not None else None

    def discard(self, key: NoticeKey) -> Notice | None:
        gkey = self._where.pop(key, None)
        if gkey is None:
            return None
        g = self._groups[gkey]
        notice = g.notices.pop(key)
        if not g.notices:
            g.flush_at = None
        return notice

    def notices(self) -> list[Notice]:
        return [n for g in self._groups.values() for n in g.notices.values()]

    def next_due(self) -> datetime | None:
        times = [g.flush_at for g in self._groups.values() if g.flush_at is not None]
        return min(times) if times else None

    def due(self, now: datetime) -> list[Batch]:
        batches: list[Batch] = []
        for gkey, g in list(self._groups.items()):
            if g.flush_at is not None and g.flush_at <= now and g.notices:
                receiver, integration, labels = gkey
                batch = Batch(receiver, integration, labels, list(g.notices.values()))
                for key in g.notices:
                    del self._where[key]
                g.notices = {}
                g.flush_at = None
                g.last_flush = now
                batches.append(batch)
            elif not g.notices and (g.last_flush is None or now - g.last_flush >= g.interval):
                del self._groups[gkey]  # quiet long enough: the next notice waits group_wait
        return batches


class Holding:
    """Notices that may not be grouped before their ``not_before``."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, NoticeKey]] = []
        self._notices: dict[NoticeKey, tuple[int, Notice]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._notices)

    def add(self, notice: Notice) -> None:
        seq = next(self._seq)
        self._notices[notice.key] = (seq, notice)
        heapq.heappush(self._heap, (notice.not_before, seq, notice.key))

    def get(self, key: NoticeKey) -> Notice | None:
        entry = self._notices.get(key)
        return entry[1] if entry else None

    def discard(self, key: NoticeKey) -> Notice | None:
        entry = self._notices.pop(key, None)  # its heap entry is skipped lazily
        return entry[1] if entry else None

    def notices(self) -> list[Notice]:
        return [notice for _, notice in self._notices.values()]

    def _current(self, seq: int, key: NoticeKey) -> bool:
        entry = self._notices.get(key)
        return entry is not None and entry[0] == seq

    def next_due(self) -> datetime | None:
        while self._heap and not self._current(self._heap[0][1], self._heap[0][2]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def ready(self, now: datetime) -> list[Notice]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, seq, key = heapq.heappop(self._heap)
            if self._current(seq, key):
                out.append(self._notices.pop(key)[1])
        return out
