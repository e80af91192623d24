"""A broker outage: 503 with Retry-After, nothing claimed accepted, and recovery afterwards.

Uses its own broker so that stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import pytest

from slawatch.services.dev.provision import Broker
from slawatch.services.ingest.app import create_app
from slawatch.services.ingest.settings import IngestSettings
from slawatch.shared.auth import ApiKeys
from slawatch.shared.kafka import ensure_topics
from tests.helpers import read_topic, serve

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer tok"}
KEYS = ApiKeys.parse("ops:" + hashlib.sha256(b"tok").hexdigest())


def event(n: int) -> dict:
    return {
        "event_id": f"o-{n}",
        "type": "ticket.created",
        "ticket_id": f"T-{n}",
        "occurred_at": "2026-11-23T09:00:00Z",
        "data": {"priority": "high"},
    }


async def test_503_while_broker_down_then_recovers() -> None:
    broker = Broker().start()
    try:
        settings = IngestSettings(
            kafka_bootstrap=broker.bootstrap, ingest_publish_timeout_s=2.0, ingest_retry_after_s=7
        )
        await ensure_topics(settings)
        async with (
            serve(create_app(settings, KEYS)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            assert (await client.post("/v1/events", json=event(1), headers=AUTH)).status_code == 202

            broker.stop()
            response = await client.post(
                "/v1/events", json={"events": [event(2), event(3)]}, headers=AUTH
            )
            assert response.status_code == 503
            assert response.headers["retry-after"] == "7"
            assert response.json()["accepted"] == 0
            assert "NOT accepted" in response.json()["error"]
            assert (await client.get("/readyz")).status_code == 503
            metrics = (await client.get("/metrics")).text
            assert (
                'slawatch_ingest_events_rejected_total{reason="unavailable",source="ops",type="ticket.created"} 2.0'
                in metrics
            )

            broker.start()  # same port; in-memory storage, so the topics come back empty
            await ensure_topics(settings)
            for _ in range(60):  # the client retries, as a channel system would
                response = await client.post(
                    "/v1/events", json={"events": [event(2), event(3)]}, headers=AUTH
                )
                if response.status_code == 202:
                    break
                assert response.status_code == 503
                await asyncio.sleep(0.5)
            assert response.status_code == 202, response.text
            assert (await client.get("/readyz")).status_code == 200
            records = await read_topic(broker.bootstrap, settings.topic_events, 2)
            # At least once: a 503'd attempt may still reach the broker after it returns
            # (the client was told "not accepted" and retried); consumers dedup on event_id.
            assert {r.key for r in records} == {b"T-2", b"T-3"}
            assert {json.loads(r.value)["event_id"] for r in records} == {"o-2", "o-3"}
    finally:
        broker.stop()


async def test_ingest_starts_without_broker_and_answers_503() -> None:
    broker = Broker()  # never started: nothing listens on its port
    settings = IngestSettings(kafka_bootstrap=broker.bootstrap, ingest_publish_timeout_s=1.0)
    async with (
        serve(create_app(settings, KEYS)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.post("/v1/events", json=event(1), headers=AUTH)).status_code == 503
