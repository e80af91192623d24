"""The notifier service against the real broker, PostgreSQL, a local HTTP sink and a real
SMTP server: consume -> delivery log -> deliver -> commit; dedup of re-delivered records,
dead letters, silences API, delivery-log API, and a kill -9 with notifications queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from slawatch.services.database import migrate
from slawatch.services.dev.provision import free_port
from slawatch.services.notifier.app import create_app
from slawatch.services.notifier.config import load_routes
from slawatch.services.notifier.settings import NotifierSettings
from slawatch.shared.auth import ApiKeys
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.sla_events import SlaEvent, dump_sla_event
from tests.helpers import read_topic, serve, topic_settings
from tests.helpers import wait_ready as wait_until_ready
from tests.notifier.support import sla_event

pytestmark = pytest.mark.integration

TOKEN = "ops-token-" + uuid.uuid4().hex
KEYS = ApiKeys.parse("ops:" + hashlib.sha256(TOKEN.encode()).hexdigest(), "operator")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def routes_file(tmp_path: Path, webhook_url: str, smtp_port: int | None = None) -> Path:
    email = ""
    if smtp_port is not None:
        email = f"""
      - type: email
        host: 127.0.0.1
        port: {smtp_port}
        security: none
        from: slawatch@example.com
        to: [supervisors@example.com]"""
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"""
version: 1
defaults: {{group_wait: 0s, group_interval: 1s, repeat_interval: never}}
receivers:
  - name: supervisors
    integrations:
      - type: webhook
        url: "{webhook_url}"
        secret: s3cret{email}
routes:
  - receiver: supervisors
"""
    )
    return path


@pytest.fixture
async def settings(kafka_bootstrap, fresh_database, topic_prefix, tmp_path) -> NotifierSettings:
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    s = topic_settings(
        NotifierSettings,
        topic_prefix,
        kafka_bootstrap,
        database_url=fresh_database,
        notifier_group_id=f"{topic_prefix}-notifier",
        notifier_retry_base_s=0.05,
        notifier_retry_cap_s=0.2,
        notifier_retry_budget_s=30.0,
        notifier_retry_max_attempts=3,
        notifier_silence_refresh_s=0.5,
        events_partitions=3,
    )
    await ensure_topics(s)
    return s


@contextlib.asynccontextmanager
async def notifier(settings: NotifierSettings, routes: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = load_routes(routes, {})
    app = create_app(settings, config, {}, KEYS)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        await wait_ready(client)
        yield client


async def wait_ready(
    client: httpx.AsyncClient,
    timeout: float = 60,
    process: subprocess.Popen | None = None,
    log: Path | None = None,
) -> None:
    await wait_until_ready(
        f"{client.base_url}/readyz",
        "notifier (/readyz)",
        timeout=timeout,
        process=process,
        log_path=log,
    )


async def publish(settings: NotifierSettings, *records: SlaEvent | bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            if isinstance(record, bytes):
                await producer.send_and_wait(settings.topic_sla, record, key=b"T-garbage")
            else:
                await producer.send_and_wait(
                    settings.topic_sla, dump_sla_event(record), key=record.ticket_id.encode()
                )
    finally:
        await producer.stop()


async def log_rows(client: httpx.AsyncClient, **params: str) -> list[dict]:
    response = await client.get("/v1/notifications", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def eventually(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def test_delivered_to_webhook_and_email_once_despite_redelivered_records(
    settings, http_sink, smtp_server, tmp_path
) -> None:
    sink, url = http_sink
    mailbox, smtp_port = smtp_server
    path = f"/{uuid.uuid4().hex[:8]}"
    breach = sla_event(ticket=f"T-{uuid.uuid4().hex[:6]}")
    routes = routes_file(tmp_path, url + path, smtp_port)
    async with notifier(settings, routes) as client:
        await publish(settings, breach, breach)  # the monitor re-sent it after a crash
        await sink.wait_for(path, 1)
        await eventually(lambda: _mail_count(mailbox, 1))
        rows = await eventually(lambda: _all_sent(client, breach.ticket_id, 2))
        assert {(r["integration"], r["status"]) for r in rows} == {("webhook", "sent"), ("email", "sent")}
        await publish(settings, breach)  # and once more, much later
        await asyncio.sleep(1.5)
        assert len(sink.at(path)) == 1 and len(mailbox.messages) == 1
        [request] = sink.at(path)
        assert request.json()["events"][0]["id"] == breach.id
        assert request.headers["x-slawatch-signature"].startswith("t=")
        assert "s3cret" not in request.body.decode()
        text = (await client.get("/metrics")).text
        assert metric(text, "slawatch_notifier_sent_total", receiver="supervisors") == 2
        assert metric(text, "slawatch_notifier_deduplicated_total", receiver="supervisors") == 4
        assert metric(text, "slawatch_notifier_records_total", result="ok") == 3
        assert metric(text, "slawatch_notifier_delivery_latency_seconds_count") == 2


async def _mail_count(mailbox, n: int) -> bool:
    return len(mailbox.messages) >= n


async def _all_sent(client: httpx.AsyncClient, ticket: str, n: int) -> list[dict] | None:
    rows = await log_rows(client, ticket_id=ticket)
    return rows if len(rows) == n and all(r["status"] == "sent" for r in rows) else None


async def test_invalid_records_are_dead_lettered_and_the_consumer_goes_on(
    settings, http_sink, tmp_path
) -> None:
    sink, url = http_sink
    path = f"/{uuid.uuid4().hex[:8]}"
    good = sla_event(ticket=f"T-{uuid.uuid4().hex[:6]}")
    async with notifier(settings, routes_file(tmp_path, url + path)) as client:
        await publish(settings, b"{not json", b'{"kind": "sla.exploded"}', good)
        await sink.wait_for(path, 1)
        dead = await read_topic(settings.kafka_bootstrap, settings.topic_notifications_dlq, 2)
        assert sorted(r.value for r in dead) == sorted([b"{not json", b'{"kind": "sla.exploded"}'])
        errors = sorted(dict(r.headers)["slawatch-error"].decode() for r in dead)
        assert errors[0].startswith("invalid SLA event") and errors[1].startswith("invalid SLA event")
        text = (await client.get("/metrics")).text
        assert metric(text, "slawatch_notifier_records_total", result="invalid") == 2
        assert metric(text, "slawatch_notifier_records_total", result="ok") == 1


async def test_an_event_the_delivery_log_refuses_is_dead_lettered_and_the_rest_sent(
    settings, http_sink, tmp_path
) -> None:
    """A per-record data error is that record's, not an outage: it goes to the dead-letter
    topic with the reason and the other events of the batch are delivered."""
    import asyncpg

    from slawatch.shared.db import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:  # the test's database refuses one ticket, as PostgreSQL refuses a NUL in text
        await conn.execute(
            "ALTER TABLE notification_log ADD CONSTRAINT test_refused "
            "CHECK (ticket_id NOT LIKE 'REFUSED-%')"
        )
    finally:
        await conn.close()
    sink, url = http_sink
    path = f"/{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:6]
    refused = sla_event(ticket=f"REFUSED-{run}")
    good = [sla_event(ticket=f"OK-{run}-{i}") for i in range(3)]
    async with notifier(settings, routes_file(tmp_path, url + path)) as client:
        await publish(settings, good[0], refused, *good[1:])
        await eventually(lambda: _count(lambda: [e for r in sink.at(path) for e in r.json()["events"]], 3))
        [dead] = await read_topic(settings.kafka_bootstrap, settings.topic_notifications_dlq, 1)
        headers = dict(dead.headers)
        assert headers["slawatch-error"].decode().startswith("store: CheckViolationError (23514)")
        assert headers["slawatch-source-topic"] == settings.topic_sla.encode()
        assert json.loads(dead.value)["ticket_id"] == refused.ticket_id
        delivered = sorted(e["ticket_id"] for r in sink.at(path) for e in r.json()["events"])
        assert delivered == sorted(e.ticket_id for e in good)
        text = (await client.get("/metrics")).text
        assert metric(text, "slawatch_notifier_records_dead_lettered_total", reason="store") == 1
        assert (await client.get("/readyz")).status_code == 200


async def test_permanent_failure_goes_to_the_notifications_dead_letter_topic(
    settings, http_sink, tmp_path
) -> None:
    sink, url = http_sink
    path = f"/{uuid.uuid4().hex[:8]}"
    sink.script(path).always(400, b"invalid_payload")
    breach = sla_event(ticket=f"T-{uuid.uuid4().hex[:6]}")
    async with notifier(settings, routes_file(tmp_path, url + path)) as client:
        await publish(settings, breach)
        [row] = await eventually(
            lambda: _with_status(client, breach.ticket_id, "dlq"), timeout=20
        )
        assert row["reason"] == "permanent failure: HTTP 400: invalid_payload"
        assert row["attempts"] == 1
        [record] = await read_topic(settings.kafka_bootstrap, settings.topic_notifications_dlq, 1)
        body = json.loads(record.value)
        assert body["notification_id"] == breach.id and body["receiver"] == "supervisors"
        assert body["reason"] == row["reason"] and body["event"]["ticket_id"] == breach.ticket_id
        assert "s3cret" not in record.value.decode() and url not in record.value.decode()


async def _with_status(client, ticket: str, status: str) -> list[dict] | None:
    rows = await log_rows(client, ticket_id=ticket)
    return rows if rows and all(r["status"] == status for r in rows) else None


async def test_silences_api_suppresses_matching_notifications(settings, http_sink, tmp_path) -> None:
    sink, url = http_sink
    path = f"/{uuid.uuid4().hex[:8]}"
    quiet, loud = f"Q-{uuid.uuid4().hex[:6]}", f"L-{uuid.uuid4().hex[:6]}"
    async with notifier(settings, routes_file(tmp_path, url + path)) as client:
        body = {"match": {"ticket_id": quiet}, "duration": "1h", "comment": "maintenance"}
        assert (await client.post("/v1/silences", json=body)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.post("/v1/silences", json=body, headers=wrong)).status_code == 401
        for bad, field in [
            ({"match": {"kind": "exploded"}, "duration": "1h"}, "match.kind"),
            ({"match": {"colour": "red"}, "duration": "1h"}, "match.colour"),
            ({"match": {}, "duration": "1h"}, "match"),
            ({"match": {"ticket_id": "x"}}, "ends_at"),
            ({"match": {"ticket_id": "x"}, "duration": "soon"}, "duration"),
            ({"match": {"ticket_id": "x"}, "ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ]:
            response = await client.post("/v1/silences", json=bad, headers=AUTH)
            assert response.status_code == 422, (bad, response.text)
            assert response.json()["detail"][0]["field"] == field, response.text
        naive = {"match": {"ticket_id": "x"}, "ends_at": "2030-01-01T00:00:00"}
        response = await client.post("/v1/silences", json=naive, headers=AUTH)
        assert response.status_code == 422 and "ends_at" in response.text

        created = await client.post("/v1/silences", json=body, headers=AUTH)
        assert created.status_code == 201, created.text
        silence = created.json()
        assert silence["state"] == "active" and silence["created_by"] == "ops"
        assert silence["match"] == {"ticket_id": [quiet]}
        listed = (await client.get("/v1/silences", params={"state": "active"}, headers=AUTH)).json()["silences"]
        assert [s["id"] for s in listed] == [silence["id"]]

        await publish(settings, sla_event(ticket=quiet), sla_event(ticket=loud))
        await sink.wait_for(path, 1)
        [row] = await eventually(lambda: _with_status(client, quiet, "silenced"))
        assert row["reason"] == f"silence {silence['id']}"
        await asyncio.sleep(0.5)
        assert [r.json()["events"][0]["ticket_id"] for r in sink.at(path)] == [loud]

        expired = await client.delete(f"/v1/silences/{silence['id']}", headers=AUTH)
        assert expired.status_code == 200 and expired.json()["state"] == "expired"
        assert (await client.delete("/v1/silences/nope", headers=AUTH)).status_code == 404
        assert (await client.get(f"/v1/silences/{silence['id']}", headers=AUTH)).json()["state"] == "expired"
        await publish(settings, sla_event("sla.escalated", ticket=quiet, level=1))
        await sink.wait_for(path, 2)
        assert sink.at(path)[-1].json()["events"][0]["ticket_id"] == quiet
        text = (await client.get("/metrics")).text
        assert metric(text, "slawatch_notifier_silenced_total", receiver="supervisors") == 1


async def test_delivery_log_api_validates_its_parameters(settings, http_sink, tmp_path) -> None:
    _, url = http_sink
    async with notifier(settings, routes_file(tmp_path, url + "/x")) as client:
        get = lambda params: client.get("/v1/notifications", params=params, headers=AUTH)  # noqa: E731
        assert (await get({"status": "lost"})).status_code == 422
        assert (await get({"limit": 0})).status_code == 422
        assert (await get({})).json()["items"] == []
        assert (await client.get("/healthz")).status_code == 200


# ---------------------------------------------------------------- a real process


def notifier_process(settings: NotifierSettings, routes: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"SLAWATCH_{name.upper()}"] = str(value)
    env.update(SLAWATCH_ROUTES_FILE=str(routes), SLAWATCH_NOTIFIER_PORT=str(port), SLAWATCH_ENV="prod")
    env["SLAWATCH_KAFKA_SESSION_TIMEOUT_S"] = "6"  # Tansu's first join waits half of it
    env["SLAWATCH_API_KEYS"] = "ops:operator:" + hashlib.sha256(TOKEN.encode()).hexdigest()
    env["SLAWATCH_NOTIFIER_RETRY_MAX_ATTEMPTS"] = "100"
    env["SLAWATCH_NOTIFIER_RETRY_BUDGET_S"] = "600"
    return subprocess.Popen(
        [sys.executable, "-m", "slawatch.services.cli", "notifier"],
        env=env,
        stdout=open(log, "ab"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
    )


async def test_kill_9_with_notifications_queued_sends_each_once_after_restart(
    settings, http_sink, tmp_path
) -> None:
    sink, url = http_sink
    path = f"/{uuid.uuid4().hex[:8]}"
    sink.script(path).always(503, b"provider down")
    routes = routes_file(tmp_path, url + path)
    tickets = [f"K-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    port, log = free_port(), tmp_path / "notifier.log"
    first = notifier_process(settings, routes, port, log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            await wait_ready(client)
            await publish(settings, *(sla_event(ticket=t) for t in tickets))
            await sink.wait_for(path, 2, timeout=20)  # attempts are failing: queued, retrying
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            # A request the dead process had already sent still lands: let it be answered
            # (503) before counting, and only then let the provider recover.
            await asyncio.sleep(0.5)
            before = len(sink.at(path))
            sink.script(path).always(200, b"ok")
            second = notifier_process(settings, routes, port, log)
            try:
                await wait_ready(client)
                for ticket in tickets:
                    await eventually(lambda t=ticket: _with_status(client, t, "sent"), timeout=30)
                await publish(settings, sla_event(ticket=tickets[0]))  # a replayed record
                await asyncio.sleep(1.5)
                # every answer after the restart was a 200: each ticket in exactly one of them
                successes = [
                    e["ticket_id"] for r in sink.at(path)[before:] for e in r.json()["events"]
                ]
                assert sorted(successes) == sorted(tickets), log.read_text()
            finally:
                second.send_signal(signal.SIGTERM)
                second.wait(20)
    finally:
        if first.poll() is None:
            first.kill()


async def test_sigterm_during_deliveries_records_them_and_sends_each_once(
    settings, http_sink, tmp_path
) -> None:
    """Stopped while requests are at the provider, the notifier lets them finish and
    records them as sent (it used to cancel them mid-request, unrecorded, and the
    restarted notifier sent them again); it exits 0 and the restart sends the rest."""
    sink, url = http_sink
    path = f"/{uuid.uuid4().hex[:8]}"
    sink.script(path).delay_s = 1.0  # every answer takes a second: the stop lands mid-request
    routes = routes_file(tmp_path, url + path)
    tickets = [f"S-{uuid.uuid4().hex[:6]}-{i}" for i in range(4)]
    port, log = free_port(), tmp_path / "notifier.log"
    first = notifier_process(settings, routes, port, log)
    second = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            await wait_ready(client, process=first, log=log)
            await publish(settings, *(sla_event(ticket=t) for t in tickets))
            await sink.wait_for(path, 1, timeout=20)  # a delivery is in flight
            first.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(first.wait, 30) == 0, log.read_text()
            assert "stopped cleanly" in log.read_text()
            sink.script(path).delay_s = 0.0
            second = notifier_process(settings, routes, port, log)
            await wait_ready(client, process=second, log=log)
            for ticket in tickets:
                await eventually(lambda t=ticket: _with_status(client, t, "sent"), timeout=30)
            await asyncio.sleep(1.0)
            delivered = [e["ticket_id"] for r in sink.at(path) for e in r.json()["events"]]
            assert sorted(delivered) == sorted(tickets), log.read_text()[-4000:]
            second.send_signal(signal.SIGINT)
            assert await asyncio.to_thread(second.wait, 30) == 0, log.read_text()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()


async def test_two_notifiers_share_the_partitions_and_each_event_is_sent_once(
    settings, http_sink, tmp_path
) -> None:
    sink, url = http_sink
    path = f"/{uuid.uuid4().hex[:8]}"
    routes = routes_file(tmp_path, url + path)
    run = uuid.uuid4().hex[:6]
    first_wave = [sla_event(ticket=f"A-{run}-{i}") for i in range(12)]
    second_wave = [sla_event(ticket=f"B-{run}-{i}") for i in range(12)]

    def delivered() -> list[str]:
        return [e["ticket_id"] for r in sink.at(path) for e in r.json()["events"]]

    async with notifier(settings, routes) as a:
        async with notifier(settings, routes) as b:
            owned = await eventually(lambda: _split(a, b), timeout=60)
            assert sorted(owned[0] + owned[1]) == [0, 1, 2] and owned[0] and owned[1]
            await publish(settings, *first_wave)
            await eventually(lambda: _count(delivered, len(first_wave)), timeout=30)
        # b left: a takes every partition over and delivers the second wave alone
        await eventually(lambda: _owns(a, [0, 1, 2]), timeout=60)
        await publish(settings, *second_wave, *first_wave[:3])  # and some replays
        await eventually(lambda: _count(delivered, len(first_wave) + len(second_wave)), timeout=30)
        await asyncio.sleep(1.0)
    assert sorted(delivered()) == sorted(e.ticket_id for e in first_wave + second_wave)


async def _split(a: httpx.AsyncClient, b: httpx.AsyncClient) -> tuple[list, list] | None:
    pa = (await a.get("/readyz")).json().get("partitions", [])
    pb = (await b.get("/readyz")).json().get("partitions", [])
    return (pa, pb) if pa and pb and sorted(pa + pb) == [0, 1, 2] else None


async def _owns(client: httpx.AsyncClient, partitions: list[int]) -> bool:
    return (await client.get("/readyz")).json().get("partitions") == partitions


async def _count(delivered, n: int) -> bool:
    return len(delivered()) >= n
