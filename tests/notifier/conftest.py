"""Fixtures for notifier tests: a real HTTP sink and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
import pytest
from aiosmtpd.controller import Controller

from slawatch.services.dev.provision import free_port
from slawatch.services.notifier.clock import Clock
from slawatch.services.notifier.config import RoutingConfig
from slawatch.services.notifier.core import NotifierCore
from slawatch.services.notifier.dispatcher import Dispatcher, lanes_for
from slawatch.services.notifier.metrics import NotifierMetrics
from slawatch.services.notifier.stages.retry import RetryPolicy
from slawatch.services.notifier.templates import Renderer
from tests.helpers import serve
from tests.notifier.support import HttpSink, MemorySink


@pytest.fixture(scope="module")
async def http_sink() -> AsyncIterator[tuple[HttpSink, str]]:
    sink = HttpSink()
    async with serve(sink.app) as url:
        yield sink, url


@dataclass
class Mailbox:
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@dataclass
class Pipeline:
    dispatcher: Dispatcher
    sink: MemorySink
    metrics: NotifierMetrics
    client: httpx.AsyncClient

    async def wait_idle(self, timeout: float) -> bool:
        """Wait (real seconds) until the dispatcher has nothing queued or in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.dispatcher.idle:
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def count(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(f"slawatch_notifier_{name}_total", labels)
        return value or 0.0


@contextlib.asynccontextmanager
async def running_pipeline(
    config: RoutingConfig,
    *,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    calendars=None,
) -> AsyncIterator[Pipeline]:
    import random

    metrics = NotifierMetrics()
    sink = MemorySink()
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(
            NotifierCore(config, calendars=calendars),
            lanes_for(config, Renderer(), client),
            sink,
            clock=clock,
            retry=retry or RetryPolicy(max_attempts=5, base_s=0.05, cap_s=0.2, budget_s=30.0),
            metrics=metrics,
            rng=random.Random(5),
        )
        await dispatcher.start()
        try:
            yield Pipeline(dispatcher, sink, metrics, client)
        finally:
            await dispatcher.stop()
            await asyncio.sleep(0)


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http
