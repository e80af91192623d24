"""The source endpoints on a real ingest against the real broker: 202 only once the events
are on the topic (keyed by ticket); 401 publishes nothing; unknown types are 200 and
counted; a broker that is away is a 503 with Retry-After; the secret is never logged."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from slawatch.services.ingest.app import create_app
from slawatch.services.ingest.settings import IngestSettings
from slawatch.services.ingest.sources import ADAPTERS
from slawatch.shared.auth import ApiKeys
from slawatch.shared.kafka import ensure_topics
from tests.helpers import read_topic, serve, topic_settings, topic_size
from tests.sources import payloads
from tests.sources.payloads import LIVES, SECRET, ZOHO_ORG

pytestmark = pytest.mark.integration
KEYS = ApiKeys.parse("crm:" + hashlib.sha256(b"t").hexdigest())


def secrets(jwks_url: str) -> dict:
    return {
        "source_zendesk_secret": SECRET,
        "source_freshdesk_secret": SECRET,
        "source_jira_secret": SECRET,
        "source_zammad_secret": SECRET,
        "source_chatwoot_secret": SECRET,
        "source_zoho_desk_org_id": ZOHO_ORG,
        "source_zoho_desk_webhook_id": "77",
        "source_zoho_desk_jwks_url": jwks_url,
    }


@dataclass
class Ingest:
    settings: IngestSettings
    client: httpx.AsyncClient


@pytest.fixture
async def ingest(kafka_bootstrap: str, topic_prefix: str, zoho_jwks) -> AsyncIterator[Ingest]:
    settings = topic_settings(
        IngestSettings, topic_prefix, kafka_bootstrap, **secrets(zoho_jwks[0])
    )
    await ensure_topics(settings)
    async with (
        serve(create_app(settings, KEYS)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield Ingest(settings, client)


def signed(system: str, body: bytes, zoho_key) -> dict[str, str]:
    now = datetime.now(UTC)
    if system == "zoho-desk":
        headers = payloads.zoho_sign(zoho_key, now)
    else:
        sign = LIVES[system][1]
        assert sign is not None  # every system but Zoho Desk signs the body
        headers = sign(body, SECRET, now)
    return {**headers, "Content-Type": "application/json"}


def counted(text: str, **labels: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "slawatch_ingest_source_requests_total" and labels.items() <= s.labels.items()
    )


async def test_every_system_creation_is_acked_on_the_topic(ingest: Ingest, zoho_key) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)
    for system in LIVES:
        body = LIVES[system][0](t0)[0].raw()
        response = await ingest.client.post(
            f"/v1/sources/{system}", content=body, headers=signed(system, body, zoho_key)
        )
        assert response.status_code == ADAPTERS[system].accepted_status, (system, response.text)
        assert response.json() == {"accepted": 1}
    records = await read_topic(
        ingest.settings.kafka_bootstrap, ingest.settings.topic_events, len(LIVES)
    )
    assert len(records) == len(LIVES)
    by_source = {json.loads(r.value)["source"]: r for r in records}
    assert set(by_source) == set(LIVES)
    for system, record in by_source.items():
        value = json.loads(record.value)
        assert value["type"] == "ticket.created" and record.key.decode() == value["ticket_id"]
        assert value["ticket_id"].startswith(system + ":")
    metrics = (await ingest.client.get("/metrics")).text
    assert counted(metrics, source="jira", outcome="accepted") == 1


async def test_bad_signatures_publish_nothing_and_say_401(ingest: Ingest, zoho_key, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for system in LIVES:
        body = LIVES[system][0](datetime.now(UTC))[0].raw()
        headers = signed(system, body, zoho_key)
        tampered = body[:-1] + b" " + body[-1:]  # same JSON, other bytes: the HMAC fails
        if system == "freshdesk":
            headers["Authorization"] = "Basic " + base64.b64encode(b"u:wrong").decode()
        if system == "zoho-desk":  # its JWT does not cover the body (sources.md, limits)
            headers = {**headers, **payloads.zoho_sign(zoho_key, datetime.now(UTC), iss="orgId:1")}
        response = await ingest.client.post(
            f"/v1/sources/{system}", content=tampered, headers=headers
        )
        assert response.status_code == 401, (system, response.text)
        assert response.json()["accepted"] == 0 and SECRET not in response.text
    assert await topic_size(ingest.settings.kafka_bootstrap, ingest.settings.topic_events) == 0
    assert SECRET not in caplog.text
    metrics = (await ingest.client.get("/metrics")).text
    assert counted(metrics, outcome="unauthorized") == len(LIVES)


async def test_unknown_event_types_are_acknowledged_and_counted(ingest: Ingest, zoho_key) -> None:
    for system, (_, _, unknown) in LIVES.items():
        if unknown is None:
            continue
        body = json.dumps(unknown).encode()
        response = await ingest.client.post(
            f"/v1/sources/{system}", content=body, headers=signed(system, body, zoho_key)
        )
        assert response.status_code == 200, (system, response.text)
        assert response.json()["accepted"] == 0 and response.json()["ignored"]
    metrics = (await ingest.client.get("/metrics")).text
    assert counted(metrics, outcome="ignored") == 5
    assert await topic_size(ingest.settings.kafka_bootstrap, ingest.settings.topic_events) == 0


async def test_an_ignored_reason_quoting_a_lone_surrogate_is_escaped(
    ingest: Ingest, zoho_key
) -> None:
    # Found by tests/fuzz: the reason quoted the unknown type, and its surrogate was a 500.
    unknown = LIVES["jira"][2]
    assert isinstance(unknown, dict)
    document = dict(unknown)
    document["webhookEvent"] = "jira:\ud800odd"
    body = json.dumps(document).encode()  # "\\ud800" in JSON: valid JSON, invalid text
    response = await ingest.client.post(
        "/v1/sources/jira", content=body, headers=signed("jira", body, zoho_key)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 0, "ignored": "jira:\\ud800odd"}


async def test_malformed_bodies_are_4xx_naming_what_is_wrong(ingest: Ingest, zoho_key) -> None:
    cases = [
        (b"{not json", 400, None),
        (b'{"ticket": {"status": "Open"}}', 422, "id"),
        (b"[1]", 422, "(body)"),
    ]
    for body, status, field in cases:
        response = await ingest.client.post(
            "/v1/sources/zendesk", content=body, headers=signed("zendesk", body, zoho_key)
        )
        assert response.status_code == status, response.text
        if field:
            assert response.json()["detail"][0]["field"] == field
    response = await ingest.client.post(
        "/v1/sources/zendesk", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


async def test_broker_away_is_503_with_retry_after(topic_prefix: str, zoho_jwks, zoho_key) -> None:
    settings = topic_settings(
        IngestSettings,
        topic_prefix,
        "127.0.0.1:9",
        ingest_publish_timeout_s=1,
        **secrets(zoho_jwks[0]),
    )
    async with (
        serve(create_app(settings, KEYS)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        body = LIVES["jira"][0](datetime.now(UTC))[0].raw()
        response = await client.post(
            "/v1/sources/jira", content=body, headers=signed("jira", body, zoho_key)
        )
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["accepted"] == 0
