"""The shared input bounds: what they refuse, and that what they let through can be computed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from slawatch.shared.bounds import (
    EVENT_INSTANT_MAX,
    EVENT_INSTANT_MIN,
    INSTANT_MAX,
    MAX_DURATION_SECONDS,
    MAX_JSON_DEPTH,
    Instant,
    InstantRangeError,
    Line,
    Text,
    json_depth,
    shift,
)
from slawatch.shared.engine import (
    DurationError,
    advance,
    apply,
    describe,
    deserialise,
    load_policies,
    next_due,
    parse_duration,
    serialise,
)
from slawatch.shared.events import parse_event

EXAMPLE_POLICIES = Path(__file__).parents[1] / "examples" / "policies.yaml"
line, text, instant = TypeAdapter(Line), TypeAdapter(Text), TypeAdapter(Instant)


@given(st.text())
def test_line_and_text_accept_exactly_what_has_no_control_characters(value: str) -> None:
    controls = {chr(c) for c in range(0x20)} | {"\x7f"}
    surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    for adapter, allowed in ((line, set()), (text, {"\t", "\n", "\r"})):
        refused = surrogate or bool((set(value) & controls) - allowed)
        try:
            assert adapter.validate_python(value) == value
            assert not refused, repr(value)
        except ValidationError as exc:
            assert refused, repr(value)
            assert "position" in exc.errors()[0]["msg"]


@pytest.mark.parametrize(
    "value",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "1969-12-31T23:59:59Z"],
)
def test_instants_outside_the_range_are_refused_not_overflowed(value: str) -> None:
    with pytest.raises(ValidationError, match="must be between"):
        instant.validate_python(value)
    with pytest.raises(ValidationError, match="must be between"):
        instant.validate_json(json.dumps(value))


@pytest.mark.parametrize("value", [0, 1_700_000_000, "1700000000", 1e308, True, None, [], "soon"])
def test_an_instant_is_a_string(value: object) -> None:
    with pytest.raises(ValidationError):
        instant.validate_python(value)


def test_shift_refuses_to_leave_the_range() -> None:
    start = datetime(9999, 12, 1, tzinfo=UTC)
    assert shift(start, timedelta(days=30)) == datetime(9999, 12, 31, tzinfo=UTC)
    for delta in (timedelta(days=31), timedelta(days=3650), timedelta.max):
        with pytest.raises(InstantRangeError, match="9999-12-31"):
            shift(start, delta)
    assert shift(INSTANT_MAX, timedelta(0)) == INSTANT_MAX


@pytest.mark.parametrize("text", ["3650d", "87600h", "5256000m", "315360000s", "315360000000ms"])
def test_the_longest_duration(text: str) -> None:
    assert parse_duration(text) == timedelta(seconds=MAX_DURATION_SECONDS)


@pytest.mark.parametrize(
    "text", ["3651d", "99999999999d", "9" * 5000 + "s", "3650d1s", "3650d1ms", "١٥m", float(MAX_DURATION_SECONDS + 1)]
)
def test_longer_durations_are_refused(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)  # type: ignore[arg-type]


def test_one_grammar_everywhere() -> None:
    """Policies, routes, silences and ?within= read durations with the same parser."""
    from slawatch.services.notifier import app as notifier_app
    from slawatch.services.notifier import routes_file
    from slawatch.services.sla_monitor import app as monitor_app
    from slawatch.shared import durations

    assert parse_duration is durations.parse_duration
    assert routes_file.parse_duration is durations.parse_duration
    assert notifier_app.parse_duration is durations.parse_duration
    assert monitor_app.parse_duration is durations.parse_duration


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{{"}', 1),
        (b'["\\"[[["]', 1),
        (b"[" * 5000 + b"]" * 5000, 5000),
        (b"[" * 100_000, 100_000),
    ],
)
def test_json_depth_without_parsing(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_max_json_depth_leaves_room_for_every_valid_body() -> None:
    batch = {"events": [{"data": {"tags": ["a"]}}]}
    assert json_depth(json.dumps(batch).encode()) < MAX_JSON_DEPTH


@pytest.mark.parametrize("at", [EVENT_INSTANT_MIN, EVENT_INSTANT_MAX])
@pytest.mark.parametrize(
    "data",
    [
        {"priority": "urgent", "customer_tier": "gold"},
        {"priority": "high"},
        {"priority": "normal"},
        {"priority": "low", "customer_tier": "silver"},
    ],
)
def test_the_engine_computes_every_target_at_the_edges_of_the_event_range(
    at: datetime, data: dict
) -> None:
    # The example policies use business-hours calendars with holidays: the bound on event
    # instants exists so that their deadlines can always be computed.
    policies = load_policies(EXAMPLE_POLICIES)
    raw = {
        "event_id": "edge",
        "type": "ticket.created",
        "ticket_id": "EDGE",
        "occurred_at": at.isoformat(),
        "data": data,
    }
    state, _ = apply(None, parse_event(json.dumps(raw)), policies)
    targets = describe(state, at + timedelta(seconds=1), policies)["targets"]
    assert targets and all(t["deadline"] for t in targets if t["status"] == "running")
    due = next_due(state)
    assert due is not None
    state, emitted = advance(state, due + timedelta(days=3650), policies)
    assert emitted and deserialise(serialise(state)) is not None
