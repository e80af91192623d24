"""The imperative shell around :class:`~slawatch.services.notifier.core.NotifierCore`.

One scheduler task asks the core what is due and hands each batch to the *lane* of its
(receiver, integration). A lane sends its messages one at a time, in order: it waits for
the integration's rate limiter, delivers, and on a retryable failure waits out the
backoff (or the provider's Retry-After) before trying the same message again - the
provider is either throttling or down, so the messages behind would fail the same way.
When a message exhausts its retries the lane dead-letters it and *opens its circuit*:
later messages get a single attempt each until one succeeds, so an outage longer than
the retry budget costs one budget, not one per message.

Every decision is the core's or a pure stage's; this module only waits, sends and
records what happened in the :class:`~slawatch.services.notifier.sink.DeliverySink`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping, Sequence

from slawatch.services.notifier.clock import Clock
from slawatch.services.notifier.core import NotifierCore
from slawatch.services.notifier.integrations import Integration, Prepared
from slawatch.services.notifier.metrics import NotifierMetrics
from slawatch.services.notifier.model import (
    Batch,
    DeliveryResult,
    Notice,
    Outcome,
    Status,
    StatusChange,
)
from slawatch.services.notifier.sink import DeliverySink
from slawatch.services.notifier.stages.ratelimit import RateLimiter
from slawatch.services.notifier.stages.retry import RetryPolicy
from slawatch.shared.sla_events import SlaEvent

log = logging.getLogger("slawatch.notifier")

LaneKey = tuple[str, str]  # receiver, integration


def correlation(notices: Sequence[Notice], **more: str) -> dict[str, object]:
    """Log fields that tie a line to its tickets and SLA events (docs/operations.md)."""
    tickets = sorted({n.event.ticket_id for n in notices})
    return {
        "ticket_id": tickets[0] if len(tickets) == 1 else tickets,
        "notification_ids": [n.notification_id for n in notices],
        **more,
    }


class Lane:
    def __init__(self, dispatcher: Dispatcher, integration: Integration) -> None:
        self.dispatcher = dispatcher
        self.integration = integration
        self.limiter = RateLimiter(integration.spec.rate_limits)
        self.queue: asyncio.Queue[Batch] = asyncio.Queue()
        self.circuit_open = False
        self.busy = False
        self.delivering = False  # a request is with the provider: never cancel it then
        self.task: asyncio.Task[None] | None = None
        # Recording a delivery (a database write) overlaps the next send; one at a time,
        # in order, so the lane's log rows are written in the order they were sent.
        self._recording: asyncio.Task[None] | None = None

    @property
    def labels(self) -> dict[str, str]:
        return {"receiver": self.integration.receiver.name, "integration": self.integration.name}

    @property
    def idle(self) -> bool:
        recording = self._recording is not None and not self._recording.done()
        return not self.busy and not recording and self.queue.empty()

    async def flush(self) -> None:
        """Wait until every delivery this lane made is recorded (before stopping)."""
        if self._recording is not None:
            with contextlib.suppress(Exception):
                await self._recording

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"lane {self.labels}")

    async def _run(self) -> None:
        while True:
            batch = await self.queue.get()
            self.busy = True
            try:
                await self._send_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a lane must outlive any one bad batch
                log.exception("lane %s/%s failed on a batch", *self.labels.values())
            finally:
                self.busy = False
                self.queue.task_done()
                self.dispatcher.wake()

    async def _send_batch(self, batch: Batch) -> None:
        clock = self.dispatcher.clock
        live = self._still_live(batch.notices)
        for prepared in self.integration.prepare(live, clock.now()):
            await self._send(prepared.notices, prepared)

    def _still_live(self, notices: list[Notice]) -> list[Notice]:
        """The notices still to go out; the others (superseded or cleared meanwhile, their
        status already recorded) are released."""
        core = self.dispatcher.core
        live = [n for n in notices if core.is_live(n.key)]
        if len(live) != len(notices):
            core.release([n for n in notices if not core.is_live(n.key)])
        return live

    async def _send(self, notices: list[Notice], ready: Prepared | None = None) -> None:
        """Send one message until delivered or given up; ``ready`` is it already built."""
        d = self.dispatcher
        clock = d.clock
        while True:
            live = self._still_live(notices)
            if len(live) != len(notices):
                notices, ready = live, None
            if not notices:
                return
            wait = self.limiter.available_at(clock.monotonic()) - clock.monotonic()
            if wait > 0:
                await clock.sleep(wait)
                ready = None  # rendered before the wait: render again, times have moved on
                continue  # something may have been cleared meanwhile
            if d.stopping:
                # Stopping: hand the notices back (still queued in the delivery log, so the
                # next owner of the partition sends them) rather than start a request.
                return
            if ready is not None:
                prepared = [ready]
                ready = None  # a retry renders again ("overdue by" moves on)
            else:
                prepared = self.integration.prepare(notices, clock.now())
            if len(prepared) != 1:  # cannot happen: these notices fitted before
                for part in prepared:
                    await self._send(part.notices)
                return
            self.limiter.record(clock.monotonic())
            started = clock.monotonic()
            self.delivering = True
            try:
                result = await self.integration.deliver(prepared[0])
            except Exception as exc:  # noqa: BLE001 - an integration bug must not lose notices
                log.exception("integration %s/%s raised", *self.labels.values())
                result = DeliveryResult.retryable(f"internal error: {type(exc).__name__}")
            finally:
                self.delivering = False
            d.metrics.attempt_seconds.labels(self.integration.type, result.outcome.value).observe(
                clock.real_seconds(clock.monotonic() - started)
            )
            now = clock.now()
            notices = [n.with_attempt(now, result.reason or None) for n in notices]
            if result.delivered:
                self.circuit_open = False
                self._record_later(notices, prepared[0].message_id, now)
                return
            # Superseded or cleared while the attempt was out: that status is recorded
            # already, and a "queued" (or "failed") written now would overwrite it for good.
            notices = self._still_live(notices)
            if not notices:
                return
            if result.retry_after:
                self.limiter.pause_until(clock.monotonic() + result.retry_after)
            attempts = max(n.attempts for n in notices)
            first = min(n.first_attempt_at or now for n in notices)
            elapsed = (now - first).total_seconds()
            delay = None
            if not self.circuit_open:
                delay = d.retry.next_delay(attempts, elapsed, result, d.rng)
            if delay is None:
                reason = d.retry.give_up_reason(attempts, result)
                if self.circuit_open and result.outcome is Outcome.retryable:
                    reason = (
                        f"circuit open after an earlier message exhausted its retries; {reason}"
                    )
                if result.outcome is Outcome.retryable:
                    self.circuit_open = True
                await d.given_up(self, notices, reason, now)
                return
            log.info(
                "retrying %d notification(s) to %s/%s in %.1fs: %s",
                len(notices),
                *self.labels.values(),
                delay,
                result.reason,
            )
            d.metrics.retried.labels(**self.labels).inc(len(notices))
            await d.sink.record(
                [StatusChange(n, Status.queued, result.reason, now) for n in notices]
            )
            await clock.sleep(delay)

    def _record_later(self, notices: list[Notice], message_id: str, now) -> None:
        previous = self._recording

        async def record() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            try:
                await self.dispatcher.delivered(self, notices, message_id, now)
            except Exception:  # noqa: BLE001 - the rows stay queued; logged, resent on restart
                log.exception("recording a delivery to %s/%s failed", *self.labels.values())

        self._recording = asyncio.create_task(record())


class Dispatcher:
    def __init__(
        self,
        core: NotifierCore,
        integrations: Mapping[LaneKey, Integration],
        sink: DeliverySink,
        *,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        metrics: NotifierMetrics | None = None,
        rng: random.Random | None = None,
        max_tick_s: float = 60.0,
    ) -> None:
        self.core = core
        self.sink = sink
        self.clock = clock or Clock()
        self.retry = retry or RetryPolicy()
        self.metrics = metrics or NotifierMetrics()
        self.rng = rng or random.Random()
        self.max_tick_s = max_tick_s
        self.lanes = {key: Lane(self, integration) for key, integration in integrations.items()}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._submit_lock = asyncio.Lock()
        self.stopping = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        for lane in self.lanes.values():
            lane.start()
        self._task = asyncio.create_task(self._schedule(), name="notifier scheduler")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop sending. Whatever was not sent stays queued in the sink for the next start.

        The scheduler stops first, so no lane is handed a batch while lanes stop. A lane
        with a request at the provider is *not* cancelled: cancelling there sent the
        message without recording it, and the restarted notifier sent it again. Lanes
        start no new request once stopping; those in flight get up to ``timeout`` seconds
        to finish, and every delivery a provider accepted is recorded as sent before this
        returns. (Only a request still open when the timeout ends is cut off: the provider
        may or may not have it, and it stays queued - the one case that can repeat.)
        """
        self.stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(lane.delivering for lane in self.lanes.values()):
            if loop.time() > deadline:
                busy = [lane.labels for lane in self.lanes.values() if lane.delivering]
                log.warning("stopping with deliveries still in flight, left queued: %s", busy)
                break
            await asyncio.sleep(0.01)
        for lane in self.lanes.values():  # what was delivered gets recorded as such
            await lane.flush()
        tasks = [lane.task for lane in self.lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for lane in self.lanes.values():  # a delivery that finished as it was cancelled
            await lane.flush()

    def wake(self) -> None:
        self._wake.set()

    @property
    def idle(self) -> bool:
        """Nothing grouped or in flight, and nothing held is due yet (reminders may wait)."""
        held = self.core.holding.next_due()
        return (
            len(self.core.grouper) == 0
            and not self.core.inflight
            and (held is None or held > self.clock.now())
            and all(lane.idle for lane in self.lanes.values())
        )

    # ------------------------------------------------------------ intake

    async def submit(self, events: Sequence[SlaEvent], shard: int | None = None) -> int:
        """Queue the notices of these events durably, then let the core decide.

        Returns how many notices were new. Once this returns, every notice of the events
        is in the delivery log (queued or already final): the consumer may commit.
        ``shard`` is the SLA-topic partition the events came from.
        """
        async with self._submit_lock:
            now = self.clock.now()
            candidates = [(event, self.core.expand(event, now, shard)) for event in events]
            everything = [n for _, notices in candidates for n in notices]
            fresh = await self.sink.enqueue(everything) if everything else []
            fresh_keys = {n.key for n in fresh}
            unclaimed = set(fresh_keys)
            for notice in everything:
                if notice.key in unclaimed:
                    unclaimed.discard(notice.key)  # the first of equal keys is the fresh one
                else:
                    self.metrics.deduplicated.labels(notice.receiver, notice.integration).inc()
            changes: list[StatusChange] = []
            for event, notices in candidates:
                changes += self.core.admit(event, [n for n in notices if n.key in fresh_keys], now)
            await self.record(changes)
            self._update_pending()
        self.wake()
        return len(fresh)

    async def restore(self, notices: Sequence[Notice]) -> None:
        """Reload what the delivery log still had queued (after a restart)."""
        async with self._submit_lock:
            changes = self.core.restore(notices, self.clock.now())
            failed = [c for c in changes if c.status is Status.failed]
            await self.record([c for c in changes if c.status is not Status.failed])
            for change in failed:
                await self._dead_letter([change.notice], change.reason, self.clock.now())
            self._update_pending()
        self.wake()

    async def forget(self, shards: Sequence[int]) -> int:
        """Partitions moved to another notifier: drop their notices here (not in the log)."""
        async with self._submit_lock:
            dropped = self.core.forget(shards)
            self._update_pending()
        self.wake()
        return len(dropped)

    async def dead_letter_again(self, notices: Sequence[tuple[Notice, str]]) -> None:
        """Finish dead-lettering notices a previous process had given up on (status failed)."""
        for notice, reason in notices:
            await self._dead_letter([notice], reason, self.clock.now())

    # ------------------------------------------------------------ outcomes

    async def record(self, changes: Sequence[StatusChange]) -> None:
        if not changes:
            return
        counters = {
            Status.silenced: self.metrics.silenced,
            Status.inhibited: self.metrics.inhibited,
            Status.cleared: self.metrics.cleared,
            Status.acknowledged: self.metrics.acknowledged,
        }
        for change in changes:
            counter = counters.get(change.status)
            if counter is not None:
                counter.labels(change.notice.receiver, change.notice.integration).inc()
        await self.sink.record(changes)

    async def delivered(self, lane: Lane, notices: list[Notice], message_id: str, now) -> None:
        labels = lane.labels
        log.info(
            "sent %d notification(s) to %s/%s",
            len(notices),
            *labels.values(),
            extra=correlation(notices, message_id=message_id),
        )
        self.metrics.messages.labels(**labels).inc()
        self.metrics.sent.labels(**labels).inc(len(notices))
        for notice in notices:
            if notice.repeat == 0:
                latency = (now - notice.event.occurred_at).total_seconds()
                self.metrics.latency.labels(**labels).observe(max(latency, 0.0))
        reminders = self.core.complete(notices, Status.sent, now)
        await self.sink.record([StatusChange(n, Status.sent, "", now, message_id) for n in notices])
        if reminders:
            async with self._submit_lock:
                fresh = await self.sink.enqueue(reminders)
                await self.record(self.core.schedule_reminders(fresh, now))
        self._update_pending()
        self.wake()

    async def given_up(self, lane: Lane, notices: list[Notice], reason: str, now) -> None:
        log.warning(
            "giving up on %d notification(s) to %s/%s: %s",
            len(notices),
            *lane.labels.values(),
            reason,
            extra=correlation(notices),
        )
        self.core.complete(notices, Status.failed, now)
        await self._dead_letter(notices, reason, now)
        self._update_pending()

    async def _dead_letter(self, notices: list[Notice], reason: str, now) -> None:
        for notice in notices:
            self.metrics.failed.labels(notice.receiver, notice.integration).inc()
        await self.sink.record([StatusChange(n, Status.failed, reason, now) for n in notices])
        delay = 1.0
        while True:
            try:
                await self.sink.dead_letter(notices, reason)
                break
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the record stays `failed` until this works
                log.exception("could not dead-letter %d notification(s); retrying", len(notices))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        for notice in notices:
            self.metrics.dead_lettered.labels(notice.receiver, notice.integration).inc()
        await self.sink.record([StatusChange(n, Status.dlq, reason, now) for n in notices])

    # ------------------------------------------------------------ scheduling

    async def _schedule(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock.now()
            async with self._submit_lock:
                batches, changes = self.core.due(now)
                await self.record(changes)
            for batch in batches:
                lane = self.lanes.get((batch.receiver, batch.integration))
                if lane is None:  # cannot happen with lanes built from the same config
                    log.error("no lane for %s/%s", batch.receiver, batch.integration)
                    continue
                lane.queue.put_nowait(batch)
            self._update_pending()
            wake_at = self.core.next_wakeup()
            timeout = self.max_tick_s
            if wake_at is not None:
                timeout = min(max((wake_at - self.clock.now()).total_seconds(), 0.0), timeout)
            if timeout <= 0:
                await asyncio.sleep(0)
                continue
            # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancellation that
            # arrives as the event is set (lanes wake us while being cancelled in stop()).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.clock.real_seconds(timeout)):
                    await self._wake.wait()

    def _update_pending(self) -> None:
        self.metrics.pending.set(self.core.pending_count + len(self.core.inflight))


def lanes_for(
    config,
    renderer,
    client,
    wall=None,
) -> dict[LaneKey, Integration]:
    """One integration instance per (receiver, integration) of the routing file."""
    from slawatch.services.notifier.integrations import build_integration

    out: dict[LaneKey, Integration] = {}
    for receiver in config.receivers.values():
        for spec in receiver.integrations:
            kwargs = {"wall": wall} if wall is not None else {}
            out[(receiver.name, spec.name)] = build_integration(
                spec, receiver, renderer, client, **kwargs
            )
    return out


__all__ = ["Dispatcher", "Lane", "lanes_for"]
