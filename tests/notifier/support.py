"""Test support for the notifier: SLA events, routing files, and a real local HTTP sink.

The sink is a small Starlette app served by uvicorn on 127.0.0.1 (tests.helpers.serve):
it records every request exactly as received and answers from a script, so tests can
inject failures (500s, 429 with Retry-After, slow answers, 200 with an error body).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from slawatch.services.notifier.clock import Clock
from slawatch.services.notifier.config import RoutingConfig, parse_routes
from slawatch.services.notifier.model import Notice, NoticeKey, Status, StatusChange
from slawatch.shared.sla_events import SlaEvent, parse_sla_event, sla_event_id

T0 = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)


def sla_event(
    kind: str = "sla.breached",
    ticket: str = "T-1001",
    target: str = "first_response",
    cycle: int = 0,
    *,
    level: int | None = None,
    fraction: float | None = None,
    occurred_at: datetime = T0,
    **extra: Any,
) -> SlaEvent:
    data: dict[str, Any] = {
        "id": sla_event_id(ticket, target, cycle, kind, level=level, fraction=fraction),
        "kind": kind,
        "ticket_id": ticket,
        "target": target,
        "policy": "vip-urgent",
        "cycle": cycle,
        "deadline": (T0 + timedelta(minutes=10) if kind == "sla.warning" else T0).isoformat(),
        "occurred_at": occurred_at.isoformat(),
        "elapsed_seconds": 900.0,
        "target_seconds": 900.0,
        "priority": "urgent",
        "customer_tier": "gold",
        "channel": "email",
        "group": "billing",
        "assignee": "li.na",
        "url": f"https://helpdesk.example.com/tickets/{ticket}",
        "subject": "Charged twice for November",
    }
    if level is not None:
        data["level"] = level
    if fraction is not None:
        data["fraction"] = fraction
    if kind == "sla.met":
        data.setdefault("breached", True)
    data.update(extra)
    return parse_sla_event(data)


def routes(text: str, env: dict[str, str] | None = None, **kwargs: Any) -> RoutingConfig:
    return parse_routes(text, "routes.yaml", env or {}, **kwargs)


def notice(
    event: SlaEvent, receiver: str = "r", integration: str = "webhook", at: datetime = T0
) -> Notice:
    return Notice(event, receiver, integration, at, at)


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() at receipt

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Script:
    """What the sink answers: queued answers first, then the default."""

    default: Answer = (200, {}, b"ok")
    queue: deque[Answer | Callable[[], Answer]] = field(default_factory=deque)
    delay_s: float = 0.0  # answer only after this long (timeouts)
    delays: deque[float] = field(default_factory=deque)  # per request, before delay_s applies

    def then(
        self, status: int, body: Any = b"", headers: dict[str, str] | None = None, times: int = 1
    ) -> Script:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        for _ in range(times):
            self.queue.append((status, headers or {}, payload))
        return self

    def always(self, status: int, body: Any = b"", headers: dict[str, str] | None = None) -> Script:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.default = (status, headers or {}, payload)
        return self


class HttpSink:
    """Records requests per path; answers per path from a :class:`Script`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, Script] = {}
        self.clock = clock
        self.arrived = asyncio.Event()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET"])])

    def script(self, path: str) -> Script:
        return self.scripts.setdefault(path, Script())

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        path = "/" + request.path_params["path"]
        self.requests.append(
            Received(
                request.method,
                path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                body,
                self.clock(),
            )
        )
        self.arrived.set()
        script = self.script(path)
        delay = script.delays.popleft() if script.delays else script.delay_s
        if delay:
            await asyncio.sleep(delay)
        answer = script.queue.popleft() if script.queue else script.default
        if callable(answer):
            answer = answer()
        status, headers, payload = answer
        return Response(payload, status_code=status, headers=headers)

    async def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.at(path)) < count:
            if loop.time() > deadline:
                raise AssertionError(
                    f"{path}: {len(self.at(path))} of {count} requests after {timeout}s"
                )
            await asyncio.sleep(0.01)
        return self.at(path)


# An in-process delivery log for tests of the pipeline that are not about storage (the
# service never uses one: it would lose queued notifications on a restart).
@dataclass
class MemoryRow:
    notice: Notice
    status: Status
    reason: str = ""
    message_id: str | None = None
    duplicates: int = 0


@dataclass
class MemorySink:
    rows: dict[NoticeKey, MemoryRow] = field(default_factory=dict)
    dead_letters: list[tuple[Notice, str]] = field(default_factory=list)
    history: list[StatusChange] = field(default_factory=list)

    async def enqueue(self, notices: Sequence[Notice]) -> list[Notice]:
        fresh = []
        for notice in notices:
            row = self.rows.get(notice.key)
            if row is None:
                self.rows[notice.key] = MemoryRow(notice, Status.queued)
                fresh.append(notice)
            else:
                row.duplicates += 1
        return fresh

    async def record(self, changes: Sequence[StatusChange]) -> None:
        for change in changes:
            self.history.append(change)
            row = self.rows.setdefault(change.notice.key, MemoryRow(change.notice, change.status))
            row.notice, row.status, row.reason = change.notice, change.status, change.reason
            if change.message_id:
                row.message_id = change.message_id

    async def dead_letter(self, notices: Sequence[Notice], reason: str) -> None:
        self.dead_letters.extend((n, reason) for n in notices)


class ScaledClock(Clock):
    """Clock time runs ``speed`` times faster than real time, from ``start``."""

    def __init__(self, speed: float, start: datetime | None = None) -> None:
        self.speed = speed
        self._real0 = time.monotonic()
        self._start = start or datetime.now(UTC)

    def monotonic(self) -> float:
        return (time.monotonic() - self._real0) * self.speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.speed
