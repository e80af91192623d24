"""Issue #10's hostile inputs against the real ingest and broker: each is a 4xx naming the
field, in the documented error body, and nothing reaches the topic."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import schemathesis
from schemathesis.core.failures import FailureGroup

from slawatch.services.ingest.app import create_app
from slawatch.services.ingest.settings import IngestSettings
from slawatch.shared.bounds import MAX_JSON_DEPTH
from slawatch.shared.kafka import ensure_topics
from tests.helpers import serve, topic_settings, topic_size
from tests.ingest.test_ingest import AUTH, KEYS, Ingest, event

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Ingest]:
    settings = topic_settings(
        IngestSettings, topic_prefix, kafka_bootstrap, ingest_max_body_bytes=2 * 1024 * 1024
    )
    await ensure_topics(settings)
    async with (
        serve(create_app(settings, KEYS)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield Ingest(url, settings, client)


async def post(ingest: Ingest, body: bytes, content_type: str | None = "application/json"):
    headers = dict(AUTH)
    if content_type is not None:
        headers["content-type"] = content_type
    return await ingest.client.post("/v1/events", content=body, headers=headers)


async def documented(ingest: Ingest, response: httpx.Response) -> None:
    """The answer is one the published OpenAPI describes: status code and body."""
    spec = (await ingest.client.get("/openapi.json")).json()
    operation = schemathesis.openapi.from_dict(spec)["/v1/events"]["POST"]
    assert str(response.status_code) in spec["paths"]["/v1/events"]["post"]["responses"]
    operation.validate_response(response)


def deep(depth: int) -> bytes:
    return json.dumps({**event(1), "data": {"author_role": "agent"}}).encode()[:-1] + (
        b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "0001-01-01T00:00:00+14:00"}, "occurred_at"),
        ({"occurred_at": "9999-12-31T23:59:59-12:00"}, "occurred_at"),
        ({"occurred_at": "2300-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": 1764000000}, "occurred_at"),
        ({"occurred_at": "1764000000"}, "occurred_at"),
        ({"occurred_at": 1e308}, "occurred_at"),
        ({"received_at": "0001-01-01T00:00:00+14:00"}, "received_at"),
        ({"ticket_id": "R\u0000X"}, "ticket_id"),
        ({"event_id": "e\u0007"}, "event_id"),
        ({"channel": "chat\u0000"}, "channel"),
        ({"source": "crm\u0000"}, "source"),
        ({"data": {"author_role": "agent", "public": 10**400}}, "data.public"),
        (
            {"type": "ticket.created", "data": {"group": "b\u0000", "tags": ["x\u0000"]}},
            "data.group",
        ),
        ({"type": "ticket.created", "data": {"subject": "s\u001b[2J"}}, "data.subject"),
        ({"type": "survey.responded", "data": {"csat": 10**30}}, "data.csat"),
        # Handle time (#14): negative, absurd (over a day), fractional, or not an agent's.
        ({"data": {"author_role": "agent", "handle_seconds": -1}}, "data.handle_seconds"),
        ({"data": {"author_role": "agent", "handle_seconds": 86_401}}, "data.handle_seconds"),
        ({"data": {"author_role": "agent", "handle_seconds": 10**12}}, "data.handle_seconds"),
        ({"data": {"author_role": "agent", "handle_seconds": 1.5}}, "data.handle_seconds"),
        ({"data": {"author_role": "customer", "handle_seconds": 60}}, "data"),
        ({"type": "work.logged", "data": {"agent": "li.na", "seconds": 0}}, "data.seconds"),
        ({"type": "work.logged", "data": {"agent": "li.na", "seconds": -60}}, "data.seconds"),
        ({"type": "work.logged", "data": {"agent": "li.na", "seconds": 90_000}}, "data.seconds"),
        ({"type": "work.logged", "data": {"agent": "", "seconds": 60}}, "data.agent"),
        ({"type": "work.logged", "data": {"seconds": 60}}, "data.agent"),
    ],
)
async def test_refused_with_422_naming_the_field(ingest: Ingest, change: dict, field: str) -> None:
    for body in (
        json.dumps({**event(1), **change}).encode(),
        json.dumps({"events": [event(0), {**event(1), **change}]}).encode(),
    ):
        response = await post(ingest, body)
        assert response.status_code == 422, response.text
        assert field in {d["field"] for d in response.json()["detail"]}, response.text
        assert response.json()["accepted"] == 0
        await documented(ingest, response)
    assert await topic_size(ingest.settings.kafka_bootstrap, ingest.settings.topic_events) == 0


async def test_a_lone_surrogate_is_refused(ingest: Ingest) -> None:
    body = json.dumps(event(1)).replace('"T-1"', '"T-\\ud800"').encode()
    response = await post(ingest, body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "ticket_id"
    await documented(ingest, response)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
async def test_deep_nesting_is_a_400_at_any_depth(ingest: Ingest, depth: int) -> None:
    for body in (deep(depth), b"[" * depth + b"]" * depth, b'{"events": ' + b"[" * depth):
        response = await post(ingest, body)
        assert response.status_code == 400, response.text
        assert str(MAX_JSON_DEPTH) in response.json()["error"]
        await documented(ingest, response)


@pytest.mark.parametrize(
    "body",
    [b'{"events": [NaN]}', b"Infinity", b'{"event_id": -Infinity}', b"\xff\xfe{}", b"1" * 5000],
)
async def test_what_json_is_not_is_a_400(ingest: Ingest, body: bytes) -> None:
    response = await post(ingest, body)
    assert response.status_code == 400, response.text
    await documented(ingest, response)


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/json; charset=utf-8", 202),
        ("application/cloudevents+json", 202),
        (None, 202),
    ],
)
async def test_only_json_content_types(ingest: Ingest, content_type, status: int) -> None:
    response = await post(ingest, json.dumps(event(1)).encode(), content_type)
    assert response.status_code == status, response.text
    await documented(ingest, response)


async def test_every_error_answer_is_the_documented_body(ingest: Ingest) -> None:
    answers = [
        await ingest.client.post("/v1/events", json=event(1)),  # 401
        await post(ingest, b"{"),  # 400
        await post(ingest, json.dumps({"events": [event(i) for i in range(1001)]}).encode()),
        await post(ingest, b" " * (2 * 1024 * 1024 + 1)),  # 413
        await post(ingest, b"[]"),  # 422
    ]
    assert [a.status_code for a in answers] == [401, 400, 413, 413, 422]
    for answer in answers:
        await documented(ingest, answer)
    spec = (await ingest.client.get("/openapi.json")).json()
    errors = spec["paths"]["/v1/events"]["post"]["responses"]
    assert {"400", "401", "413", "415", "422", "503"} <= set(errors)
    assert "HTTPValidationError" not in json.dumps(spec)


async def test_the_schema_check_itself_refuses_fastapis_default_shape(ingest: Ingest) -> None:
    # A control for `documented`: the shape the OpenAPI used to publish no longer passes.
    real = await post(ingest, b"[]")
    fake = httpx.Response(
        422,
        json={"detail": [{"loc": ["body"], "msg": "x", "type": "missing"}]},
        request=real.request,
    )
    fake.elapsed = real.elapsed
    await documented(ingest, real)
    with pytest.raises(FailureGroup) as info:
        await documented(ingest, fake)
    assert any("violates schema" in str(e) for e in info.value.exceptions)


CUSTOMER = {
    "event_id": "crm-1",
    "type": "customer.updated",
    "occurred_at": "2026-11-23T09:00:00+08:00",
    "data": {"customer_id": "C-1", "status": "churned"},
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data": {"customer_id": "C-1"}}, "data"),  # changes nothing
        ({"data": {"customer_id": "", "tier": "gold"}}, "data.customer_id"),
        ({"data": {"customer_id": "C\u0000", "tier": "gold"}}, "data.customer_id"),
        ({"data": {"customer_id": "C-1", "status": "gone"}}, "data.status"),
        ({"data": {"customer_id": "C-1", "tier": "x" * 257}}, "data.tier"),
        ({"ticket_id": "T-1"}, "ticket_id"),  # a customer's event, not a ticket's
        ({"occurred_at": "2026-11-23T09:00:00"}, "occurred_at"),
    ],
)
async def test_customer_events_refused_with_422_naming_the_field(
    ingest: Ingest, change: dict, field: str
) -> None:
    response = await post(ingest, json.dumps({**CUSTOMER, **change}).encode())
    assert response.status_code == 422, response.text
    assert field in {d["field"] for d in response.json()["detail"]}, response.text
    assert await topic_size(ingest.settings.kafka_bootstrap, ingest.settings.topic_events) == 0
