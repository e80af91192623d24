"""The ticket-event contract: what is accepted, what is refused, and the wire form."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from slawatch.services.schemas import SCHEMAS, render
from slawatch.shared.events import (
    EVENT_TYPES,
    EXAMPLES,
    MessageCreated,
    SurveyResponded,
    TicketCreated,
    dump_event,
    parse_event,
)
from slawatch.shared.sla_events import (
    EXAMPLE,
    SlaEvent,
    dump_sla_event,
    parse_sla_event,
    sla_event_id,
)


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


E = TypeVar("E")


def parsed_as(kind: type[E], raw: dict[str, Any]) -> E:
    """parse_event's result, checked to be of the event class the test then reads."""
    event = parse_event(raw)
    assert isinstance(event, kind), event
    return event


def test_type_specific_rules() -> None:
    base = {k: v for k, v in EXAMPLES["survey.responded"].items() if k != "data"}
    assert parsed_as(SurveyResponded, {**base, "data": {"nps": 0}}).data.nps == 0
    for data in ({}, {"csat": 0}, {"csat": 6}, {"nps": 11}):
        with pytest.raises(ValidationError):
            parse_event({**base, "data": data})
    update = {k: v for k, v in EXAMPLES["ticket.updated"].items() if k != "data"}
    with pytest.raises(ValidationError, match="at least one"):
        parse_event({**update, "data": {}})
    message = {k: v for k, v in EXAMPLES["message.created"].items() if k != "data"}
    message_event = parsed_as(MessageCreated, {**message, "data": {"author_role": "customer"}})
    assert message_event.data.public is True
    created = parsed_as(
        TicketCreated, {k: v for k, v in EXAMPLES["ticket.created"].items() if k != "data"}
    )
    assert created.data.priority == "normal" and created.data.status == "new"


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 30), timezones=st.timezones()
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


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("occurred_at", "0001-01-01T00:00:00+14:00", "must be between"),
        ("occurred_at", "9999-12-31T23:59:59-12:00", "must be between"),
        ("occurred_at", "1971-01-01T23:59:59Z", "must be between"),
        ("occurred_at", "2100-01-01T00:00:00Z", "must be between"),
        ("occurred_at", 1_700_000_000, "RFC 3339"),
        ("occurred_at", "1700000000", "RFC 3339"),
        ("occurred_at", 1.5e300, "RFC 3339"),
        ("occurred_at", "2026-11-23T09:15:00", "timezone"),
        ("received_at", "0001-01-01T00:00:00+14:00", "must be between"),
        ("ticket_id", "R\u0000X", "U+0000"),
        ("ticket_id", "R\nX", "U+000A"),
        ("event_id", "e\u001b[31m", "U+001B"),
        ("ticket_id", "T\ud800", "surrogate"),
        ("source", "crm\u007f", "U+007F"),
    ],
)
def test_envelope_bounds_name_the_field(field: str, value: object, says: str) -> None:
    for raw in ({**EXAMPLES["ticket.created"], field: value},):
        with pytest.raises(ValidationError) as info:
            parse_event(raw)
        [error] = info.value.errors()
        assert error["loc"][-1] == field and says in error["msg"], error
    if "\ud800" not in str(value):  # JSON text cannot carry a lone surrogate as UTF-8
        with pytest.raises(ValidationError, match=field):
            parse_event(json.dumps({**EXAMPLES["ticket.created"], field: value}))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"group": "billing\u0000"}, "group"),
        ({"tags": ["ok", "b\u0000d"]}, "tags"),
        ({"subject": "line one\u0000"}, "subject"),
        ({"url": "https://x.example/\r\n"}, "url"),
        ({"customer_tier": "gold\u0085" + "\u0001"}, "customer_tier"),
    ],
)
def test_data_strings_refuse_control_characters(data: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_event({**EXAMPLES["ticket.created"], "data": data})
    assert field in {str(p) for p in info.value.errors()[0]["loc"]}


def test_free_text_keeps_tabs_and_line_breaks_and_the_edges_of_the_range_are_in() -> None:
    subject = "Charged twice\r\n\tfor November: 请退款 🙂"
    event = parsed_as(TicketCreated, {**EXAMPLES["ticket.created"], "data": {"subject": subject}})
    assert event.data.subject == subject
    for edge in ("1971-01-02T00:00:00Z", "2099-12-31T23:59:59.999999Z", "2099-12-31T23:59:59Z"):
        assert parse_event({**EXAMPLES["message.created"], "occurred_at": edge})
