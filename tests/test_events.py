"""The ticket-event contract: what is accepted, what is refused, and the wire form."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.events import EVENT_TYPES, EXAMPLES, dump_event, parse_event
from shared.schema_export import SCHEMAS, render
from shared.sla_events import EXAMPLE, SlaEvent, dump_sla_event, parse_sla_event, sla_event_id


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_every_type_has_a_valid_example(kind: str) -> None:
    event = parse_event(EXAMPLES[kind])
    assert event.type == kind
    assert parse_event(dump_event(event)) == event


def test_offsets_become_utc_and_naive_times_are_refused() -> None:
    event = parse_event({**EXAMPLES["ticket.created"], "occurred_at": "2026-03-08T01:30:00-05:00"})
    assert event.occurred_at == datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
    assert event.occurred_at.tzinfo is UTC
    with pytest.raises(ValidationError, match="timezone"):
        parse_event({**EXAMPLES["ticket.created"], "occurred_at": "2026-03-08T01:30:00"})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "ticket.deleted"}, "type"),
        ({"event_id": ""}, "event_id"),
        ({"ticket_id": "x" * 129}, "ticket_id"),
        ({"channel": "fax"}, "channel"),
        ({"data": {"priority": "critical"}}, "priority"),
        ({"data": {"status": "archived"}}, "status"),
        ({"data": {"tags": "not-a-list"}}, "tags"),
        ({"data": {"unknown": 1}}, "unknown"),
        ({"bonus": True}, "bonus"),
    ],
)
def test_refusals_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_event({**EXAMPLES["ticket.created"], **change})
    assert field in str(info.value)


def test_type_specific_rules() -> None:
    base = {k: v for k, v in EXAMPLES["survey.responded"].items() if k != "data"}
    assert parse_event({**base, "data": {"nps": 0}}).data.nps == 0
    for data in ({}, {"csat": 0}, {"csat": 6}, {"nps": 11}):
        with pytest.raises(ValidationError):
            parse_event({**base, "data": data})
    update = {k: v for k, v in EXAMPLES["ticket.updated"].items() if k != "data"}
    with pytest.raises(ValidationError, match="at least one"):
        parse_event({**update, "data": {}})
    message = {k: v for k, v in EXAMPLES["message.created"].items() if k != "data"}
    assert parse_event({**message, "data": {"author_role": "customer"}}).data.public is True
    created = parse_event({k: v for k, v in EXAMPLES["ticket.created"].items() if k != "data"})
    assert created.data.priority == "normal" and created.data.status == "new"


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.timezones()
    )
)
def test_any_aware_instant_round_trips_as_the_same_instant(moment: datetime) -> None:
    # RFC 3339 offsets are whole minutes; pre-1990 local mean times (e.g. -00:16:08) are not.
    # The wire carries the RFC 3339 text; that text's instant is what must survive. (Local
    # times around a zone's transition can compare unequal to their own text; not our concern.)
    sent = datetime.fromisoformat(moment.isoformat())
    event = parse_event({**EXAMPLES["message.created"], "occurred_at": moment.isoformat()})
    assert event.occurred_at == sent
    assert parse_event(dump_event(event)).occurred_at == sent


def test_sla_event_contract() -> None:
    event = parse_sla_event(EXAMPLE)
    assert parse_sla_event(dump_sla_event(event)) == event
    assert (
        sla_event_id("T/1", "next_response", 3, "sla.escalated", level=2)
        == "T/1/next_response/3/escalated-2"
    )
    assert (
        sla_event_id("T", "resolution", 0, "sla.warning", fraction=0.8)
        == "T/resolution/0/warning-80"
    )
    with pytest.raises(ValidationError):
        SlaEvent.model_validate({**EXAMPLE, "kind": "sla.exploded"})


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_published_schemas_match_the_models(name: str) -> None:
    with open(f"docs/schemas/{name}") as handle:
        assert handle.read() == render(name), "run `slawatch schemas` to regenerate docs/schemas/"
    assert json.loads(render(name))["$schema"].startswith("https://json-schema.org/")
