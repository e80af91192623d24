"""Each helpdesk's native payloads (tests/sources/payloads.py, sources cited there) become
the expected slawatch events; unknown event types are ignored; mapping files change what
they say; retries are duplicates downstream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slawatch.services.ingest.sources import ADAPTERS
from slawatch.services.ingest.sources.mapping import parse_mapping, resolve
from slawatch.services.ingest.sources.pipeline import Refused, delivery, parse_body, translate
from tests.sources.payloads import LIVES, Step

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
CASES = [
    pytest.param(system, step, id=f"{system}-{step.name}")
    for system, (life, _sign, _unknown) in LIVES.items()
    for step in life(T0)
]


def run(
    system: str, body: bytes, mapping: Any = None, headers: dict | None = None, at: datetime = T0
):
    resolved = resolve(system, ADAPTERS[system].defaults, mapping)
    received = delivery(system, headers or {}, body, at)
    return translate(system, received, parse_body(system, body), resolved)


@pytest.mark.parametrize(("system", "step"), CASES)
def test_native_payload_becomes_the_expected_events(system: str, step: Step) -> None:
    outcome = run(system, step.raw(), at=T0 + timedelta(seconds=step.at))
    got = [(e.type, e.data.model_dump(mode="json", exclude_none=True)) for e in outcome.events]
    assert [t for t, _ in got] == [t for t, _ in step.expected], got
    for (_, data), (_, wanted) in zip(got, step.expected, strict=True):
        assert wanted.items() <= data.items(), (data, wanted)
    for item in outcome.events:
        assert item.ticket_id.startswith(f"{system}:")
        assert item.occurred_at <= T0 + timedelta(seconds=step.at)


def test_every_system_covers_the_whole_life() -> None:
    for system, (life, _, _) in LIVES.items():
        types = {t for step in life(T0) for t, _ in step.expected}
        assert {"ticket.created", "message.created", "ticket.status_changed"} <= types, system


@pytest.mark.parametrize(
    "system", [s for s, (_, _, unknown) in LIVES.items() if unknown is not None]
)
def test_unknown_event_types_are_ignored_not_failed(system: str) -> None:
    import json

    unknown = LIVES[system][2]
    outcome = run(system, json.dumps(unknown).encode())
    assert outcome.events == [] and outcome.ignored


def test_the_same_delivery_twice_gives_the_same_event_ids() -> None:
    for system, (life, _, _) in LIVES.items():
        for step in life(T0):
            first = run(system, step.raw(), at=T0 + timedelta(seconds=step.at))
            again = run(system, step.raw(), at=T0 + timedelta(seconds=step.at + 30))
            if system != "freshdesk":  # Freshdesk has no event time: receipt time stands in
                assert [e.model_dump() for e in first.events] == [
                    e.model_dump() for e in again.events
                ]
            assert [e.event_id for e in first.events] == [e.event_id for e in again.events]


def test_a_custom_status_maps_through_the_mapping_file() -> None:
    """Jira: an unlisted status falls back to its status category (every Jira status has
    one); the mapping file says what it means for SLAs."""
    step = LIVES["jira"][0](T0)[5]
    body = step.raw().replace(b"Waiting for customer", b"Waiting on vendor")
    assert run("jira", body).events[0].data.status == "open"  # category "indeterminate"
    mapping = parse_mapping(
        "system: jira\nstatuses:\n  Waiting on vendor: on_hold\npriorities: {Highest: high}\n",
        "m.yaml",
    )
    outcome = run("jira", body, mapping)
    assert outcome.events[0].data.status == "on_hold"


def test_an_unmapped_custom_status_is_refused_naming_it() -> None:
    step = LIVES["zammad"][0](T0)[5]
    body = step.raw().replace(b"pending reminder", b"waiting on vendor")
    with pytest.raises(Refused) as refused:
        run("zammad", body)
    assert refused.value.detail[0]["field"] == "ticket.state"
    assert "waiting on vendor" in refused.value.message and "statuses" in refused.value.message
    mapping = parse_mapping("system: zammad\nstatuses: {Waiting on vendor: on_hold}\n", "m.yaml")
    assert run("zammad", body, mapping).events[-1].data.status == "on_hold"


def test_customer_tier_and_channel_from_the_mapping_file() -> None:
    mapping = parse_mapping(
        "system: zammad\nchannel: chat\ncustomer_tier:\n  path: ticket.organization.name\n"
        "  values: {Chrispresso Inc.: gold}\n",
        "m.yaml",
    )
    step = LIVES["zammad"][0](T0)[0]
    created = run("zammad", step.raw(), mapping).events[0]
    assert created.data.customer_tier == "gold" and created.channel == "chat"


def test_chatwoot_conversation_ids_are_namespaced_by_inbox() -> None:
    import json

    step = LIVES["chatwoot"][0](T0)[0]
    other = json.loads(step.raw())
    other["inbox_id"] = 999
    first = run("chatwoot", step.raw()).events[0]
    second = run("chatwoot", json.dumps(other).encode()).events[0]
    assert first.ticket_id == "chatwoot:128058:3" and second.ticket_id == "chatwoot:999:3"


def test_freshdesk_unquoted_triggered_event_is_repaired() -> None:
    body = b'{"freshdesk_webhook": {"triggered_event": {status:{from:2,to:3}}, "ticket_id": "11", "ticket_status": "Pending"}}'
    [changed] = run("freshdesk", body).events
    assert changed.type == "ticket.status_changed" and changed.data.status == "pending"


@pytest.mark.parametrize(
    ("system", "body", "field"),
    [
        ("zendesk", b'{"ticket": {"status": "Open"}}', "id"),
        ("zendesk", b'{"ticket": {"id": "1", "created_at": "yesterday"}}', "ticket.created_at"),
        ("jira", b'{"webhookEvent": "jira:issue_created", "timestamp": 1}', "issue"),
        ("zammad", b'{"article": {}}', "ticket"),
        ("chatwoot", b'{"event": "message_created", "id": 1}', "conversation"),
        (
            "freshdesk",
            b'{"freshdesk_webhook": {"ticket_id": "1", "triggered_event": "nonsense"}}',
            "freshdesk_webhook.triggered_event",
        ),
        (
            "zoho-desk",
            b'[{"eventType": "Ticket_Add", "eventTime": "1", "payload": {}}]',
            "0.eventTime",
        ),
    ],
)
def test_malformed_payloads_are_refused_naming_the_field(
    system: str, body: bytes, field: str
) -> None:
    with pytest.raises(Refused) as refused:
        run(system, body)
    assert refused.value.detail[0]["field"] == field, refused.value.detail


def test_text_the_database_cannot_hold_is_refused_naming_the_event_field() -> None:
    step = LIVES["zendesk"][0](T0)[0]
    body = step.raw().replace(b'"Billing"', b'"Bill\\u0000ing"')
    with pytest.raises(Refused) as refused:
        run("zendesk", body)
    assert refused.value.detail[0]["field"] == "data.group"
