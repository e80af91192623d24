"""Silences: matchers plus a time window; a matching notice that is due is not sent.

A silence may also name receivers (``receiver`` matcher). Silences are checked when a
notice is admitted and again when its group is flushed, so a silence created during a
maintenance window also catches what was already waiting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from slawatch.services.notifier.matchers import Matchers
from slawatch.shared.sla_events import SlaEvent


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: Matchers
    starts_at: datetime
    ends_at: datetime
    created_by: str = ""
    comment: str = ""
    created_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def expired(self, now: datetime) -> bool:
        return now >= self.ends_at

    def silences(self, event: SlaEvent, receiver: str, now: datetime) -> bool:
        return self.active(now) and self.matchers.matches(event, receiver)


@dataclass
class SilenceSet:
    _by_id: dict[str, Silence] = field(default_factory=dict)

    @classmethod
    def of(cls, silences: Iterable[Silence]) -> SilenceSet:
        return cls({s.id: s for s in silences})

    def put(self, silence: Silence) -> None:
        self._by_id[silence.id] = silence

    def remove(self, silence_id: str) -> Silence | None:
        return self._by_id.pop(silence_id, None)

    def get(self, silence_id: str) -> Silence | None:
        return self._by_id.get(silence_id)

    def all(self) -> list[Silence]:
        return sorted(self._by_id.values(), key=lambda s: (s.starts_at, s.id))

    def match(self, event: SlaEvent, receiver: str, now: datetime) -> Silence | None:
        for silence in self._by_id.values():
            if silence.silences(event, receiver, now):
                return silence
        return None
