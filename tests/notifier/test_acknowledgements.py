"""Acknowledging a breach through the notifier's API, on the real broker and PostgreSQL:
reminders stop (the waiting one is recorded `acknowledged`), escalations still go out,
a second acknowledgement is refused (409), withdrawal is kept for the record, bad input
is a 422 naming the field, and a restarted notifier still honours it (it is stored).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.notifier import test_service
from tests.notifier.support import sla_event
from tests.notifier.test_service import AUTH, eventually, log_rows, notifier, publish

pytestmark = pytest.mark.integration
settings = test_service.settings  # the fixture: settings of a fresh database and topics


def reminding_routes(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"""
version: 1
defaults: {{group_wait: 0s, group_interval: 1s, repeat_interval: 1s, repeat_limit: 50}}
receivers:
  - name: supervisors
    integrations:
      - type: webhook
        url: "{url}"
        secret: s3cret
routes:
  - receiver: supervisors
"""
    )
    return path


def events_at(sink, path: str) -> list[tuple[str, str]]:
    return [(e["kind"], e["ticket_id"]) for r in sink.at(path) for e in r.json()["events"]]


async def test_acknowledgement_stops_reminders_but_not_escalations(settings, http_sink, tmp_path):
    sink, url = http_sink
    path = f"/{uuid.uuid4().hex[:8]}"
    ticket = f"A-{uuid.uuid4().hex[:6]}"
    routes = reminding_routes(tmp_path, url + path)
    async with notifier(settings, routes) as client:
        await publish(settings, sla_event(ticket=ticket))
        await sink.wait_for(path, 2, timeout=20)  # the breach and its first reminder
        body = {"ticket_id": ticket, "target": "first_response", "comment": "calling them"}
        assert (await client.post("/v1/acknowledgements", json=body)).status_code == 401
        made = await client.post("/v1/acknowledgements", json=body, headers=AUTH)
        assert made.status_code == 201, made.text
        ack = made.json()
        assert ack["acknowledged_by"] == "ops" and ack["standing"] and ack["cycle"] == 0
        assert ack["comment"] == "calling them"
        again = await client.post("/v1/acknowledgements", json=body, headers=AUTH)
        assert again.status_code == 409 and ack["id"] in again.text

        async def acknowledged_row():
            rows = await log_rows(client, ticket_id=ticket, status="acknowledged")
            return rows or None

        [row] = await eventually(acknowledged_row)
        assert row["reason"] == "acknowledged by ops" and row["repeat"] >= 1
        count = len(sink.at(path))
        await asyncio.sleep(2.5)  # two more repeat intervals: nothing more is sent
        assert len(sink.at(path)) == count
        statuses = {r["status"] for r in await log_rows(client, ticket_id=ticket)}
        assert statuses == {"sent", "acknowledged"}

        await publish(settings, sla_event("sla.escalated", ticket=ticket, level=1))
        await sink.wait_for(path, count + 1)
        assert events_at(sink, path)[-1] == ("sla.escalated", ticket)

        listed = await client.get(
            "/v1/acknowledgements", params={"ticket_id": [ticket, "other"]}, headers=AUTH
        )
        assert [a["id"] for a in listed.json()["acknowledgements"]] == [ack["id"]]
        withdrawn = await client.delete(f"/v1/acknowledgements/{ack['id']}", headers=AUTH)
        assert withdrawn.status_code == 200 and not withdrawn.json()["standing"]
        assert withdrawn.json()["withdrawn_by"] == "ops"
        standing = await client.get(
            "/v1/acknowledgements", params={"ticket_id": ticket, "standing": "true"}, headers=AUTH
        )
        assert standing.json()["acknowledgements"] == []
        assert (
            await client.delete("/v1/acknowledgements/nope", headers=AUTH)
        ).status_code == 404
        renewed = await client.post(
            "/v1/acknowledgements", json={**body, "acknowledged_by": "li.na"}, headers=AUTH
        )
        assert renewed.status_code == 201 and renewed.json()["acknowledged_by"] == "li.na"

    # A new notifier process (same database) loads the standing acknowledgement.
    other = f"B-{uuid.uuid4().hex[:6]}"
    async with notifier(settings, routes) as client:
        made = await client.post(
            "/v1/acknowledgements",
            json={"ticket_id": other, "target": "first_response"},
            headers=AUTH,
        )
        assert made.status_code == 201
    async with notifier(settings, routes) as client:
        await publish(settings, sla_event(ticket=other))

        async def sent():
            rows = await log_rows(client, ticket_id=other)
            return rows if any(r["status"] == "sent" for r in rows) else None

        await eventually(sent)
        await asyncio.sleep(2.5)  # no reminder is even queued for an acknowledged breach
        rows = await log_rows(client, ticket_id=other)
        assert [(r["repeat"], r["status"]) for r in rows] == [(0, "sent")]


BAD = [
    ({"target": "first_response"}, "ticket_id"),
    ({"ticket_id": "", "target": "first_response"}, "ticket_id"),
    ({"ticket_id": "T\x00", "target": "first_response"}, "ticket_id"),
    ({"ticket_id": "T" * 129, "target": "first_response"}, "ticket_id"),
    ({"ticket_id": "T", "target": "lunch"}, "target"),
    ({"ticket_id": "T", "target": "resolution", "cycle": -1}, "cycle"),
    ({"ticket_id": "T", "target": "resolution", "comment": "x" * 2001}, "comment"),
    ({"ticket_id": "T", "target": "resolution", "colour": "red"}, "colour"),
]


async def test_bad_acknowledgements_are_422_naming_the_field(settings, http_sink, tmp_path):
    _, url = http_sink
    async with notifier(settings, reminding_routes(tmp_path, url + "/x")) as client:
        for body, field in BAD:
            response = await client.post("/v1/acknowledgements", json=body, headers=AUTH)
            assert response.status_code == 422, (body, response.text)
            assert field in response.text, (body, response.text)
        bad = await client.get(
            "/v1/acknowledgements", params={"ticket_id": "T\x00"}, headers=AUTH
        )
        assert bad.status_code == 422 and "ticket_id" in bad.text
