"""Ingest against the real broker: accepted means acked and readable; bad input means 4xx."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slawatch.services.ingest.app import create_app
from slawatch.services.ingest.settings import IngestSettings
from slawatch.shared.auth import ApiKeys
from slawatch.shared.events import EXAMPLES
from slawatch.shared.kafka import ensure_topics
from tests.helpers import read_topic, serve, topic_settings, topic_size

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token-for-tests"
KEYS = ApiKeys.parse(f"crm:{hashlib.sha256(TOKEN.encode()).hexdigest()}")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Ingest:
    url: str
    settings: IngestSettings
    client: httpx.AsyncClient


@pytest.fixture
async def ingest(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Ingest]:
    settings = topic_settings(
        IngestSettings,
        topic_prefix,
        kafka_bootstrap,
        ingest_max_batch=50,
        ingest_max_body_bytes=64 * 1024,
    )
    await ensure_topics(settings)
    async with (
        serve(create_app(settings, KEYS)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield Ingest(url, settings, client)


def event(n: int, ticket: str = "T-1", **extra) -> dict:
    return {
        "event_id": f"e-{n}",
        "type": "message.created",
        "ticket_id": ticket,
        "occurred_at": "2026-11-23T09:00:00+08:00",
        "channel": "chat",
        "data": {"author_role": "customer"},
        **extra,
    }


async def test_accepted_event_is_on_the_topic_keyed_by_ticket(ingest: Ingest) -> None:
    response = await ingest.client.post("/v1/events", json=EXAMPLES["ticket.created"], headers=AUTH)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1}
    [record] = await read_topic(ingest.settings.kafka_bootstrap, ingest.settings.topic_events, 1)
    assert record.key == b"T-1001"
    body = json.loads(record.value)
    assert body["event_id"] == "zd-1001-created"
    assert body["source"] == "crm"
    assert body["occurred_at"] == "2026-11-23T01:15:00Z"  # normalised to UTC
    assert body["received_at"].endswith("Z")
    assert body["data"]["customer_tier"] == "gold"


async def test_batch_keeps_each_ticket_on_one_partition(ingest: Ingest) -> None:
    events = [event(i, ticket=f"T-{i % 7}") for i in range(40)]
    response = await ingest.client.post("/v1/events", json={"events": events}, headers=AUTH)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 40}
    records = await read_topic(ingest.settings.kafka_bootstrap, ingest.settings.topic_events, 40)
    assert len(records) == 40
    partitions: dict[bytes, set[int]] = {}
    for record in records:
        partitions.setdefault(record.key, set()).add(record.partition)
    assert len(partitions) == 7
    assert all(len(p) == 1 for p in partitions.values())
    assert len({p for ps in partitions.values() for p in ps}) > 1  # keys spread across partitions


async def test_a_customer_event_is_keyed_by_the_customer(ingest: Ingest) -> None:
    response = await ingest.client.post(
        "/v1/events", json=EXAMPLES["customer.updated"], headers=AUTH
    )
    assert response.status_code == 202, response.text
    [record] = await read_topic(ingest.settings.kafka_bootstrap, ingest.settings.topic_events, 1)
    assert record.key == b"customer:C-42"
    body = json.loads(record.value)
    assert body["data"] == {"customer_id": "C-42", "tier": "platinum", "status": "active"}
    assert body["source"] == "crm" and "ticket_id" not in body


async def test_every_event_type_example_is_accepted(ingest: Ingest) -> None:
    response = await ingest.client.post(
        "/v1/events", json={"events": list(EXAMPLES.values())}, headers=AUTH
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(EXAMPLES)}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": f"Basic {TOKEN}"}, 401),
    ],
)
async def test_auth(ingest: Ingest, headers: dict, status: int) -> None:
    response = await ingest.client.post("/v1/events", json=event(1), headers=headers)
    assert response.status_code == status
    assert response.headers["www-authenticate"] == "Bearer"
    assert await topic_size(ingest.settings.kafka_bootstrap, ingest.settings.topic_events) == 0


async def test_token_never_logged(ingest: Ingest, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await ingest.client.post("/v1/events", json=event(1), headers=AUTH)
    await ingest.client.post(
        "/v1/events", json=event(1), headers={"Authorization": "Bearer not-" + TOKEN}
    )
    metrics = (await ingest.client.get("/metrics")).text
    assert TOKEN not in caplog.text
    assert TOKEN not in metrics


async def test_validation_error_names_index_and_field_and_publishes_nothing(ingest: Ingest) -> None:
    bad = event(2, occurred_at="2026-11-23T09:00:00")  # naive
    worse = event(3, data={"author_role": "robot"})
    response = await ingest.client.post(
        "/v1/events", json={"events": [event(1), bad, worse]}, headers=AUTH
    )
    assert response.status_code == 422
    body = response.json()
    assert body["accepted"] == 0
    fields = {(d["index"], d["field"]) for d in body["detail"]}
    assert fields == {(1, "occurred_at"), (2, "data.author_role")}
    assert await topic_size(ingest.settings.kafka_bootstrap, ingest.settings.topic_events) == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"[]", 422, "(body)"),
        (json.dumps({**event(1), "type": "ticket.exploded"}).encode(), 422, "type"),
        (
            json.dumps({k: v for k, v in event(1).items() if k != "ticket_id"}).encode(),
            422,
            "ticket_id",
        ),
        (json.dumps({**event(1), "ticket_id": ""}).encode(), 422, "ticket_id"),
        (json.dumps({**event(1), "ticket_id": "x" * 129}).encode(), 422, "ticket_id"),
        (json.dumps({**event(1), "channel": "pigeon"}).encode(), 422, "channel"),
        (json.dumps({**event(1), "surprise": 1}).encode(), 422, "surprise"),
        (json.dumps({"events": []}).encode(), 422, "events"),
        (json.dumps({"events": [event(1)], "more": 1}).encode(), 422, "more"),
        (json.dumps({**event(1), "type": "survey.responded", "data": {}}).encode(), 422, "data"),
        (
            json.dumps({**event(1), "type": "survey.responded", "data": {"csat": 6}}).encode(),
            422,
            "data.csat",
        ),
        (json.dumps({**event(1), "type": "ticket.updated", "data": {}}).encode(), 422, "data"),
    ],
)
async def test_bad_bodies(ingest: Ingest, body: bytes, status: int, field: str | None) -> None:
    response = await ingest.client.post(
        "/v1/events", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    if field is not None:
        assert field in {d["field"] for d in response.json()["detail"]}


async def test_oversize_body_and_batch(ingest: Ingest) -> None:
    huge = {
        "events": [event(i, data={"author_role": "agent"}, ticket_id="T" * 128) for i in range(40)]
    }
    huge["events"][0]["channel"] = "x" * 70_000
    response = await ingest.client.post("/v1/events", json=huge, headers=AUTH)
    assert response.status_code == 413
    response = await ingest.client.post(
        "/v1/events", json={"events": [event(i) for i in range(51)]}, headers=AUTH
    )
    assert response.status_code == 413
    assert "at most 50" in response.json()["error"]
    assert await topic_size(ingest.settings.kafka_bootstrap, ingest.settings.topic_events) == 0


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def mutated_events() -> st.SearchStrategy[dict]:
    """Valid examples with one field replaced by an arbitrary JSON value or removed."""

    def mutate(base: dict, path: list[str], value: object, remove: bool) -> dict:
        out = json.loads(json.dumps(base))
        target = out
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(target, dict) else target
        if isinstance(target, dict):
            if remove:
                target.pop(path[-1], None)
            else:
                target[path[-1]] = value
        return out

    paths = st.sampled_from(
        [
            ["event_id"],
            ["type"],
            ["ticket_id"],
            ["occurred_at"],
            ["channel"],
            ["data"],
            ["data", "priority"],
            ["data", "status"],
            ["data", "author_role"],
            ["data", "public"],
            ["data", "tags"],
            ["data", "csat"],
            ["data", "nps"],
            ["received_at"],
            ["extra"],
        ]
    )
    return st.builds(
        mutate, st.sampled_from(list(EXAMPLES.values())), paths, json_values, st.booleans()
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        json_values,
        mutated_events(),
        st.builds(lambda e: {"events": e}, st.lists(mutated_events(), max_size=3)),
    )
)
async def test_arbitrary_input_never_500(ingest: Ingest, body: object) -> None:
    response = await ingest.client.post("/v1/events", json=body, headers=AUTH)
    assert response.status_code in (202, 400, 413, 422), response.text
    if response.status_code != 202:
        assert response.json()["accepted"] == 0


async def test_health_ready_metrics_openapi(ingest: Ingest) -> None:
    assert (await ingest.client.get("/healthz")).json() == {"status": "ok"}
    assert (await ingest.client.get("/readyz")).status_code == 200
    await ingest.client.post("/v1/events", json={"events": [event(1), event(2)]}, headers=AUTH)
    await ingest.client.post("/v1/events", content=b"{", headers=AUTH)
    metrics = (await ingest.client.get("/metrics")).text
    assert (
        'slawatch_ingest_events_accepted_total{source="crm",type="message.created"} 2.0' in metrics
    )
    assert (
        'slawatch_ingest_events_rejected_total{reason="malformed_json",source="crm",type="unknown"} 1.0'
        in metrics
    )
    assert "slawatch_ingest_publish_seconds_bucket" in metrics
    assert 'slawatch_ingest_batch_size_bucket{le="2.0"} 1.0' in metrics
    spec = (await ingest.client.get("/openapi.json")).json()
    examples = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ]
    assert {e["value"].get("type") for e in examples.values()} >= set(EXAMPLES)
