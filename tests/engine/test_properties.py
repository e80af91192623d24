"""Properties of the state machine, checked with hypothesis over random ticket histories."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from slawatch.shared.engine import (
    advance,
    apply,
    describe,
    deserialise,
    load_policies,
    parse_duration,
    serialise,
)
from slawatch.shared.events import parse_event
from slawatch.shared.sla_events import dump_sla_event, parse_sla_event
from tests.engine.helpers import POLICIES, Downstream, assert_valid, policies, random_ticket

PS = policies()


def play(events, now, roundtrip=False):  # noqa: ANN001, ANN201
    state, out = None, []
    for event in events:
        state, produced = apply(state, event, PS)
        out.extend(produced)
        if roundtrip:
            state = deserialise(serialise(state), PS)
    assert state is not None, "no events"
    state, produced = advance(state, now)
    out.extend(produced)
    return state, out


def standing(state):  # noqa: ANN001, ANN201
    """The outcomes that stand: breaches not retracted and the escalation level reached."""
    return {key: entry.escalation_level for key, entry in state.ledger.items() if entry.breach_stands}


def play_stepped(events, steps, now, policies=None, roundtrip=False):  # noqa: ANN001, ANN201
    """Apply ``events`` in the order given; ``steps[i]`` are the instants the timer fires
    (``advance``) before the i-th event: any instant, also past events still to arrive."""
    state, out = None, []
    for i, event in enumerate(events):
        for moment in steps.get(i, ()):
            if state is not None:
                state, produced = advance(state, moment, policies and policies[i])
                out.extend(produced)
        state, produced = apply(state, event, policies[i] if policies else PS)
        out.extend(produced)
        if roundtrip:
            state = deserialise(serialise(state), policies[i] if policies else PS)
    assert state is not None, "no events"
    state, produced = advance(state, now, policies and policies[-1])
    out.extend(produced)
    return state, out


def timer_steps(data: st.DataObject, count: int, start, end):  # noqa: ANN001, ANN201
    minutes = int((end - start).total_seconds() // 60)
    drawn = data.draw(st.lists(st.tuples(st.integers(0, count - 1), st.integers(0, minutes)), max_size=6))
    steps: dict[int, list] = {}
    for position, offset in drawn:
        steps.setdefault(position, []).append(start + timedelta(minutes=offset))
    return steps


def check_instants(events, out) -> None:  # noqa: ANN001
    """Escalations at deadline + offset in business time (unless a status change in between
    paused the clock); warnings carry the deadline as it stood when their share was counted."""
    changes = [e.occurred_at for e in events if e.type == "ticket.status_changed"]
    for record in out:
        policy = PS.get(record.policy)
        assert policy is not None, record  # the engine names only policies of the set
        if record.kind == "sla.warning":
            spec = policy.targets[record.target]
            assert record.deadline_ms == spec.calendar.add(record.at_ms, record.target_ms - record.elapsed_ms), record
        elif record.kind == "sla.escalated" and not any(record.deadline <= c < record.occurred_at for c in changes):
            offset = policy.escalations[record.level - 1]
            assert record.at_ms == policy.calendar.add(record.deadline_ms, offset), record


@settings(deadline=None)  # examples: the hypothesis profile's (tests/conftest.py)
@given(seed=st.integers(0, 2**32 - 1), data=st.data(), hours_after=st.sampled_from([0, 1, 30]))
def test_arrival_order_and_timer_steps_end_in_the_same_standing_sla_events(
    seed: int, data: st.DataObject, hours_after: int
) -> None:
    """In event-time order, shuffled, with the timer firing at random instants in between
    (also instants past events still to arrive, as when a backdated event comes in), saved
    and loaded between events or not: the SLA events a consumer ends up holding are the
    same breaches and escalations, with the same deadlines, instants and policies."""
    events = random_ticket(random.Random(seed))
    start = events[0].occurred_at
    now = max(e.occurred_at for e in events) + timedelta(hours=hours_after)
    expected_state, expected_out = play(events, now)
    expected = Downstream(strict_met=True).read(expected_out)
    assert expected.retractions == 0, "nothing to withdraw when every event arrives in time"
    check_instants(events, expected_out)
    shuffled = data.draw(st.permutations(events))
    runs = [  # name, arrival order, timer steps, saved and loaded between events
        ("shuffled", shuffled, {}, data.draw(st.booleans())),
        ("stepped", events, timer_steps(data, len(events), start, now), data.draw(st.booleans())),
        ("shuffled, stepped", shuffled, timer_steps(data, len(events), start, now), data.draw(st.booleans())),
    ]
    for name, order, steps, roundtrip in runs:
        state, out = play_stepped(order, steps, now, roundtrip=roundtrip)
        # In event-time order a met is decided with every earlier event known: exact.
        held = Downstream(strict_met=order is events).read(out)
        assert held.standing() == expected.standing(), name
        assert standing(state) == standing(expected_state), name
        assert describe(state, now) == describe(expected_state, now), name
        # Warnings and met notices are never withdrawn: a late arrival can only add to them.
        assert held.notice_ids() >= expected.notice_ids(), name
        emitted = [e.id for e in out]
        assert len(emitted) == len(set(emitted)), f"{name}: an SLA event id was emitted twice"
        check_instants(events, out)
        for record in out[:: max(1, len(out) // 4)]:
            assert_valid(record)


OTHER = load_policies("other.yaml", text=POLICIES.replace(
    "targets: {first_response: 15m, next_response: 30m, resolution: 4h}",
    "targets: {first_response: 40m, next_response: 10m, resolution: 2h}").replace(
    "escalations: [0m, 30m, 2h]", "escalations: [5m, 1h]").replace(
    "targets: {first_response: 1h, periodic_update: 2h, resolution: 8h}",
    "targets: {first_response: 20m, periodic_update: 3h, resolution: 6h}"))


@settings(deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_a_policy_reload_ends_where_the_new_file_would_have_started(seed: int, data: st.DataObject) -> None:
    """Part of the ticket applied (and timed) under another policy file, the rest under this
    one: the standing breaches and escalations are those of this file from the start."""
    events = random_ticket(random.Random(seed))
    start = events[0].occurred_at
    now = max(e.occurred_at for e in events) + timedelta(hours=data.draw(st.sampled_from([0, 2, 30])))
    _, expected_out = play(events, now)
    expected = Downstream().read(expected_out)
    order = data.draw(st.permutations(events))
    switch = data.draw(st.integers(1, len(events)))
    files = [OTHER] * switch + [PS] * (len(events) - switch)
    _, out = play_stepped(order, timer_steps(data, len(events), start, now), now, [*files, PS])
    assert Downstream().read(out).standing() == expected.standing()


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_duplicates_change_nothing(seed: int, data: st.DataObject) -> None:
    events = random_ticket(random.Random(seed))
    now = max(e.occurred_at for e in events)
    state, out = play(events, now)
    blob = serialise(state)
    for event in data.draw(st.lists(st.sampled_from(events), min_size=1, max_size=6)):
        state, produced = apply(state, event, PS)
        assert produced == []
    assert serialise(state) == blob


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), pause_at=st.integers(0, 3000), pause_for=st.integers(1, 3000),
       tier=st.sampled_from(["gold", "silver", None]))
def test_pausing_never_makes_a_deadline_earlier(seed: int, pause_at: int, pause_for: int, tier: str | None) -> None:
    rng = random.Random(seed)
    events = random_ticket(rng, statuses=False)
    created = events[0].model_copy(update={"data": events[0].data.model_copy(update={"customer_tier": tier})})
    # One policy throughout: with a re-selection the deadlines compared would be those of
    # different policies (see test_machine for re-selection).
    events = [created, *(e for e in events[1:] if e.type == "message.created")]
    start = events[0].occurred_at
    pause = [parse_event({"event_id": f"p{i}", "type": "ticket.status_changed", "ticket_id": "T1",
                          "occurred_at": (start + timedelta(minutes=m)).isoformat(), "data": {"status": s}})
             for i, (m, s) in enumerate([(pause_at, "pending"), (pause_at + pause_for, "open")])]
    now = max(e.occurred_at for e in events + pause) + timedelta(minutes=1)
    plain, _ = play(events, now)
    paused, _ = play(events + pause, now)
    before = {(t["target"], t["cycle"]): t for t in describe(plain, now)["targets"]}
    for target in describe(paused, now)["targets"]:
        other = before.get((target["target"], target["cycle"]))
        if other is None or target.get("deadline") is None or other.get("deadline") is None:
            continue
        assert target["deadline"] >= other["deadline"], (target, other)
        assert target.get("elapsed_seconds", 0) <= other.get("elapsed_seconds", 0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), steps=st.lists(st.integers(1, 600), min_size=1, max_size=8))
def test_advance_in_steps_equals_one_advance(seed: int, steps: list[int]) -> None:
    """The timer may fire at any granularity: the same SLA events come out, with true instants."""
    events = random_ticket(random.Random(seed))
    last = max(e.occurred_at for e in events)
    end = last + timedelta(minutes=sum(steps))
    _, whole = play(events, end)
    state, stepped = play(events, last)
    moment = last
    for minutes in steps:
        moment += timedelta(minutes=minutes)
        state, produced = advance(state, moment)
        assert all(e.occurred_at <= moment for e in produced)
        stepped.extend(produced)
    assert sorted((e.id, e.occurred_at) for e in stepped) == sorted((e.id, e.occurred_at) for e in whole)


def test_duration_strings_round_trip_through_the_policy_units() -> None:
    assert parse_duration("1h30m") // timedelta(milliseconds=1) == 5_400_000


# Odd text as the contract admits it (shared/bounds.py): any script, quotes, backslashes and
# C1 controls, but no C0 control, DEL or lone surrogate (ingest refuses those with a 422).
_text = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=["Cs"],
        exclude_characters=[chr(code) for code in range(0x20)] + ["\x7f"],
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), subject=_text, group=_text, assignee=_text, url=_text,
       tags=st.lists(_text, max_size=3, unique=True), ticket=_text.filter(lambda t: t.strip() == t))
def test_records_are_valid_sla_events_and_their_json_is_the_models(  # noqa: PLR0913
    seed: int, subject: str, group: str, assignee: str, url: str, tags: list[str], ticket: str
) -> None:
    """The engine emits SlaRecords; the monitor publishes ``record.to_json()`` without building
    the model. Whatever the ticket's text (quotes, control characters, any script), those
    bytes must be exactly what the model would write, and parse back to the same event."""
    events = random_ticket(random.Random(seed), ticket="T1")
    created = events[0]
    data = created.data.model_copy(
        update={"subject": subject, "group": group, "assignee": assignee, "url": url, "tags": tags}
    )
    events = [e.model_copy(update={"ticket_id": ticket}) for e in [created.model_copy(update={"data": data}), *events[1:]]]
    _, out = play(events, max(e.occurred_at for e in events) + timedelta(hours=30))
    assert out, "a 30-hour horizon always crosses some threshold"
    for record in out:
        assert_valid(record)
        late = record.flagged_late()
        assert late.detected_late and not record.detected_late
        assert parse_sla_event(late.to_json()) == late.to_event() == late
        assert late.to_json() == dump_sla_event(late.to_event())
