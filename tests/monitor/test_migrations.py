"""Migrations against the real database: up, matches the models, down, and the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import slawatch.services.notifier.schema  # noqa: F401 - the notifier's tables share the history
import slawatch.services.sla_monitor.schema  # noqa: F401
from slawatch.services.database import migrate
from slawatch.shared.db import make_engine, metadata

pytestmark = pytest.mark.integration


async def _tables_and_diff(url: str) -> tuple[set[str], list]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:

            def inspect_sync(sync_connection):
                tables = set(inspect(sync_connection).get_table_names())
                diff = compare_metadata(MigrationContext.configure(sync_connection), metadata)
                return tables, diff

            return await connection.run_sync(inspect_sync)
    finally:
        await engine.dispose()


async def test_upgrade_creates_exactly_the_modelled_schema_and_downgrade_removes_it(
    fresh_database: str,
) -> None:
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    tables, diff = await _tables_and_diff(fresh_database)
    assert set(metadata.tables) <= tables
    assert diff == [], "the models and the migrations disagree: add a migration"
    await asyncio.to_thread(migrate.upgrade, fresh_database)  # idempotent
    await asyncio.to_thread(migrate.downgrade, fresh_database, "base")
    tables, _ = await _tables_and_diff(fresh_database)
    assert tables & set(metadata.tables) == set()


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "slawatch.services.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_db_upgrade_command(fresh_database: str) -> None:
    result = await asyncio.to_thread(_cli, "db", "upgrade", SLAWATCH_DATABASE_URL=fresh_database)
    assert result.returncode == 0, result.stderr
    tables, diff = await _tables_and_diff(fresh_database)
    assert {"ticket_state", "notification_log", "silences"} <= tables and diff == []
    missing = await asyncio.to_thread(_cli, "db", "upgrade")
    assert missing.returncode == 2 and "SLAWATCH_DATABASE_URL" in missing.stderr
    bad = await asyncio.to_thread(_cli, "db", "sideways")
    assert bad.returncode == 2
