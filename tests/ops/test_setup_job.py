"""The one-shot setup of docker-compose (and the Kubernetes migration Job, which runs the same
command) works: run verbatim through `sh -c` against the real broker and a real PostgreSQL,
it migrates the database to the newest schema and creates every topic with the configured
partitions, and a second run changes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from alembic.script import ScriptDirectory

from slawatch.services.database import migrate
from slawatch.shared.db import asyncpg_dsn
from tests.ops.deployfiles import COMPOSE, load_yaml

pytestmark = pytest.mark.integration


def run_setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = load_yaml(COMPOSE)["services"]["setup"]["command"][0]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    # `slawatch` and `python` as in the image: this venv's, first on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
    return subprocess.run(
        ["sh", "-c", command],
        env={**clean, **env, "PATH": path},
        capture_output=True,
        text=True,
        timeout=180,
    )


async def partitions_of(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["partitions"]}


async def test_setup_migrates_and_creates_topics_idempotently(
    kafka_bootstrap: str, fresh_database: str, topic_prefix: str
) -> None:
    env = {k: str(v) for k, v in load_yaml(COMPOSE)["services"]["setup"]["environment"].items()}
    topics = {
        "SLAWATCH_TOPIC_EVENTS": f"{topic_prefix}.ticket-events",
        "SLAWATCH_TOPIC_EVENTS_DLQ": f"{topic_prefix}.ticket-events-dlq",
        "SLAWATCH_TOPIC_SLA": f"{topic_prefix}.sla-events",
        "SLAWATCH_TOPIC_NOTIFICATIONS_DLQ": f"{topic_prefix}.notifications-dlq",
    }
    env |= topics | {
        "SLAWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SLAWATCH_DATABASE_URL": fresh_database,
        "SLAWATCH_EVENTS_PARTITIONS": "3",
    }

    first = run_setup(env)
    assert first.returncode == 0, first.stderr
    created = first.stdout.strip().splitlines()[-1]
    assert created.startswith("topics created:")
    assert set(created.removeprefix("topics created:").strip().split(", ")) == set(topics.values())

    assert await partitions_of(kafka_bootstrap, list(topics.values())) == {
        topics["SLAWATCH_TOPIC_EVENTS"]: 3,
        topics["SLAWATCH_TOPIC_SLA"]: 3,
        topics["SLAWATCH_TOPIC_EVENTS_DLQ"]: 1,
        topics["SLAWATCH_TOPIC_NOTIFICATIONS_DLQ"]: 1,
    }
    head = ScriptDirectory.from_config(migrate.alembic_config(fresh_database)).get_current_head()
    connection = await asyncpg.connect(asyncpg_dsn(fresh_database))
    try:
        assert await connection.fetchval("SELECT version_num FROM alembic_version") == head
    finally:
        await connection.close()

    again = run_setup(env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == "topics created: none (all exist)"


async def test_setup_fails_loudly_without_a_database(kafka_bootstrap: str) -> None:
    env = {k: str(v) for k, v in load_yaml(COMPOSE)["services"]["setup"]["environment"].items()}
    env["SLAWATCH_KAFKA_BOOTSTRAP"] = kafka_bootstrap
    del env["SLAWATCH_DATABASE_URL"]
    result = run_setup(env)
    assert result.returncode != 0
    assert "SLAWATCH_DATABASE_URL" in result.stderr
    assert "topics created" not in result.stdout, "the topics step must not run after a failure"
