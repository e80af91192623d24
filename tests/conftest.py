"""Session fixtures: a real Kafka-protocol broker and a real PostgreSQL for the whole run.

They start lazily (a unit-test-only run starts nothing) and only where the environment
does not already name a broker (SLAWATCH_KAFKA_BOOTSTRAP) or database
(SLAWATCH_DATABASE_URL). Tests isolate themselves with unique topic names and fresh
databases rather than by restarting servers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from hypothesis import HealthCheck, settings

from slawatch.services.dev.provision import Broker, Postgres
from slawatch.shared.db import asyncpg_dsn, with_database

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=False,
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    given = os.environ.get("SLAWATCH_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    with Broker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    given = os.environ.get("SLAWATCH_DATABASE_URL")
    if given:
        yield given
        return
    with Postgres() as server:
        yield server.url


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """A new, empty database on the session's server; dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield with_database(database_url, name)
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def topic_prefix() -> str:
    """Unique topic names per test: tests share one broker but never each other's records."""
    return "t" + uuid.uuid4().hex[:10]
