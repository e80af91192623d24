"""One running stack (ingest, monitor, notifier) for the fuzz module, on a fresh database
and topics of its own; stopped, and its database dropped, at the end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from slawatch.services.database import migrate
from slawatch.shared.db import asyncpg_dsn, with_database
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.settings import CommonSettings
from tests.fuzz.stack import ROUTES, Service, stack_env
from tests.helpers import topic_settings
from tests.processes import stop_all
from tests.sources.rsa import TestKey, jwks_server


@dataclass
class Stack:
    settings: CommonSettings
    ingest: Service
    monitor: Service
    notifier: Service
    zoho_key: object = None

    @property
    def services(self) -> tuple[Service, ...]:
        return (self.ingest, self.monitor, self.notifier)


async def _admin(database_url: str, sql: str) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, database_url: str, tmp_path_factory) -> Iterator[Stack]:
    prefix = "fz" + uuid.uuid4().hex[:10]
    name = "t_" + uuid.uuid4().hex[:12]
    asyncio.run(_admin(database_url, f'CREATE DATABASE "{name}"'))
    url = with_database(database_url, name)
    migrate.upgrade(url)
    settings = topic_settings(CommonSettings, prefix, kafka_bootstrap)
    asyncio.run(ensure_topics(settings))
    logs: Path = tmp_path_factory.mktemp("fuzz")
    routes = logs / "routes.yaml"
    routes.write_text(ROUTES)
    key = TestKey.make()
    served = jwks_server(key)
    jwks_url, _hits = served.__enter__()
    env = stack_env(settings, url, routes, jwks_url)
    stack = Stack(
        settings,
        *(Service(n, env, logs / f"{n}.log").start() for n in ("ingest", "monitor", "notifier")),
    )
    stack.zoho_key = key
    try:
        for service in stack.services:
            service.wait_ready()
        yield stack
    finally:
        try:
            stop_all(list(stack.services))  # after the fuzzing, each must still stop cleanly
        finally:
            served.__exit__(None, None, None)
            asyncio.run(_admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
