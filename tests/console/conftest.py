"""Fixtures for the console's tests: one real stack shared by every console test module
(each uses its own ticket ids), and the webhook receiver its notifier posts to."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from slawatch.services.database import migrate
from slawatch.shared.db import asyncpg_dsn, with_database
from tests.console.stack import ARTEFACTS, Stack, start_stack
from tests.helpers import serve
from tests.notifier.support import HttpSink


@pytest.fixture(scope="session")
async def webhook() -> AsyncIterator[tuple[HttpSink, str]]:
    sink = HttpSink()
    async with serve(sink.app) as url:
        yield sink, url


@pytest.fixture(scope="session")
async def stack(kafka_bootstrap, database_url, webhook) -> AsyncIterator[Stack]:
    import asyncio

    name = "c_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(database_url, name)
    await asyncio.to_thread(migrate.upgrade, url)
    folder = ARTEFACTS / "stack"
    stack = await asyncio.to_thread(start_stack, kafka_bootstrap, url, webhook[1], folder)
    try:
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)
        admin = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
