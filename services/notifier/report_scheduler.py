"""Scheduled reports, the imperative shell: look at the schedule on the notifier's clock,
take the period's lease in PostgreSQL, fetch the figures from the monitor's report API,
send them through the receiver's integrations, record each in the delivery log.

Once per period, with any number of notifier processes: the lease (report_store.py)
lets one process send a period's report to a receiver; the others skip it. Each
integration's delivery-log row is final once sent (or given up on), so a process taking
over after a crash, or retrying after a failure, sends only what has not gone out. The
one window for a repeat is a crash after the provider accepted a message and before its
row said so: at most once more, never lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from slawatch.services.notifier.clock import Clock
from slawatch.services.notifier.config import Receiver, ReportSchedule, RoutingConfig
from slawatch.services.notifier.integrations import Integration
from slawatch.services.notifier.metrics import NotifierMetrics
from slawatch.services.notifier.model import Outcome, Status
from slawatch.services.notifier.report_store import ReportStore
from slawatch.services.notifier.reports import (
    REPORT_KIND,
    Period,
    due_period,
    notification_id,
    report_view,
)

log = logging.getLogger("slawatch.notifier.reports")
MAX_REPORT_BYTES = 16 * 2**20  # the monitor's JSON; an e-mail attachment beyond this is no use


@dataclass(frozen=True)
class GivenUp:
    """A report delivery given up on: who missed which report, and why."""

    report_id: str
    receiver: str
    integration: str
    description: dict[str, Any]
    reason: str
    attempts: int

    def record(self) -> bytes:
        """Its record on the notifications dead-letter topic."""
        return json.dumps(
            {
                "notification_id": self.report_id,
                "kind": REPORT_KIND,
                "receiver": self.receiver,
                "integration": self.integration,
                "reason": self.reason,
                "attempts": self.attempts,
                "report": self.description,
            },
            ensure_ascii=False,
        ).encode()


DeadLetter = Callable[[GivenUp], Awaitable[None]]


class ReportUnavailable(Exception):
    """The monitor's report API could not give the figures (the reason is safe to log)."""


class MonitorReports:
    """The monitor's compliance report over HTTP (``GET /v1/reports/compliance``, JSON)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str | None) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def compliance(
        self, start: datetime, end: datetime, group_by: str
    ) -> list[dict[str, Any]]:
        params = {
            "from": start.astimezone(UTC).isoformat(),
            "to": end.astimezone(UTC).isoformat(),
            "group_by": group_by,
            "format": "json",
        }
        try:
            response = await self.client.get(
                f"{self.base_url}/v1/reports/compliance",
                params=params,
                headers=self.headers,
                timeout=30.0,
            )
        except httpx.HTTPError as exc:
            raise ReportUnavailable(f"monitor unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise ReportUnavailable(f"monitor answered HTTP {response.status_code}")
        if len(response.content) > MAX_REPORT_BYTES:
            raise ReportUnavailable(
                f"the report is larger than {MAX_REPORT_BYTES // 2**20} MiB: group it coarser"
            )
        try:
            groups = response.json()["groups"]
        except (ValueError, KeyError, TypeError):
            raise ReportUnavailable("monitor answered without `groups`") from None
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise ReportUnavailable("monitor answered `groups` that is not a list of objects")
        return groups


class ReportScheduler:
    """Sends the routing file's scheduled reports; one per notifier process."""

    def __init__(
        self,
        config: RoutingConfig,
        integrations: Mapping[tuple[str, str], Integration],
        store: ReportStore,
        source: MonitorReports,
        *,
        clock: Clock,
        check_s: float,
        lease_s: float,
        late_s: float,
        max_attempts: int,
        dead_letter: DeadLetter | None = None,
        owner: str | None = None,
        metrics: NotifierMetrics | None = None,
    ) -> None:
        self.config = config
        self.integrations = integrations
        self.store = store
        self.source = source
        self.clock = clock
        self.check_s = check_s
        self.lease_s = lease_s
        self.late = timedelta(seconds=late_s)
        self.max_attempts = max_attempts
        self.dead_letter = dead_letter
        self.owner = owner or f"notifier-{uuid.uuid4().hex[:12]}"
        self.checks = 0  # schedule checks done (tests wait on it instead of sleeping)
        self.stopping = False  # SIGTERM: finish the report in hand, start no other
        self.busy = False  # in a check (not sleeping between checks)
        self.metrics = metrics or NotifierMetrics()

    async def run(self) -> None:
        while not self.stopping:
            self.busy = True
            try:
                await self.check()
            finally:
                self.busy = False
            if self.stopping:
                return
            await self.clock.sleep(self.check_s)

    async def check(self) -> None:
        """Send every report due now that no process has sent yet."""
        now = self.clock.now()
        for schedule in self.config.reports:
            for name in schedule.receivers:
                if self.stopping:
                    return
                receiver = self.config.receivers[name]
                period = due_period(schedule, receiver.timezone, now, self.late)
                if period is None:
                    continue
                try:
                    await self.send(schedule, receiver, period, now)
                except ReportUnavailable as exc:
                    # The lease stays: the next try is when it runs out (notifier_report_lease_s).
                    log.warning("report %s for %s: %s", schedule.name, name, exc)
        self.checks += 1
        self.metrics.report_checks.inc()

    async def send(
        self, schedule: ReportSchedule, receiver: Receiver, period: Period, now: datetime
    ) -> None:
        start, end = period.start.astimezone(UTC), period.end.astimezone(UTC)
        if not await self.store.claim(
            schedule.name, receiver.name, start, end, self.owner, self.lease_s
        ):
            return
        groups = await self.source.compliance(period.start, period.end, schedule.group_by)
        view = report_view(schedule, receiver.name, receiver.language, period, groups, now)
        report_id = notification_id(schedule, period)
        description = {
            "report": schedule.name,
            "every": schedule.every,
            "group_by": schedule.group_by,
            "timezone": receiver.timezone,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "groups": len(groups),
        }
        rows = await self.store.rows(
            report_id,
            receiver.name,
            [spec.name for spec in receiver.integrations],
            description,
            now,
            period.send_at,
        )
        done = True
        for spec in receiver.integrations:
            row = rows[spec.name]
            if row.status.final:
                continue
            integration = self.integrations[(receiver.name, spec.name)]
            prepared = integration.report(view, now)
            # Stable across retries and processes, like an SLA notification's message id.
            key = f"{report_id}\n{receiver.name}\n{spec.name}".encode()
            prepared.message_id = hashlib.sha256(key).hexdigest()[:24]
            result = await integration.deliver(prepared)
            attempts = row.attempts + 1
            if result.outcome is Outcome.ok:
                status, reason = Status.sent, ""
                log.info("report %s sent to %s/%s", report_id, receiver.name, spec.name)
            elif result.outcome is Outcome.retryable and attempts < self.max_attempts:
                status, reason, done = Status.failed, result.reason, False
                log.warning(
                    "report %s to %s/%s failed (will retry): %s",
                    report_id,
                    receiver.name,
                    spec.name,
                    result.reason,
                )
            else:
                status, reason = await self._give_up(
                    GivenUp(
                        report_id, receiver.name, spec.name, description, result.reason, attempts
                    )
                )
            result_label = {Status.sent: "sent", Status.failed: "retry"}.get(status, "given_up")
            self.metrics.reports.labels(schedule.name, receiver.name, spec.name, result_label).inc()
            await self.store.record(
                report_id,
                receiver.name,
                spec.name,
                status,
                reason,
                prepared.message_id if status is Status.sent else None,
                self.clock.now(),
            )
        if done:
            await self.store.finish(schedule.name, receiver.name, start, self.owner)

    async def _give_up(self, miss: GivenUp) -> tuple[Status, str]:
        log.error(
            "report %s to %s/%s given up: %s",
            miss.report_id, miss.receiver, miss.integration, miss.reason,
        )  # fmt: skip
        if self.dead_letter is None:
            return Status.failed, miss.reason
        await self.dead_letter(miss)
        return Status.dlq, miss.reason
