"""End to end over the real broker and database: a ticket's life posted as each helpdesk's
native webhooks gives the same SLA events as the same life posted as slawatch events.

One ingest (in this process, real HTTP) and one real `slawatch monitor` process serve the
module; fast-policies.yaml (first response 4 s, resolution 600 s, pending/on_hold pause).
The life happens 30 s in the future, so that every event of both tickets is in the
monitor before any of their timers is due: the SLA events then depend on event times only
(the engine orders by them), not on how fast this machine posts. Freshdesk sends no event
time (receipt time stands in), so its reference life takes the times its events got.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from slawatch.services.database import migrate
from slawatch.services.ingest.app import create_app
from slawatch.services.ingest.settings import IngestSettings
from slawatch.services.ingest.sources import ADAPTERS
from slawatch.shared.db import asyncpg_dsn, with_database
from slawatch.shared.kafka import ensure_topics
from tests.helpers import read_topic, serve, topic_settings
from tests.monitor.harness import MonitorProcess, monitor_env
from tests.sources.payloads import LIVES, SECRET
from tests.sources.test_http import KEYS, secrets, signed

pytestmark = pytest.mark.integration
TOKEN_HEADERS = {"Authorization": "Bearer t", "Content-Type": "application/json"}

# What each step of a life is, written as slawatch events (tests/sources/payloads.py names).
REFERENCE: dict[str, tuple[str, dict[str, Any]]] = {
    "creation": ("ticket.created", {"priority": "high"}),
    "public agent reply": ("message.created", {"author_role": "agent", "public": True}),
    "customer reply": ("message.created", {"author_role": "customer", "public": True}),
    "internal note": ("message.created", {"author_role": "agent", "public": False}),
    "priority, group and assignee change": ("ticket.updated", {"priority": "urgent"}),
    "priority and assignee change": ("ticket.updated", {"priority": "urgent"}),
    "priority change": ("ticket.updated", {"priority": "urgent"}),
    "group and assignee change": ("ticket.assigned", {"group": "Billing L2"}),
    "status change": ("ticket.status_changed", {"status": "pending"}),
    "solved": ("ticket.status_changed", {"status": "solved"}),
    "reopened": ("ticket.status_changed", {"status": "open"}),
    "solved again": ("ticket.status_changed", {"status": "solved"}),
    "satisfaction rating": ("survey.responded", {"csat": 5}),
}
COMPARED = (
    "kind",
    "target",
    "cycle",
    "deadline",
    "occurred_at",
    "elapsed_seconds",
    "target_seconds",
    "breached",
    "priority",
    "detected_late",
)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, database_url: str, zoho_jwks, tmp_path_factory
) -> AsyncIterator[tuple]:
    prefix = "src" + uuid.uuid4().hex[:8]
    name = "t_" + uuid.uuid4().hex[:12]
    await _admin(database_url, f'CREATE DATABASE "{name}"')
    url = with_database(database_url, name)
    await asyncio.to_thread(migrate.upgrade, url)
    settings = topic_settings(IngestSettings, prefix, kafka_bootstrap, **secrets(zoho_jwks[0]))
    await ensure_topics(settings)
    logs: Path = tmp_path_factory.mktemp("sources-e2e")
    monitor = MonitorProcess(monitor_env(settings, url), logs / "monitor.log")
    monitor.start()
    try:
        await monitor.wait_ready()
        async with (
            serve(create_app(settings, KEYS)) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):
            yield settings, client, monitor
    finally:
        monitor.stop()
        await _admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def shape(event: dict[str, Any], ticket: str) -> tuple:
    return (event["id"].removeprefix(ticket),) + tuple(event.get(k) for k in COMPARED)


async def sla_of(
    settings, tickets: list[str], minimum: int, timeout: float = 30
) -> dict[str, list[dict]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        records = await read_topic(settings.kafka_bootstrap, settings.topic_sla, 0, timeout=1)
        found = {t: [json.loads(r.value) for r in records if r.key.decode() == t] for t in tickets}
        counts = {len(v) for v in found.values()}
        if (
            min(counts) >= minimum
            and len(counts) == 1
            or asyncio.get_running_loop().time() > deadline
        ):
            return found
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("system", list(LIVES))
async def test_native_life_gives_the_same_sla_events_as_slawatch_events(
    stack, system: str, zoho_key
) -> None:
    settings, client, monitor = stack
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    steps = LIVES[system][0](t0)
    for step in steps:
        body = step.raw()
        response = await client.post(
            f"/v1/sources/{system}", content=body, headers=signed(system, body, zoho_key)
        )
        assert response.status_code == ADAPTERS[system].accepted_status, (
            system,
            step.name,
            response.text,
        )
    native = [
        json.loads(r.value)
        for r in await read_topic(settings.kafka_bootstrap, settings.topic_events, 0, timeout=2)
    ]
    native = [e for e in native if e["source"] == system]
    ticket = native[0]["ticket_id"]
    if system == "freshdesk":  # no event time in Freshdesk's body: the times its events got
        times = [datetime.fromisoformat(e["occurred_at"]) for e in native]
    else:
        times = [t0 + timedelta(seconds=step.at) for step in steps]
    reference_ticket = f"ref-{system}"
    reference = [
        {
            "event_id": f"{reference_ticket}-{i}",
            "type": REFERENCE[step.name][0],
            "ticket_id": reference_ticket,
            "occurred_at": at.isoformat(),
            "channel": "other",
            "data": REFERENCE[step.name][1],
        }
        for i, (step, at) in enumerate(zip(steps, times, strict=True))
    ]
    response = await client.post(
        "/v1/events", json={"events": reference}, headers={"Authorization": "Bearer t"}
    )
    assert response.status_code == 202, response.text
    found = await sla_of(settings, [ticket, reference_ticket], minimum=3)
    got = sorted(shape(e, ticket) for e in found[ticket])
    want = sorted(shape(e, reference_ticket) for e in found[reference_ticket])
    assert got == want, f"{system}:\n{got}\n!=\n{want}\n{monitor.log()[-2000:]}"
    kinds = {(e["kind"], e["target"]) for e in found[ticket]}
    assert {("sla.met", "first_response"), ("sla.met", "resolution")} <= kinds, kinds
    assert SECRET not in monitor.log()
