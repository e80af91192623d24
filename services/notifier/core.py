"""The notify pipeline's decisions, without I/O: the functional core the dispatcher drives.

    SLA event --expand--> notices (route -> quiet hours -> one per integration)
              --admit---> inhibition, silences, queued (held until not_before, then grouped)
    clock     --due-----> batches per (receiver, integration, group), silences re-checked
    result    --complete-> reminders for sent breaches (repeat_interval)

Every method takes ``now``; nothing here sleeps, reads a clock or touches the network, so
the whole pipeline is unit-tested by calling it with chosen instants. Durability is the
shell's job: it stores what :meth:`expand` returns before :meth:`admit` (deduplicating on
the notice key), and records every :class:`StatusChange` this class hands back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

from slawatch.services.notifier.calendars import Calendar
from slawatch.services.notifier.config import Receiver, RoutingConfig
from slawatch.services.notifier.model import (
    ALERTING_KINDS,
    RESOLVING_KINDS,
    Batch,
    Notice,
    NoticeKey,
    Status,
    StatusChange,
    TargetKey,
)
from slawatch.services.notifier.stages.grouping import Grouper, GroupTiming, Holding
from slawatch.services.notifier.stages.inhibit import Inhibitor, supersedes
from slawatch.services.notifier.stages.quiet_hours import place
from slawatch.services.notifier.stages.repeat import Acknowledgements, next_reminder, stopped_by
from slawatch.services.notifier.stages.silences import SilenceSet
from slawatch.shared.sla_events import SlaEvent, SlaKind


def wants_resolution(event: SlaEvent) -> bool:
    """Only news that changes a breach is worth a message: met-after-breach, retraction."""
    return event.kind == SlaKind.retracted or (event.kind == SlaKind.met and bool(event.breached))


def group_labels(notice: Notice, receiver: Receiver) -> tuple[str, ...]:
    labels = []
    for name in receiver.group_by:
        value = getattr(notice.event, name)
        labels.append("" if value is None else str(getattr(value, "value", value)))
    return tuple(labels)


class NotifierCore:
    def __init__(
        self,
        config: RoutingConfig,
        calendars: Mapping[str, Calendar] | None = None,
        silences: SilenceSet | None = None,
        inhibitor: Inhibitor | None = None,
        acks: Acknowledgements | None = None,
    ) -> None:
        self.config = config
        self.calendars: Mapping[str, Calendar] = calendars or {}
        self.silences = silences if silences is not None else SilenceSet()
        self.inhibitor = inhibitor if inhibitor is not None else Inhibitor()
        self.acks = acks if acks is not None else Acknowledgements()
        self.holding = Holding()
        self.grouper = Grouper()
        self.inflight: dict[NoticeKey, Notice] = {}
        self._cancelled: set[NoticeKey] = set()
        self._by_target: dict[TargetKey, set[NoticeKey]] = defaultdict(set)

    # ---------------------------------------------------------------- queries

    @property
    def pending_count(self) -> int:
        """Queued notices not yet handed out (held or grouped)."""
        return len(self.holding) + len(self.grouper)

    def is_live(self, key: NoticeKey) -> bool:
        """Whether an in-flight notice should still go out (not superseded or cleared)."""
        return key in self.inflight and key not in self._cancelled

    def next_wakeup(self) -> datetime | None:
        times = [t for t in (self.holding.next_due(), self.grouper.next_due()) if t is not None]
        return min(times) if times else None

    def receiver_of(self, notice: Notice) -> Receiver | None:
        receiver = self.config.receivers.get(notice.receiver)
        if receiver is None or not any(s.name == notice.integration for s in receiver.integrations):
            return None
        return receiver

    # ---------------------------------------------------------------- intake

    def expand(self, event: SlaEvent, now: datetime, shard: int | None = None) -> list[Notice]:
        """The notices an event asks for. Pure: the same event and instant, the same notices.

        ``shard`` is the SLA-topic partition the event came from (see Notice.shard)."""
        if event.kind in RESOLVING_KINDS and not wants_resolution(event):
            return []
        out: dict[NoticeKey, Notice] = {}
        for name in self.config.route(event):
            placement = place(name, self.config, self.calendars, now)
            receiver = self.config.receivers[placement.receiver]
            if event.kind in RESOLVING_KINDS and not receiver.send_resolved:
                continue
            for spec in receiver.integrations:
                notice = Notice(
                    event=event,
                    receiver=receiver.name,
                    integration=spec.name,
                    created_at=now,
                    not_before=placement.not_before,
                    via=placement.via,
                    shard=shard,
                )
                out.setdefault(notice.key, notice)
        return list(out.values())

    def admit(self, event: SlaEvent, fresh: Iterable[Notice], now: datetime) -> list[StatusChange]:
        """Apply one event: inhibition memory, clearing, then queue its fresh notices.

        ``fresh`` are the notices of ``event`` the delivery log did not already have; pass
        the event even when it has none, because met/retracted/breach still clear or
        supersede what is pending.
        """
        changes: list[StatusChange] = []
        verdict = self.inhibitor.observe(event)
        target = TargetKey.of(event)
        if verdict.clears:
            reason = f"cleared by {event.id}"
            for key in list(self._by_target.get(target, ())):
                notice = self._lookup(key)
                if notice is not None and notice.event.kind in ALERTING_KINDS:
                    changes.append(self._drop(notice, Status.cleared, reason, now))
        elif verdict.supersedes:
            reason = f"superseded by {event.id}"
            for key in list(self._by_target.get(target, ())):
                notice = self._lookup(key)
                if notice is not None and supersedes(event, notice.event):
                    changes.append(self._drop(notice, Status.inhibited, reason, now))
        for notice in fresh:
            if verdict.inhibited:
                changes.append(StatusChange(notice, Status.inhibited, verdict.reason, now))
                continue
            silence = self.silences.match(event, notice.receiver, now)
            if silence is not None:
                changes.append(StatusChange(notice, Status.silenced, f"silence {silence.id}", now))
                continue
            self._queue(notice)
        return changes

    def restore(self, notices: Sequence[Notice], now: datetime) -> list[StatusChange]:
        """Reload queued notices after a restart, in the order they were accepted.

        A notice still in flight here (its partition was revoked and handed straight back)
        is not queued a second time: its lane just keeps it.
        """
        changes: list[StatusChange] = []
        for notice in sorted(notices, key=lambda n: (n.created_at, n.notification_id)):
            if notice.key in self.inflight:  # cancelled by forget(), still indexed
                self._cancelled.discard(notice.key)
                continue
            if self.receiver_of(notice) is None:
                changes.append(
                    StatusChange(
                        notice,
                        Status.failed,
                        f"receiver {notice.receiver}/{notice.integration} is no longer in the routing file",
                        now,
                    )
                )
                continue
            if notice.repeat:
                changes.extend(self.schedule_reminders([notice], now))
            else:
                changes.extend(self.admit(notice.event, [notice], now))
        return changes

    def schedule_reminders(self, reminders: Iterable[Notice], now: datetime) -> list[StatusChange]:
        changes = []
        for reminder in reminders:
            ack = stopped_by(reminder, self.acks)
            if ack is not None:
                changes.append(self._acknowledged(reminder, ack.acknowledged_by, now))
            elif self.inhibitor.is_stale(reminder.event):
                changes.append(
                    StatusChange(
                        reminder, Status.inhibited, "the breach was met or superseded", now
                    )
                )
            else:
                self._queue(reminder)
        return changes

    # ---------------------------------------------------------------- output

    def due(self, now: datetime) -> tuple[list[Batch], list[StatusChange]]:
        """Batches whose group is due at ``now``; their notices become in flight."""
        for notice in self.holding.ready(now):
            receiver = self.receiver_of(notice)
            if receiver is None:
                continue
            timing = GroupTiming(receiver.group_wait, receiver.group_interval)
            # it joined its group when it became ready, not when we happened to look
            joined = min(notice.not_before, now)
            self.grouper.add(notice, group_labels(notice, receiver), timing, joined)
        changes: list[StatusChange] = []
        batches = []
        for batch in self.grouper.due(now):
            keep = []
            for notice in batch.notices:
                ack = stopped_by(notice, self.acks)
                if ack is not None:
                    self._unindex(notice)
                    changes.append(self._acknowledged(notice, ack.acknowledged_by, now))
                    continue
                silence = self.silences.match(notice.event, notice.receiver, now)
                if silence is not None:
                    self._unindex(notice)
                    changes.append(
                        StatusChange(notice, Status.silenced, f"silence {silence.id}", now)
                    )
                else:
                    self.inflight[notice.key] = notice
                    keep.append(notice)
            if keep:
                batch.notices = keep
                batches.append(batch)
        return batches, changes

    def complete(self, notices: Iterable[Notice], status: Status, now: datetime) -> list[Notice]:
        """In-flight notices reached ``status``; for sent breaches, their next reminders."""
        reminders = []
        for notice in notices:
            self.inflight.pop(notice.key, None)
            self._cancelled.discard(notice.key)
            self._unindex(notice)
            if status is Status.sent:
                receiver = self.receiver_of(notice)
                reminder = next_reminder(notice, receiver, now, self.acks) if receiver else None
                if reminder is not None:
                    reminders.append(reminder)
        return reminders

    def release(self, notices: Iterable[Notice]) -> None:
        """Forget in-flight notices that were dropped (their status is already recorded)."""
        for notice in notices:
            if self.inflight.pop(notice.key, None) is not None:
                self._cancelled.discard(notice.key)
                self._unindex(notice)

    def forget(self, shards: Collection[int]) -> list[Notice]:
        """Drop the notices of partitions this process no longer owns, recording nothing.

        They stay queued in the delivery log, where the partition's new owner finds them.
        In-flight ones are cancelled, so their lane skips them before its next attempt.
        """
        wanted = set(shards)
        dropped = []
        for notice in [*self.holding.notices(), *self.grouper.notices()]:
            if notice.shard in wanted:
                self.holding.discard(notice.key)
                self.grouper.discard(notice.key)
                self._unindex(notice)
                dropped.append(notice)
        for key, notice in self.inflight.items():
            if notice.shard in wanted:
                self._cancelled.add(key)
                dropped.append(notice)
        return dropped

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _acknowledged(notice: Notice, by: str, now: datetime) -> StatusChange:
        return StatusChange(notice, Status.acknowledged, f"acknowledged by {by}", now)

    def _queue(self, notice: Notice) -> None:
        self._by_target[notice.target_key].add(notice.key)
        self.holding.add(notice)

    def _lookup(self, key: NoticeKey) -> Notice | None:
        if key in self.inflight:
            return None if key in self._cancelled else self.inflight[key]
        return self.holding.get(key) or self.grouper.get(key)

    def _drop(self, notice: Notice, status: Status, reason: str, now: datetime) -> StatusChange:
        key = notice.key
        if key in self.inflight:
            self._cancelled.add(key)  # the dispatcher skips it before its next attempt
        else:
            self.holding.discard(key)
            self.grouper.discard(key)
            self._unindex(notice)
        return StatusChange(notice, status, reason, now)

    def _unindex(self, notice: Notice) -> None:
        keys = self._by_target.get(notice.target_key)
        if keys is not None:
            keys.discard(notice.key)
            if not keys:
                del self._by_target[notice.target_key]
