"""One ticket cannot stop the monitor: records it cannot store or apply go to the
dead-letter topic with the reason, the rest of the batch commits, the stream goes on.

Each bad ticket here is made bad a way that does not depend on what the event models
refuse at parse time (they get stricter elsewhere): the test database refuses some
ticket ids and one timer's SLA event with CHECK constraints (a per-row data error, as a
NUL in a text column is), and one ticket has a stored state the engine cannot load.
The NUL ticket id of issue #10 is in the stream too: stored by nobody, it must end in
the dead-letter topic whichever stage refuses it (parse: `invalid`; database: `store`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from slawatch.services.database import migrate
from slawatch.shared.db import asyncpg_dsn
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.settings import CommonSettings
from tests.helpers import read_topic, topic_settings
from tests.monitor.harness import READ_AUTH, MonitorProcess, created, monitor_env, now, produce

pytestmark = pytest.mark.integration


def metric(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def refuse_in_database(url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            "ALTER TABLE ticket_state ADD CONSTRAINT test_refused "
            "CHECK (ticket_id NOT LIKE 'REFUSED-%')"
        )
        await conn.execute(
            "ALTER TABLE sla_outbox ADD CONSTRAINT test_refused_breach "
            "CHECK (sla_event_id NOT LIKE 'TIMER-BAD/%/breached')"
        )
        # A closed ticket whose stored state is garbage: the engine raises loading it.
        await conn.execute(
            "INSERT INTO ticket_state (ticket_id, partition, state, open, updated_at) "
            "VALUES ('CORRUPT-1', 0, $1, false, now())",
            b"\x00not an engine state",
        )
    finally:
        await conn.close()


async def test_bad_tickets_are_dead_lettered_and_the_stream_goes_on(
    kafka_bootstrap: str, topic_prefix: str, fresh_database: str, tmp_path: Path
) -> None:
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    await refuse_in_database(fresh_database)
    monitor = MonitorProcess(monitor_env(settings, fresh_database), tmp_path / "monitor.log")
    monitor.start()
    try:
        await monitor.wait_ready()
        t0 = now()
        # One ticket per partition-ish spread; the bad ones come first in the stream.
        await produce(
            kafka_bootstrap,
            settings.topic_events,
            [
                created("REFUSED-1", t0),
                created("R\u0000X", t0),
                created("CORRUPT-1", t0),
                created("TIMER-BAD", t0),
                created("TIMER-OK", t0),
            ],
        )
        dead = await read_topic(kafka_bootstrap, settings.topic_events_dlq, 3, timeout=30)
        reasons = {
            json.loads(r.value)["ticket_id"]: dict(r.headers)["slawatch-error"].decode()
            for r in dead
        }
        assert set(reasons) == {"REFUSED-1", "R\u0000X", "CORRUPT-1"}, monitor.log()
        assert reasons["REFUSED-1"].startswith("store: CheckViolationError (23514)"), reasons
        assert reasons["CORRUPT-1"].startswith("engine: "), reasons
        assert reasons["R\u0000X"].split(":")[0] in ("store", "invalid"), reasons
        for record in dead:
            assert dict(record.headers)["slawatch-source-topic"] == settings.topic_events.encode()

        # The next event of another ticket is applied at once: the stream is not stuck.
        async with httpx.AsyncClient(base_url=monitor.url, timeout=5, headers=READ_AUTH) as client:
            await produce(kafka_bootstrap, settings.topic_events, [created("NEXT-1", now())])
            sent = time.monotonic()
            while (await client.get("/v1/tickets/NEXT-1/sla")).status_code != 200:
                assert time.monotonic() - sent < 10, monitor.log()
                await asyncio.sleep(0.02)
            applied_after = time.monotonic() - sent
            print(f"next event applied {applied_after:.3f}s after the broker acked it")
            assert applied_after < 1.0, monitor.log()

            # Timers: TIMER-BAD's breach cannot be stored, TIMER-OK's fires regardless.
            expected = {
                "TIMER-OK/first_response/0/warning-50",
                "TIMER-OK/first_response/0/breached",
                "TIMER-BAD/first_response/0/warning-50",
            }
            while True:
                records = await read_topic(kafka_bootstrap, settings.topic_sla, 4, timeout=2)
                ids = Counter(json.loads(r.value)["id"] for r in records)
                if expected <= set(ids) or now() > t0 + timedelta(seconds=30):
                    break
            assert expected <= set(ids), (ids, monitor.log())
            assert not any(
                i.startswith(("REFUSED-1/", "CORRUPT-1/", "TIMER-BAD/first_response/0/breached"))
                for i in ids
            )
            assert max(ids.values()) == 1, ids

            text = (await client.get("/metrics")).text
            assert metric(text, "slawatch_monitor_events_dead_lettered_total", reason="store") >= 1
            assert metric(text, "slawatch_monitor_events_dead_lettered_total", reason="engine") == 1
            assert (
                metric(text, "slawatch_monitor_ticket_errors_total", stage="timer", reason="store")
                >= 1
            )
            # Refused data is not a database outage: no pause, no db error counted.
            assert metric(text, "slawatch_monitor_db_errors_total") == 0, monitor.log()
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
    finally:
        monitor.stop()


async def test_readyz_answers_503_while_a_partition_lags(
    kafka_bootstrap: str, topic_prefix: str, fresh_database: str, tmp_path: Path
) -> None:
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    env = monitor_env(
        settings,
        fresh_database,
        SLAWATCH_MONITOR_MAX_BATCH="1",  # one record per transaction: a backlog lasts
        SLAWATCH_MONITOR_READY_MAX_LAG="5",
    )
    monitor = MonitorProcess(env, tmp_path / "monitor.log").start()
    try:
        await monitor.wait_ready()
        t0 = now()
        # All on one ticket, hence one partition: its lag is the backlog.
        await produce(
            kafka_bootstrap,
            settings.topic_events,
            [created("LAG-1", t0)]
            + [{**created("LAG-1", t0), "event_id": f"LAG-1-dup-{n}"} for n in range(400)],
        )
        statuses = set()
        async with httpx.AsyncClient(base_url=monitor.url, timeout=5, headers=READ_AUTH) as client:
            deadline = time.monotonic() + 60
            while True:
                answer = await client.get("/readyz")
                body = answer.json()
                statuses.add((answer.status_code, body["status"]))
                if body["status"] == "lagging":
                    assert answer.status_code == 503 and body["max_lag"] > 5, body
                    assert body["lagging_partitions"], body
                if (503, "lagging") in statuses and answer.status_code == 200:
                    break
                assert time.monotonic() < deadline, (statuses, monitor.log())
                await asyncio.sleep(0.02)
        assert body["status"] == "ready" and body["max_lag"] <= 5, body
    finally:
        monitor.stop()
