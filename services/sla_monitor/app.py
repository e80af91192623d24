"""The monitor process: the consume-apply-commit worker, the outbox drainer and the read API.

Everything runs in one event loop; the worker and the drainer are background tasks
started and stopped by the FastAPI lifespan, so `slawatch monitor` is one process that
can be scaled out (partitions spread across processes by the consumer group).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from aiokafka import AIOKafkaConsumer
from fastapi import Depends, FastAPI, HTTPException, Path, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field, TypeAdapter, ValidationError

from slawatch.services.sla_monitor import board, engine_port, reports
from slawatch.services.sla_monitor.metrics import MonitorMetrics
from slawatch.services.sla_monitor.outbox import OutboxDrainer
from slawatch.services.sla_monitor.settings import MonitorSettings
from slawatch.services.sla_monitor.store import Store
from slawatch.services.sla_monitor.worker import DB_ERRORS, Worker
from slawatch.shared import http_errors
from slawatch.shared.auth import access_from, require_role
from slawatch.shared.bounds import (
    INSTANT_MIN,
    Identifier,
    Instant,
    Offset,
    check_instant,
    is_time_zone,
)
from slawatch.shared.durations import parse_duration
from slawatch.shared.http_errors import METRICS_RESPONSE, ReadyStatus, responses
from slawatch.shared.kafka import client_options, group_options, make_producer, stop_consumer
from slawatch.shared.tasks import (
    Deadline,
    cancel_all,
    finish,
    stop_budget_s,
    supervise,
    wait_or_cancel,
)

log = logging.getLogger("slawatch.monitor")
MAX_BODY_BYTES = 64 * 1024  # the read API takes no bodies; anything posted is refused early


def parse_window(text: str, field: str) -> timedelta:
    """A window in slawatch's one duration grammar (``30m``, ``2h``, shared/durations.py)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise HTTPException(422, detail=[{"field": field, "message": str(exc)}]) from None


def parse_instant(text: str | None, field: str) -> datetime | None:
    """An RFC 3339 query parameter, held to the instant range every API shares."""
    if text is None:
        return None
    try:
        return _instant.validate_python(text)
    except ValidationError as exc:
        message = exc.errors(include_url=False, include_input=False)[0]["msg"]
        raise HTTPException(422, detail=[{"field": field, "message": message}]) from None


_instant: TypeAdapter[datetime] = TypeAdapter(Instant)
MAX_REPORT_SPAN = timedelta(days=3660)  # ten years of buckets at most
BUCKETED_DEFAULT = timedelta(days=92)  # a bucketed report without `from`: the last quarter
BUCKETED_END = datetime(9998, 12, 31, tzinfo=UTC)  # the last bucket's end must be a date


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"field": field, "message": message}])


def report_query(
    from_: str | None, to: str | None, group_by: str | None, bucket: str | None, tz: str
) -> reports.Query:
    """A report request checked: a 422 names the parameter that is wrong."""
    if not is_time_zone(tz):
        raise _unprocessable("tz", "not an IANA time zone, e.g. Asia/Shanghai")
    end = parse_instant(to, "to") or check_instant(datetime.now(UTC) + timedelta(days=1))
    # Without `from`: everything, or with buckets the quarter before `to`.
    default_start = INSTANT_MIN if bucket is None else max(INSTANT_MIN, end - BUCKETED_DEFAULT)
    start = parse_instant(from_, "from") or default_start
    if end <= start:
        raise _unprocessable("to", "must be after from")
    if bucket is not None and end - start > MAX_REPORT_SPAN:
        raise _unprocessable("from", "buckets over at most ten years")
    if bucket is not None and end > BUCKETED_END:
        raise _unprocessable("to", "buckets end by 9998-12-31")
    return reports.Query(start, end, group_by, bucket, tz)


class Monitor:
    """Owns the long-lived clients and tasks; built and torn down by the lifespan."""

    def __init__(self, settings: MonitorSettings, policies: engine_port.Policies) -> None:
        self.settings = settings
        self.policies = policies
        self.metrics = MonitorMetrics()
        self.guard_calendars(policies)
        self.store: Store | None = None
        self.worker: Worker | None = None
        self.tasks: list[asyncio.Task] = []
        self.consumer: AIOKafkaConsumer | None = None
        self.producer = None
        self.drainer: OutboxDrainer | None = None
        self.worker_task: asyncio.Task | None = None
        self.outbox_task: asyncio.Task | None = None
        self._db_check: tuple[float, bool] = (0.0, True)  # (when, answered) of the last ping

    async def start(self) -> None:
        settings = self.settings
        assert settings.database_url and settings.kafka_bootstrap
        # The worker's connection, the read API's, and one per share of a report.
        self.store = await Store.connect(
            settings.database_url, max_size=3 + settings.monitor_report_parallelism
        )
        self.producer = producer = make_producer(settings)
        await producer.start()
        self.consumer = AIOKafkaConsumer(
            **client_options(settings),
            group_id=settings.monitor_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.monitor_max_batch,
            # Tansu shows aborted transactional records; we use no Kafka transactions at all.
            isolation_level="read_uncommitted",
            **group_options(settings),
        )
        drainer = OutboxDrainer(
            self.store,
            self.producer,
            settings.topic_sla,
            on_sent=self.metrics.sla_published.inc,
            batch_size=settings.monitor_outbox_batch,
        )
        self.drainer = drainer
        self.worker = Worker(
            settings, self.store, self.consumer, self.producer, self.policies, self.metrics, drainer
        )
        self.worker.install_gauges()
        self.consumer.subscribe([settings.topic_events], listener=self.worker.listener)
        await self.consumer.start()
        self.worker_task = asyncio.create_task(supervise("worker", self.worker.run, log))
        self.outbox_task = asyncio.create_task(supervise("outbox", drainer.run, log))
        kpis = asyncio.create_task(supervise("team-kpis", self.refresh_team_kpis, log))
        self.tasks = [self.worker_task, self.outbox_task, kpis]

    async def refresh_team_kpis(self) -> None:
        """The slawatch_team_* gauges, recomputed every SLAWATCH_MONITOR_TEAM_KPI_REFRESH_S
        (cancelled at stop: it holds nothing). A failed query keeps the last values."""
        window = timedelta(seconds=self.settings.monitor_team_kpi_window_s)
        while True:
            assert self.store
            try:
                await reports.refresh_team_gauges(
                    self.store, self.metrics, datetime.now(UTC), window
                )
            except DB_ERRORS as exc:
                log.warning("team KPI gauges not refreshed: %s", exc)
            await asyncio.sleep(self.settings.monitor_team_kpi_refresh_s)

    async def stop(self) -> None:
        """Graceful stop (SIGTERM/SIGINT), bounded by SLAWATCH_SHUTDOWN_TIMEOUT_S: take no
        new records, commit the batch in hand, send what the outbox holds, leave the
        consumer group (its partitions move at once), flush the producer, close the pool.
        A step that runs out of time is cancelled; nothing is committed that is not done,
        so what was cut short is redone by the next owner."""
        deadline = Deadline(stop_budget_s(self.settings.shutdown_timeout_s))
        log.info("stopping: finishing the batch in hand")
        if self.worker:
            self.worker.stopping = True
        if self.worker_task:
            await wait_or_cancel("the batch in hand", self.worker_task, deadline, log)
        # The outbox loop finishes its round and drains once more (what the last batch
        # committed), then returns; cut short only when the budget runs out.
        if self.drainer and self.outbox_task:
            self.drainer.stop()
            await wait_or_cancel("draining the outbox", self.outbox_task, deadline, log)
        await cancel_all(self.tasks)
        if self.consumer:
            await finish("leaving the consumer group", stop_consumer(self.consumer), deadline, log)
        if self.producer:
            await finish("flushing the producer", self.producer.stop(), deadline, log)
        if self.store:
            if not await finish("closing the database pool", self.store.close(), deadline, log):
                self.store.pool.terminate()
        log.info("stopped cleanly")

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """/readyz: see Worker.readiness; when the worker saw no failure, a cached cheap
        ping tells whether the database answers right now (an idle monitor touches it
        rarely)."""
        worker = self.worker
        if worker is None:
            return False, {"status": "starting"}
        ready, body = worker.readiness(self.settings.monitor_ready_max_lag)
        if not ready or self.store is None:
            return ready, body
        loop = asyncio.get_running_loop()
        checked_at, answered = self._db_check
        if loop.time() - checked_at > 2.0:
            try:
                await self.store.ping(timeout=1.0)
                answered = True
            except Exception:  # noqa: BLE001 - any failure to answer is "database failing"
                answered = False
            self._db_check = (loop.time(), answered)
        if not answered:
            return False, {**body, "status": "database failing"}
        return True, body

    def reload_policies(self) -> None:
        """SIGHUP: load the policy file again; running targets are recomputed as tickets are next touched."""
        try:
            policies = engine_port.load_policies(self.settings.policy_file)  # raises PolicyError
        except engine_port.PolicyError as exc:
            log.error("policy reload refused, keeping the current policies: %s", exc)
            return
        self.policies = policies
        if self.worker:
            self.worker.policies = policies
            self.worker.recompute_requested = True
        log.info("policies reloaded from %s", self.settings.policy_file)
        self.guard_calendars(policies)

    def guard_calendars(self, policies: engine_port.Policies) -> None:
        """The calendar coverage guard, at start and after a reload: log every calendar whose
        holiday data is not official from some date on, export how far each one is, and let
        the read API mark deadlines past it as estimated (docs/policies.md)."""
        gauge = self.metrics.calendar_official_until
        gauge.clear()
        try:
            found = engine_port.check_coverage(policies, datetime.now(UTC).date())
        except Exception:  # noqa: BLE001 - a guard that fails must not stop the monitor
            log.exception("calendar coverage guard failed; deadlines are not marked estimated")
            return
        for item in found:
            gauge.labels(calendar=item.calendar).set(item.official_until_ms / 1000)
            warning = item.warning()
            if warning is not None:
                log.warning("%s", warning)


def create_app(settings: MonitorSettings, policies: engine_port.Policies) -> FastAPI:
    monitor = Monitor(settings, policies)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await monitor.start()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, monitor.reload_policies)
        try:
            yield
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            await monitor.stop()

    app = FastAPI(title="slawatch monitor", version="1", lifespan=lifespan)
    app.state.monitor = monitor
    http_errors.install(app, max_body_bytes=MAX_BODY_BYTES)
    app.state.access = access_from(settings)  # shared/auth.py: read routes need `viewer`
    viewer = [Depends(require_role("viewer"))]
    app.include_router(board.router)  # the console's read routes (board.py)

    @app.get(
        "/v1/tickets/{ticket_id}/sla",
        summary="The SLA status of one ticket, and why its policy applies.",
        responses=responses(401, 403, 404, 422),
        dependencies=viewer,
    )
    async def ticket_sla(
        ticket_id: Annotated[Identifier, Path(description="The ticket's id.")],
    ) -> dict[str, Any]:
        assert monitor.store
        states = await monitor.store.ticket_states([ticket_id])
        if ticket_id not in states:
            raise HTTPException(404, detail=f"no ticket {ticket_id!r}")
        return engine_port.describe(
            engine_port.load(states[ticket_id], monitor.policies), datetime.now(UTC)
        )

    @app.get(
        "/v1/sla/at-risk",
        summary="Open targets due soonest.",
        responses=responses(401, 403, 422),
        dependencies=viewer,
    )
    async def at_risk(
        within: Annotated[str, Field(max_length=64)] = Query(
            "30m", description="Window, e.g. 30m, 2h; at most 3650d."
        ),
        limit: int = Query(50, ge=1, le=500),
        offset: Offset = 0,
    ) -> dict[str, Any]:
        assert monitor.store
        window = parse_window(within, "within")
        now = datetime.now(UTC)
        items = await reports.at_risk(monitor.store, monitor.policies, now, window, limit, offset)
        return {
            "within_seconds": window.total_seconds(),
            "items": items,
            "offset": offset,
            "limit": limit,
            "next_offset": offset + limit if len(items) == limit else None,
        }

    @app.get(
        "/v1/reports/compliance",
        summary="SLA compliance and service KPIs for tickets created in [from, to), per group"
        " and optionally per day, week or month (docs/reports.md).",
        responses={
            200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
            **responses(401, 403, 422),
        },
        dependencies=viewer,
    )
    async def compliance(
        from_: Annotated[str, Field(max_length=64)] | None = Query(
            None, alias="from", description="RFC 3339; default 1970-01-01T00:00:00Z."
        ),
        to: Annotated[str, Field(max_length=64)] | None = Query(
            None, description="RFC 3339, after `from`; default a day from now."
        ),
        group_by: Literal[
            "policy", "customer_tier", "channel", "priority", "assignee", "group", "customer_id"
        ] = "policy",
        bucket: Literal["day", "week", "month"] | None = Query(
            None, description="Rows per group and bucket of ticket creation; none: per group."
        ),
        tz: Annotated[str, Field(max_length=64)] = Query(
            "UTC", description="IANA time zone the buckets are cut in."
        ),
        format: Literal["json", "csv"] = "json",
    ) -> Response:
        assert monitor.store
        query = report_query(from_, to, group_by, bucket, tz)
        rows = await reports.compliance(
            monitor.store, query, monitor.settings.monitor_report_parallelism
        )
        if format == "csv":
            return PlainTextResponse(reports.to_csv(rows), media_type="text/csv")
        return JSONResponse(
            {
                "from": query.start.isoformat(),
                "to": query.end.isoformat(),
                "group_by": group_by,
                "bucket": bucket,
                "tz": tz,
                "groups": rows,
            }
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Ready while the owned partitions are loaded, caught up within "
        "SLAWATCH_MONITOR_READY_MAX_LAG records, and the database answers (docs/monitor.md).",
        response_model=ReadyStatus,
        responses={
            503: {
                "model": ReadyStatus,
                "description": "starting, catching up, lagging, database failing or stopping.",
            }
        },
    )
    async def readyz() -> JSONResponse:
        ready, body = await monitor.readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", response_class=Response, responses=METRICS_RESPONSE)
    async def metrics() -> Response:
        return Response(generate_latest(monitor.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
