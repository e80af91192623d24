"""The monitor process: the consume-apply-commit worker, the outbox drainer and the read API.

Everything runs in one event loop; the worker and the drainer are background tasks
started and stopped by the FastAPI lifespan, so `slawatch monitor` is one process that
can be scaled out (partitions spread across processes by the consumer group).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import signal
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.sla_monitor import board, engine_port, reports
from services.sla_monitor.metrics import MonitorMetrics
from services.sla_monitor.outbox import OutboxDrainer
from services.sla_monitor.settings import MonitorSettings
from services.sla_monitor.store import Store
from services.sla_monitor.worker import Worker
from shared.auth import access_from, require_role
from shared.kafka import client_options, make_producer
from shared.tasks import cancel_all, supervise

log = logging.getLogger("slawatch.monitor")


def parse_window(text: str, field: str) -> timedelta:
    try:
        return timedelta(seconds=engine_port.parse_duration(text))
    except ValueError as exc:
        raise HTTPException(422, detail=[{"field": field, "message": str(exc)}]) from None


def parse_instant(text: str | None, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(
            422, detail=[{"field": field, "message": "expected RFC 3339 with an offset"}]
        ) from None
    if moment.tzinfo is None:
        raise HTTPException(
            422, detail=[{"field": field, "message": "naive time: add an offset, e.g. Z"}]
        )
    return moment.astimezone(UTC)


class Monitor:
    """Owns the long-lived clients and tasks; built and torn down by the lifespan."""

    def __init__(self, settings: MonitorSettings, policies: engine_port.Policies) -> None:
        self.settings = settings
        self.policies = policies
        self.metrics = MonitorMetrics()
        self.store: Store | None = None
        self.worker: Worker | None = None
        self.tasks: list[asyncio.Task] = []
        self.consumer: AIOKafkaConsumer | None = None
        self.producer = None

    async def start(self) -> None:
        settings = self.settings
        assert settings.database_url and settings.kafka_bootstrap
        self.store = await Store.connect(settings.database_url)
        self.producer = make_producer(settings)
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            **client_options(settings),
            group_id=settings.monitor_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.monitor_max_batch,
            # Tansu shows aborted transactional records; we use no Kafka transactions at all.
            isolation_level="read_uncommitted",
        )
        wake = asyncio.Event()
        self.worker = Worker(
            settings, self.store, self.consumer, self.producer, self.policies, self.metrics, wake
        )
        self.worker.install_gauges()
        self.consumer.subscribe([settings.topic_events], listener=self.worker.listener)
        await self.consumer.start()
        drainer = OutboxDrainer(
            self.store,
            self.producer,
            settings.topic_sla,
            owned_partitions=lambda: list(self.worker.partitions) if self.worker else [],
            on_sent=self.metrics.sla_published.inc,
            batch_size=settings.monitor_outbox_batch,
        )
        drainer.wake = wake
        self.tasks = [
            asyncio.create_task(supervise("worker", self.worker.run, log)),
            asyncio.create_task(supervise("outbox", drainer.run, log)),
        ]

    async def stop(self) -> None:
        await cancel_all(self.tasks)
        if self.consumer:
            with contextlib.suppress(Exception):
                await self.consumer.stop()
        if self.producer:
            with contextlib.suppress(Exception):
                await self.producer.stop()
        if self.store:
            await self.store.close()

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
    app.state.access = access_from(settings)  # shared/auth.py: read routes need `viewer`
    viewer = [Depends(require_role("viewer"))]
    app.include_router(board.router)  # the console's read routes (board.py)

    @app.get(
        "/v1/tickets/{ticket_id}/sla",
        summary="The SLA status of one ticket, and why its policy applies.",
        dependencies=viewer,
    )
    async def ticket_sla(ticket_id: str) -> dict[str, Any]:
        assert monitor.store
        states = await monitor.store.ticket_states([ticket_id])
        if ticket_id not in states:
            raise HTTPException(404, detail=f"no ticket {ticket_id!r}")
        return engine_port.describe(
            engine_port.load(states[ticket_id], monitor.policies), datetime.now(UTC)
        )

    @app.get("/v1/sla/at-risk", summary="Open targets due soonest.", dependencies=viewer)
    async def at_risk(
        within: str = Query("30m", description="Window, e.g. 30m, 2h."),
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0, le=1_000_000),
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
        summary="SLA compliance and service KPIs for tickets created in [from, to).",
        dependencies=viewer,
    )
    async def compliance(
        from_: str | None = Query(None, alias="from"),
        to: str | None = Query(None),
        group_by: Literal["policy", "customer_tier", "channel", "priority"] = "policy",
        format: Literal["json", "csv"] = "json",
    ) -> Response:
        assert monitor.store
        start = parse_instant(from_, "from") or datetime(1970, 1, 1, tzinfo=UTC)
        end = parse_instant(to, "to") or datetime.now(UTC) + timedelta(days=1)
        if end <= start:
            raise HTTPException(422, detail=[{"field": "to", "message": "must be after from"}])
        rows = await reports.compliance(monitor.store, start, end, group_by)
        if format == "csv":
            buffer = io.StringIO()
            if rows:
                writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            return PlainTextResponse(buffer.getvalue(), media_type="text/csv")
        return JSONResponse(
            {"from": start.isoformat(), "to": end.isoformat(), "group_by": group_by, "groups": rows}
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Ready once the owned partitions are loaded and caught up.")
    async def readyz() -> JSONResponse:
        worker = monitor.worker
        if worker is not None and worker.ready.is_set():
            return JSONResponse({"status": "ready", "partitions": sorted(worker.partitions)})
        return JSONResponse({"status": "catching up"}, status_code=503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(monitor.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
