"""The notifier process: consumer, dispatcher and the HTTP API, in one event loop.

HTTP: silences (``/v1/silences``), the delivery log (``/v1/notifications``), ``/healthz``,
``/readyz``, ``/metrics``. (The example routing file's webhook receiver is a dev tool of its
own, services/dev/webhook_sink.py.)
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import Depends, FastAPI, HTTPException, Path, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from slawatch.services.notifier.calendars import Calendar
from slawatch.services.notifier.clock import Clock
from slawatch.services.notifier.config import RoutingConfig
from slawatch.services.notifier.consumer import SlaConsumer
from slawatch.services.notifier.core import NotifierCore
from slawatch.services.notifier.dispatcher import Dispatcher, lanes_for
from slawatch.services.notifier.integrations import build_integration
from slawatch.services.notifier.matchers import (
    MAX_PATTERN_LENGTH,
    MAX_VALUE_LENGTH,
    MAX_VALUES,
    MatcherError,
    Matchers,
)
from slawatch.services.notifier.metrics import NotifierMetrics
from slawatch.services.notifier.model import Status
from slawatch.services.notifier.report_scheduler import GivenUp, MonitorReports, ReportScheduler
from slawatch.services.notifier.report_store import ReportStore
from slawatch.services.notifier.settings import NotifierSettings
from slawatch.services.notifier.stages.repeat import Acknowledgement, Acknowledgements
from slawatch.services.notifier.stages.retry import RetryPolicy
from slawatch.services.notifier.stages.silences import Silence, SilenceSet
from slawatch.services.notifier.store import (
    SILENCE_MATCHER_FIELDS,
    AckStore,
    AlreadyAcknowledged,
    NotifierStore,
    PgDeliverySink,
)
from slawatch.services.notifier.templates import Renderer
from slawatch.shared import http_errors
from slawatch.shared.auth import DEV_TOKEN, ApiKeys, OperatorKey, access_from, require_role
from slawatch.shared.bounds import Identifier, Instant, InstantRangeError, Line, Offset, Text, shift
from slawatch.shared.durations import parse_duration
from slawatch.shared.http_errors import METRICS_RESPONSE, ReadyStatus, responses
from slawatch.shared.kafka import (
    client_options,
    group_options,
    make_producer,
    send_confirmed,
    stop_consumer,
)
from slawatch.shared.sla_events import Target
from slawatch.shared.tasks import (
    Deadline,
    cancel_all,
    finish,
    stop_budget_s,
    supervise,
    wait_or_cancel,
)

log = logging.getLogger("slawatch.notifier")

FETCH_MAX_WAIT_MS = 50
MAX_BODY_BYTES = 64 * 1024  # a silence is a few hundred bytes


class Notifier:
    """Owns the long-lived clients and tasks; built and torn down by the lifespan."""

    def __init__(
        self,
        settings: NotifierSettings,
        config: RoutingConfig,
        calendars: Mapping[str, Calendar] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or Clock()  # the schedule of reports runs on it (tests drive it)
        self.reports: ReportScheduler | None = None
        self.reports_task: asyncio.Task | None = None
        self.config = config
        self.calendars = calendars or {}
        self.metrics = NotifierMetrics()
        self.store: NotifierStore | None = None
        self.acks: AckStore | None = None
        self.producer: AIOKafkaProducer | None = None
        self.kafka: AIOKafkaConsumer | None = None
        self.client: httpx.AsyncClient | None = None
        self.dispatcher: Dispatcher | None = None
        self.consumer: SlaConsumer | None = None
        self.consumer_task: asyncio.Task | None = None
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        s = self.settings
        assert s.database_url and s.kafka_bootstrap
        self.store = await NotifierStore.connect(s.database_url)
        self.producer = make_producer(s)
        await self.producer.start()
        self.acks = AckStore(self.store.pool)
        silences = SilenceSet.of(await self.store.silences(since=datetime.now(UTC)))
        acks = Acknowledgements.of(await self.acks.list(standing_only=True))
        core = NotifierCore(self.config, calendars=self.calendars, silences=silences, acks=acks)
        # Provider URLs are secrets: never follow a redirect to somewhere else with the body.
        self.client = httpx.AsyncClient(follow_redirects=False)
        self.dispatcher = Dispatcher(
            core,
            lanes_for(self.config, Renderer(s.notifier_templates_dir), self.client),
            PgDeliverySink(self.store, self.producer, s.topic_notifications_dlq),
            retry=RetryPolicy(
                max_attempts=s.notifier_retry_max_attempts,
                base_s=s.notifier_retry_base_s,
                cap_s=s.notifier_retry_cap_s,
                budget_s=s.notifier_retry_budget_s,
            ),
            metrics=self.metrics,
        )
        await self.dispatcher.start()
        self.kafka = AIOKafkaConsumer(
            **client_options(s),
            group_id=s.notifier_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.notifier_max_batch,
            # A breach should reach people fast: don't let an idle fetch park for the
            # default 500 ms (brokers that don't answer a parked fetch early add it all).
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            isolation_level="read_uncommitted",  # slawatch uses no Kafka transactions
            **group_options(s),
        )
        self.consumer = SlaConsumer(
            self.kafka,
            self.producer,
            self.dispatcher,
            self.store,
            self.metrics,
            topic=s.topic_sla,
            dlq_topic=s.topic_notifications_dlq,
            max_batch=s.notifier_max_batch,
        )
        self.kafka.subscribe([s.topic_sla], listener=self.consumer.listener)
        await self.kafka.start()
        self.consumer_task = asyncio.create_task(supervise("consumer", self.consumer.run, log))
        self.tasks = [
            self.consumer_task,
            asyncio.create_task(supervise("silences", self._refresh_silences, log)),
        ]
        if self.config.reports:
            self.reports = self._report_scheduler()
            self.reports_task = asyncio.create_task(supervise("reports", self.reports.run, log))
            self.tasks.append(self.reports_task)

    def _report_scheduler(self) -> ReportScheduler:
        """Scheduled reports (the routing file's `reports`), with their own integrations."""
        s = self.settings
        assert self.store and self.client
        renderer = Renderer(s.notifier_templates_dir)
        integrations = {
            (receiver.name, spec.name): build_integration(spec, receiver, renderer, self.client)
            for receiver in self.config.receivers.values()
            for spec in receiver.integrations
        }

        async def dead_letter(miss: GivenUp) -> None:
            headers = [
                ("slawatch-error", miss.reason.encode()[:1000]),
                ("slawatch-notification-id", miss.report_id.encode()[:1000]),
            ]
            await send_confirmed(
                self.producer,
                s.topic_notifications_dlq,
                [(miss.receiver.encode(), miss.record(), headers)],
            )

        return ReportScheduler(
            self.config,
            integrations,
            ReportStore(self.store.pool),
            # In dev the monitor takes the documented dev token (shared/auth.py).
            MonitorReports(
                self.client,
                s.notifier_monitor_url,
                s.notifier_monitor_token or (DEV_TOKEN if s.is_dev else None),
            ),
            clock=self.clock,
            check_s=s.notifier_report_check_s,
            lease_s=s.notifier_report_lease_s,
            late_s=s.notifier_report_late_s,
            max_attempts=s.notifier_retry_max_attempts,
            dead_letter=dead_letter,
            metrics=self.metrics,
        )

    async def _refresh_silences(self) -> None:
        """Pick up silences made or expired through other notifier processes."""
        while True:
            await asyncio.sleep(self.settings.notifier_silence_refresh_s)
            await self.reload_silences()

    async def reload_silences(self) -> None:
        """Silences and acknowledgements made or ended through other notifier processes."""
        assert self.store and self.acks and self.dispatcher
        current = await self.store.silences(since=datetime.now(UTC))
        self.dispatcher.core.silences = SilenceSet.of(current)
        standing = await self.acks.list(standing_only=True)
        self.dispatcher.core.acks = Acknowledgements.of(standing)

    async def stop(self) -> None:
        """Graceful stop (SIGTERM/SIGINT), bounded by SLAWATCH_SHUTDOWN_TIMEOUT_S: take no
        new records and commit the batch in hand; let deliveries in flight finish and
        record them (sent, or still queued for the next owner); leave the consumer group;
        flush the producer; close the pool."""
        deadline = Deadline(stop_budget_s(self.settings.shutdown_timeout_s))
        log.info("stopping: finishing the batch and the deliveries in hand")
        if self.consumer:
            self.consumer.stopping = True
        if self.reports:
            self.reports.stopping = True  # finish the report in hand, start no other
        if self.consumer_task:
            await wait_or_cancel("the batch in hand", self.consumer_task, deadline, log)
        if self.reports and self.reports_task:
            # A report being sent is finished and recorded; a scheduler between checks stops.
            if self.reports.busy:
                await wait_or_cancel("the report in hand", self.reports_task, deadline, log)
        await cancel_all(self.tasks)
        if self.dispatcher:
            # Most of what is left; the rest is for leaving the group and closing.
            budget = max(deadline.left() - 2.0, deadline.left() * 0.7)
            await finish(
                "finishing deliveries", self.dispatcher.stop(timeout=budget), deadline, log
            )
        if self.kafka:
            await finish("leaving the consumer group", stop_consumer(self.kafka), deadline, log)
        if self.client:
            await finish("closing the HTTP client", self.client.aclose(), deadline, log)
        if self.producer:
            await finish("flushing the producer", self.producer.stop(), deadline, log)
        if self.store:
            if not await finish("closing the database pool", self.store.close(), deadline, log):
                self.store.pool.terminate()
        log.info("stopped cleanly")


# ---------------------------------------------------------------- silences API


SilenceId = Annotated[Identifier, Path(description="The silence's id.")]
MatcherName = Annotated[Line, Field(min_length=1, max_length=64)]
MatcherText = Annotated[Line, Field(max_length=MAX_VALUE_LENGTH)]
MatcherScalar = MatcherText | Annotated[int, Field(ge=0, le=10**9)]
MatcherValue = MatcherScalar | Annotated[list[MatcherScalar], Field(max_length=MAX_VALUES)]


class SilenceIn(BaseModel):
    """A new silence. Matchers are the routing file's: `match` (equal to one of) and
    `match_re` (full regular-expression match), plus `receiver`."""

    model_config = ConfigDict(extra="forbid")

    match: dict[MatcherName, MatcherValue] = Field(
        default_factory=dict, max_length=32, examples=[{"group": ["billing"]}]
    )
    match_re: dict[MatcherName, Annotated[Line, Field(max_length=MAX_PATTERN_LENGTH)]] = Field(
        default_factory=dict, max_length=32
    )
    starts_at: Instant | None = Field(None, description="Default: now.")
    ends_at: Instant | None = Field(None, description="Give ends_at or duration.")
    duration: Annotated[Line, Field(max_length=64)] | None = Field(
        None, description="e.g. 2h, 30m; instead of ends_at; at most 3650d."
    )
    created_by: Annotated[Line, Field(min_length=1, max_length=128)] | None = Field(
        None, description="Default: the API key's name."
    )
    comment: Annotated[Text, Field(max_length=2000)] = ""


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"field": field, "message": message}])


def silence_state(silence: Silence, now: datetime) -> str:
    if now < silence.starts_at:
        return "pending"
    return "active" if now < silence.ends_at else "expired"


def silence_json(silence: Silence, now: datetime) -> dict[str, Any]:
    return {
        "id": silence.id,
        **silence.matchers.describe(),
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "state": silence_state(silence, now),
        "created_by": silence.created_by,
        "comment": silence.comment,
        "created_at": silence.created_at.isoformat() if silence.created_at else None,
    }


def build_silence(body: SilenceIn, author: str, now: datetime) -> Silence:
    """Validate a request into a silence; HTTP 422 naming the field otherwise."""
    try:
        matchers = Matchers.parse(body.match, body.match_re, extra_fields=SILENCE_MATCHER_FIELDS)
    except MatcherError as exc:
        where = (
            "match_re" if exc.field in body.match_re and exc.field not in body.match else "match"
        )
        raise _unprocessable(f"{where}.{exc.field}", exc.message) from None
    if matchers.empty:
        raise _unprocessable("match", "a silence needs at least one matcher")
    starts = (body.starts_at or now).astimezone(UTC)
    if (body.ends_at is None) == (body.duration is None):
        raise _unprocessable("ends_at", "give exactly one of ends_at and duration")
    if body.duration is not None:
        try:
            length = parse_duration(body.duration)
        except ValueError as exc:
            raise _unprocessable("duration", str(exc)) from None
        try:
            ends = shift(starts, length)
        except InstantRangeError as exc:
            raise _unprocessable("duration", str(exc)) from None
    else:
        assert body.ends_at is not None
        ends = body.ends_at.astimezone(UTC)
    if ends <= starts:
        raise _unprocessable("ends_at", "must be after starts_at")
    if ends <= now:
        raise _unprocessable("ends_at", "is in the past: the silence would never apply")
    return Silence(
        id=uuid.uuid4().hex,
        matchers=matchers,
        starts_at=starts,
        ends_at=ends,
        created_by=body.created_by or author,
        comment=body.comment,
        created_at=now,
    )


# ---------------------------------------------------------------- acknowledgements API


class AcknowledgementIn(BaseModel):
    """Acknowledge the breach of one SLA clock: its reminders stop; the outcome stays."""

    model_config = ConfigDict(extra="forbid")

    ticket_id: Identifier
    target: Target
    cycle: int = Field(0, ge=0, le=1_000_000, strict=True)
    comment: Annotated[Text, Field(max_length=2000)] = ""
    acknowledged_by: Annotated[Line, Field(min_length=1, max_length=128)] | None = Field(
        None,
        description="Default: the API key's name. The console sends the logged-in key's name.",
    )


def ack_json(ack: Acknowledgement) -> dict[str, Any]:
    return {
        "id": ack.id,
        "ticket_id": ack.ticket_id,
        "target": ack.target,
        "cycle": ack.cycle,
        "acknowledged_by": ack.acknowledged_by,
        "acknowledged_at": ack.acknowledged_at.isoformat(),
        "comment": ack.comment,
        "standing": ack.standing,
        "withdrawn_at": ack.withdrawn_at.isoformat() if ack.withdrawn_at else None,
        "withdrawn_by": ack.withdrawn_by,
    }


# ---------------------------------------------------------------- app


def create_app(
    settings: NotifierSettings,
    config: RoutingConfig,
    calendars: Mapping[str, Calendar] | None = None,
    api_keys: ApiKeys | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    notifier = Notifier(settings, config, calendars, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await notifier.start()
        try:
            yield
        finally:
            await notifier.stop()

    app = FastAPI(title="slawatch notifier", version="1", lifespan=lifespan)
    app.state.notifier = notifier
    http_errors.install(app, max_body_bytes=MAX_BODY_BYTES)
    # shared/auth.py: reads need `viewer`; silences (they change who gets told) `operator`.
    app.state.access = access_from(settings, api_keys)
    viewer = [Depends(require_role("viewer"))]

    @app.post(
        "/v1/silences",
        status_code=201,
        summary="Silence matching notifications for a while.",
        responses=responses(400, 401, 403, 413, 422),
    )
    async def create_silence(body: SilenceIn, principal: OperatorKey) -> dict[str, Any]:
        who = principal.name
        now = datetime.now(UTC)
        silence = build_silence(body, who, now)
        assert notifier.store and notifier.dispatcher
        await notifier.store.put_silence(silence)
        notifier.dispatcher.core.silences.put(silence)
        log.info(
            "silence %s created by %s until %s: %s",
            silence.id,
            silence.created_by,
            silence.ends_at.isoformat(),
            silence.matchers.describe(),
        )
        return silence_json(silence, now)

    @app.get(
        "/v1/silences",
        summary="Silences, newest last; filter by state.",
        responses=responses(401, 403, 422),
        dependencies=viewer,
    )
    async def list_silences(
        state: Literal["active", "pending", "expired"] | None = None,
    ) -> dict[str, Any]:
        assert notifier.store
        now = datetime.now(UTC)
        items = [silence_json(s, now) for s in await notifier.store.silences()]
        if state:
            items = [item for item in items if item["state"] == state]
        return {"silences": items}

    @app.get(
        "/v1/silences/{silence_id}", responses=responses(401, 403, 404, 422), dependencies=viewer
    )
    async def get_silence(silence_id: SilenceId) -> dict[str, Any]:
        assert notifier.store
        silence = await notifier.store.silence(silence_id)
        if silence is None:
            raise HTTPException(404, detail=f"no silence {silence_id!r}")
        return silence_json(silence, datetime.now(UTC))

    @app.delete(
        "/v1/silences/{silence_id}",
        summary="Expire a silence now (kept for the record).",
        responses=responses(401, 403, 404, 422),
    )
    async def expire_silence(silence_id: SilenceId, principal: OperatorKey) -> dict[str, Any]:
        who = principal.name
        assert notifier.store and notifier.dispatcher
        now = datetime.now(UTC)
        silence = await notifier.store.expire_silence(silence_id, now)
        if silence is None:
            raise HTTPException(404, detail=f"no silence {silence_id!r}")
        notifier.dispatcher.core.silences.remove(silence_id)
        log.info("silence %s expired by %s", silence_id, who)
        return silence_json(silence, now)

    @app.post(
        "/v1/acknowledgements",
        status_code=201,
        summary="Acknowledge a breach: its reminders stop; the SLA outcome does not change.",
        responses={
            409: {
                "model": http_errors.Problem,
                "description": "This breach is already acknowledged.",
            },
            **responses(400, 401, 403, 413, 422),
        },
    )
    async def acknowledge(body: AcknowledgementIn, principal: OperatorKey) -> dict[str, Any]:
        assert notifier.acks and notifier.dispatcher
        ack = Acknowledgement(
            id=uuid.uuid4().hex,
            ticket_id=body.ticket_id,
            target=body.target.value,
            cycle=body.cycle,
            acknowledged_by=body.acknowledged_by or principal.name,
            acknowledged_at=datetime.now(UTC),
            comment=body.comment,
        )
        try:
            ack = await notifier.acks.put(ack)
        except AlreadyAcknowledged as exc:
            raise HTTPException(
                409,
                detail=f"already acknowledged by {exc.standing.acknowledged_by} ({exc.standing.id})",
            ) from None
        notifier.dispatcher.core.acks.put(ack)
        log.info(
            "breach %s/%s#%d acknowledged by %s (key %s)",
            ack.ticket_id,
            ack.target,
            ack.cycle,
            ack.acknowledged_by,
            principal.name,
            extra={"ticket_id": ack.ticket_id},
        )
        return ack_json(ack)

    @app.get(
        "/v1/acknowledgements",
        summary="Acknowledgements, oldest first; filter by ticket (repeatable).",
        responses=responses(401, 403, 422),
        dependencies=viewer,
    )
    async def list_acknowledgements(
        ticket_id: Annotated[list[Identifier] | None, Query(max_length=500)] = None,
        standing: Annotated[bool, Query(description="Only those not withdrawn.")] = False,
    ) -> dict[str, Any]:
        assert notifier.acks
        acks = await notifier.acks.list(ticket_ids=ticket_id, standing_only=standing)
        return {"acknowledgements": [ack_json(a) for a in acks]}

    @app.delete(
        "/v1/acknowledgements/{ack_id}",
        summary="Withdraw an acknowledgement (kept for the record); reminders resume.",
        responses=responses(401, 403, 404, 422),
    )
    async def withdraw_acknowledgement(
        ack_id: Annotated[Identifier, Path(description="The acknowledgement's id.")],
        principal: OperatorKey,
    ) -> dict[str, Any]:
        assert notifier.acks and notifier.dispatcher
        ack = await notifier.acks.withdraw(ack_id, principal.name, datetime.now(UTC))
        if ack is None:
            raise HTTPException(404, detail=f"no acknowledgement {ack_id[:64]!r}")
        notifier.dispatcher.core.acks.remove(ack)
        log.info("acknowledgement %s withdrawn by %s", ack.id, principal.name)
        return ack_json(ack)

    @app.get(
        "/v1/notifications",
        summary="The delivery log, newest first.",
        responses=responses(401, 403, 422),
        dependencies=viewer,
    )
    async def notifications(
        ticket_id: Identifier | None = None,
        status: Status | None = None,
        receiver: Annotated[Line, Field(max_length=128)] | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: Offset = 0,
    ) -> dict[str, Any]:
        assert notifier.store
        entries = await notifier.store.log(
            ticket_id=ticket_id,
            status=status.value if status else None,
            receiver=receiver,
            limit=limit,
            offset=offset,
        )
        return {
            "items": [entry.as_json() for entry in entries],
            "offset": offset,
            "limit": limit,
            "next_offset": offset + limit if len(entries) == limit else None,
        }

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Ready once its SLA-topic partitions are assigned and restored.",
        response_model=ReadyStatus,
        responses={503: {"model": ReadyStatus, "description": "Not ready yet."}},
    )
    async def readyz() -> JSONResponse:
        consumer = notifier.consumer
        if consumer is not None and consumer.ready.is_set():
            return JSONResponse({"status": "ready", "partitions": sorted(consumer.owned)})
        return JSONResponse({"status": "starting"}, status_code=503)

    @app.get("/metrics", response_class=Response, responses=METRICS_RESPONSE)
    async def metrics() -> Response:
        return Response(generate_latest(notifier.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
