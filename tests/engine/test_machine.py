"""The SLA state machine: worked examples per target and per rule in docs/policies.md."""

from __future__ import annotations

import pytest

from slawatch.shared.engine import (
    StateError,
    advance,
    apply,
    describe,
    deserialise,
    facts,
    is_open,
    load_policies,
    next_due,
    serialise,
    timeline,
)
from slawatch.shared.sla_events import Target, dump_sla_event, parse_sla_event
from tests.engine.helpers import POLICIES, ev, ids, policies, run, utc

PS = policies()


def by_id(events):  # noqa: ANN001, ANN202
    return {e.id: e for e in events}


def test_first_response_warnings_breach_escalation_and_met() -> None:
    state, out = run([ev("created", "2026-03-02T09:00", priority="urgent", customer_tier="gold", url="https://x/1")], PS)
    assert out == []
    assert next_due(state) == utc("2026-03-02T09:07:30")
    state, out = advance(state, utc("2026-03-02T09:10"))
    assert ids(out) == ["T1/first_response/0/warning-50"]
    assert out[0].occurred_at == utc("2026-03-02T09:07:30") and out[0].deadline == utc("2026-03-02T09:15")
    assert out[0].fraction == 0.5 and out[0].url == "https://x/1" and out[0].policy == "vip"
    assert advance(state, utc("2026-03-02T09:10"))[1] == []  # nothing twice
    state, out = advance(state, utc("2026-03-02T09:20"))
    assert ids(out) == ["T1/first_response/0/warning-80", "T1/first_response/0/breached",
                        "T1/first_response/0/escalated-1"]
    assert [e.occurred_at for e in out] == [utc("2026-03-02T09:12"), utc("2026-03-02T09:15"), utc("2026-03-02T09:15")]
    assert next_due(state) == utc("2026-03-02T09:45")  # escalation level 2 (30m after the breach)
    state, out = apply(state, ev("agent", "2026-03-02T09:25"), PS)
    assert ids(out) == ["T1/first_response/0/met"]
    assert out[0].breached is True and out[0].elapsed_seconds == 1500 and out[0].target_seconds == 900
    assert next_due(state) == utc("2026-03-02T11:00")  # the resolution's 50 % warning; no more escalations
    for event in out:
        assert parse_sla_event(event.to_json()) == event
        assert event.to_json() == dump_sla_event(event.to_event())


def test_reply_exactly_at_the_deadline_is_in_time() -> None:
    _, out = run([ev("created", "2026-03-02T09:00", priority="urgent", customer_tier="gold"),
                  ev("agent", "2026-03-02T09:15")], PS)
    met = by_id(out)["T1/first_response/0/met"]
    assert met.breached is False and "T1/first_response/0/breached" not in by_id(out)


def test_next_response_cycles() -> None:
    state, out = run([
        ev("created", "2026-03-02T09:00", priority="urgent", customer_tier="gold"),
        ev("agent", "2026-03-02T09:10"),
        ev("customer", "2026-03-02T10:00"),
        ev("customer", "2026-03-02T10:05"),  # the oldest unanswered message starts the clock
        ev("agent", "2026-03-02T10:20"),
        ev("customer", "2026-03-02T11:00"),
    ], PS)
    assert by_id(out)["T1/next_response/1/met"].breached is False
    assert by_id(out)["T1/next_response/1/met"].deadline == utc("2026-03-02T10:30")
    state, out = advance(state, utc("2026-03-02T11:31"))
    assert "T1/next_response/2/breached" in by_id(out)
    assert by_id(out)["T1/next_response/2/breached"].occurred_at == utc("2026-03-02T11:30")


def test_periodic_update_and_solve() -> None:
    state, out = run([
        ev("created", "2026-03-02T09:00", priority="normal"),
        ev("agent", "2026-03-02T09:30"),   # first response met; update cycle 1 starts
        ev("agent", "2026-03-02T11:00"),   # cycle 1 met; cycle 2 due 13:00
        ev("status", "2026-03-02T12:00", status="solved"),
    ], PS)
    got = by_id(out)
    assert got["T1/periodic_update/1/met"].deadline == utc("2026-03-02T11:30")
    assert got["T1/periodic_update/2/met"].occurred_at == utc("2026-03-02T12:00")
    assert got["T1/resolution/0/met"].breached is False and got["T1/resolution/0/met"].elapsed_seconds == 3 * 3600
    assert not is_open(state) and next_due(state) is None


def test_pause_and_resume_moves_the_resolution_deadline() -> None:
    state, _ = run([ev("created", "2026-03-02T09:00"), ev("agent", "2026-03-02T09:10"),
                    ev("status", "2026-03-02T10:00", status="pending")], PS)
    paused = describe(state, utc("2026-03-02T11:00"))["targets"]
    resolution = next(t for t in paused if t["target"] == "resolution")
    assert resolution["status"] == "paused" and resolution["elapsed_seconds"] == 3600
    state, _ = apply(state, ev("status", "2026-03-02T12:00", status="open"), PS)
    resolution = next(t for t in describe(state, utc("2026-03-02T12:00"))["targets"] if t["target"] == "resolution")
    assert resolution["deadline"] == "2026-03-02T19:00:00+00:00"  # 8 h target + 2 h paused
    assert resolution["remaining_seconds"] == 7 * 3600


def test_reopen_continues_the_same_clock() -> None:
    state, out = run([ev("created", "2026-03-02T09:00"), ev("agent", "2026-03-02T09:10"),
                      ev("status", "2026-03-02T12:00", status="solved")], PS)
    assert by_id(out)["T1/resolution/0/met"].breached is False
    state, out = apply(state, ev("status", "2026-03-02T14:00", status="open"), PS)
    assert is_open(state)
    resolution = next(t for t in describe(state, utc("2026-03-02T14:00"))["targets"] if t["target"] == "resolution")
    assert resolution["deadline"] == "2026-03-02T19:00:00+00:00" and resolution["status"] == "running"
    state, out = run([ev("status", "2026-03-02T20:00", status="solved")], PS, state)
    got = by_id(out)
    assert got["T1/resolution/0/breached"].occurred_at == utc("2026-03-02T19:00")
    assert got["T1/resolution/0/met.r1"].breached is True  # the second time it is met


def test_priority_change_reselects_and_recomputes_from_the_original_start() -> None:
    state, out = run([ev("created", "2026-03-02T09:00", priority="normal", customer_tier="gold")], PS)
    assert state.policy_id == "standard"
    state, out = apply(state, ev("updated", "2026-03-02T09:20", priority="urgent"), PS)
    assert state.policy_id == "vip" and state.why == {"customer_tier": "gold", "priority": "urgent"}
    got = by_id(out)
    # 15 minutes from 09:00 had passed at 09:20: under vip the target fell due at 09:15, and
    # the breach says so, as it would have had the ticket been vip from the start.
    breach = got["T1/first_response/0/breached"]
    assert breach.occurred_at == utc("2026-03-02T09:15") and breach.deadline == utc("2026-03-02T09:15")
    assert breach.policy == "vip"
    level1 = got["T1/first_response/0/escalated-1"]  # 0m after the breach
    assert level1.occurred_at == utc("2026-03-02T09:15") and level1.deadline == breach.deadline
    assert not any("warning" in i for i in got)  # superseded by the breach
    # Downgrade of a running target: recomputed under the slower policy from 09:00.
    state2, _ = run([ev("created", "2026-03-02T09:00", ticket="T2", priority="urgent", customer_tier="gold"),
                     ev("updated", "2026-03-02T09:05", ticket="T2", priority="low")], PS)
    first = next(t for t in describe(state2, utc("2026-03-02T09:05"))["targets"] if t["target"] == "first_response")
    assert first["policy"] == "standard" and first["deadline"] == "2026-03-02T10:00:00+00:00"


def test_breached_target_keeps_its_outcome_on_reselection() -> None:
    state, out = run([ev("created", "2026-03-02T09:00", priority="urgent", customer_tier="gold"),
                      ev("customer", "2026-03-02T09:30"),
                      ev("updated", "2026-03-02T09:40", priority="low")], PS)
    assert "T1/first_response/0/breached" in by_id(out)
    first = next(t for t in describe(state, utc("2026-03-02T09:40"))["targets"] if t["target"] == "first_response")
    assert first["status"] == "breached" and first["policy"] == "vip"


def test_late_reply_retracts_the_breach() -> None:
    state, _ = run([ev("created", "2026-03-02T09:00", priority="urgent", customer_tier="gold")], PS)
    state, out = advance(state, utc("2026-03-02T09:16"))
    assert "T1/first_response/0/breached" in by_id(out)
    state, out = apply(state, ev("agent", "2026-03-02T09:14"), PS)  # arrives late
    got = by_id(out)
    assert got["T1/first_response/0/met"].breached is False
    retraction = got["T1/first_response/0/retracted"]
    assert retraction.retracts == "T1/first_response/0/breached"
    # If the breach happens again later (it cannot here), it would carry a new id: .r1


def test_late_pause_retracts_and_rebreach_gets_a_new_id() -> None:
    state, _ = run([ev("created", "2026-03-02T09:00"), ev("agent", "2026-03-02T09:05")], PS)
    state, out = advance(state, utc("2026-03-02T17:30"))
    assert "T1/resolution/0/breached" in by_id(out)  # 8 h from 09:00
    state, out = run([ev("status", "2026-03-02T16:00", status="pending"),
                      ev("status", "2026-03-02T17:00", status="open")], PS, state)
    assert "T1/resolution/0/retracted" in by_id(out)
    state, out = advance(state, utc("2026-03-02T18:01"))
    assert by_id(out)["T1/resolution/0/breached.r1"].occurred_at == utc("2026-03-02T18:00")


def test_duplicates_change_nothing() -> None:
    events = [ev("created", "2026-03-02T09:00", event_id="a"), ev("agent", "2026-03-02T09:30", event_id="b")]
    state, _ = run(events, PS)
    before = serialise(state)
    state, out = apply(state, events[1], PS)
    assert out == [] and serialise(state) == before


def test_serialisation_is_compact_versioned_and_complete() -> None:
    state, _ = run([ev("created", "2026-03-02T09:00", priority="high", customer_tier="gold", tags=["a"],
                       subject="Charged twice", url="https://helpdesk.example.com/t/1"),
                    ev("agent", "2026-03-02T09:10"), ev("customer", "2026-03-02T09:40"),
                    ev("status", "2026-03-02T09:50", status="pending"), ev("survey", "2026-03-02T10:00", csat=4)], PS)
    blob = serialise(state)
    assert len(blob) < 1024
    again = deserialise(blob)
    assert serialise(again) == blob
    assert describe(again, utc("2026-03-02T12:00")) == describe(state, utc("2026-03-02T12:00"))
    assert facts(again) == facts(state)
    with pytest.raises(StateError):
        deserialise(b'[99, "T1"]')
    with pytest.raises(StateError):
        deserialise(b"not json")


def test_a_long_conversation_is_stored_compressed_and_reads_back_the_same() -> None:
    events = [ev("created", "2026-03-02T09:00", priority="high", customer_tier="gold", tags=["refund", "invoice"],
                 subject="Charged twice for November " * 4, url="https://helpdesk.example.com/tickets/1")]
    for i in range(30):
        events.append(ev("customer" if i % 2 else "agent", f"2026-03-02T{10 + i // 6:02d}:{(i % 6) * 10:02d}"))
    state, _ = run(events, PS)
    blob = serialise(state)
    assert blob[:4] == b"\x28\xb5\x2f\xfd" and len(blob) <= 1024, len(blob)  # zstd; plain would not fit
    again = deserialise(blob)
    assert serialise(again) == blob
    assert describe(again, utc("2026-03-02T18:00")) == describe(state, utc("2026-03-02T18:00"))
    with pytest.raises(StateError):
        deserialise(blob[:-8])  # a damaged compressed state is refused, not half-read


def test_withdrawing_escalations_one_late_event_at_a_time_names_the_ids_sent() -> None:
    """Found by hypothesis: a second retraction must withdraw a level by the id it was sent
    under, not under the revision the first retraction moved on to."""
    state, out = run([ev("created", "2026-03-02T08:00", priority="high", customer_tier="gold"),
                      ev("agent", "2026-03-02T08:05"),
                      ev("customer", "2026-03-02T12:15"),   # next response due 12:45
                      ev("agent", "2026-03-02T23:25")], PS)  # escalations 1 (12:45), 2 (13:15), 3 (14:45)
    assert {"T1/next_response/1/escalated-2", "T1/next_response/1/escalated-3"} <= set(ids(out))
    state, late = run([ev("status", "2026-03-02T13:25", status="solved")], PS, state)
    withdrawn = [e.retracts for e in late if e.kind == "sla.retracted"]
    assert "T1/next_response/1/escalated-3" in withdrawn and set(withdrawn) <= set(ids(out))
    state, later = run([ev("agent", "2026-03-02T13:15")], PS, state)  # exactly at level 2: in time
    assert [e.retracts for e in later if e.kind == "sla.retracted"] == ["T1/next_response/1/escalated-2"]  # not .r1
    again = deserialise(serialise(state))
    assert again.ledger == state.ledger


def test_facts_for_compliance_reports() -> None:
    state, _ = run([ev("created", "2026-03-02T09:00"), ev("agent", "2026-03-02T09:20"),
                    ev("note", "2026-03-02T09:25"), ev("agent", "2026-03-02T10:00"),
                    ev("status", "2026-03-02T11:00", status="solved"), ev("survey", "2026-03-02T12:00", csat=5, nps=9)],
                   PS)
    got = facts(state)
    assert got["first_response_seconds"] == 1200 and got["resolution_seconds"] == 7200
    assert got["public_agent_replies"] == 2 and got["solved"] is True
    assert got["csat"] == 5 and got["nps"] == 9 and got["policy"] == "standard"


def test_business_hours_deadline_over_cn_holidays() -> None:
    state, _ = run([ev("created", "2026-02-13T17:00:00+08:00", customer_tier="silver")], PS)
    assert state.policy_id == "office"
    first = next(t for t in describe(state, utc("2026-02-13T09:00"))["targets"] if t["target"] == "first_response")
    assert first["deadline"] == utc("2026-02-14T12:00:00+08:00").isoformat()  # the make-up Saturday
    assert next_due(state) == utc("2026-02-14T12:00:00+08:00")


def test_describe_explains_policy_and_status() -> None:
    state, _ = run([ev("created", "2026-03-02T09:00", priority="urgent", customer_tier="gold")], PS)
    view = describe(state, utc("2026-03-02T09:20"))
    assert view["policy"] == "vip" and view["why"] == {"customer_tier": "gold", "priority": "urgent"}
    first = view["targets"][0]
    assert first["status"] == "breached" and first["overdue_seconds"] == 300 and first["remaining_seconds"] == 0


def test_timeline_tells_what_happened() -> None:
    events = [ev("created", "2026-03-02T09:00"), ev("agent", "2026-03-02T09:30"),
              ev("status", "2026-03-02T10:00", status="pending"), ev("status", "2026-03-02T11:00", status="open"),
              ev("status", "2026-03-02T12:00", status="solved")]
    lines = timeline(reversed(events), PS, now=utc("2026-03-03T00:00"))
    whats = [(line["what"], line.get("target")) for line in lines if line["what"] != "event"]
    assert ("policy", None) in whats and ("started", "first_response") in whats
    assert ("met", "first_response") in whats and ("paused", "resolution") in whats
    assert ("resumed", "resolution") in whats and ("met", "resolution") in whats
    assert [line["at"] for line in lines] == sorted(line["at"] for line in lines)


def test_events_before_creation_wait_for_it() -> None:
    events = [ev("created", "2026-03-02T09:00"), ev("agent", "2026-03-02T09:20")]
    state, out = run(list(reversed(events)), PS)
    assert ids(out) == ["T1/first_response/0/met"]


def test_policy_file_change_recomputes_the_ticket() -> None:
    state, _ = run([ev("created", "2026-03-02T09:00")], PS)
    faster = load_policies("other.yaml", text=POLICIES.replace("targets: {first_response: 1h,",
                                                                "targets: {first_response: 10m,"))
    state, out = advance(state, utc("2026-03-02T09:30"), faster)
    assert "T1/first_response/0/breached" in by_id(out) and state.fingerprint == faster.fingerprint
    assert by_id(out)["T1/first_response/0/breached"].occurred_at == utc("2026-03-02T09:10")
    assert next_due(state) == utc("2026-03-02T13:00")  # resolution 50 %; the standard policy has no escalations


def test_state_saved_under_another_policy_file_is_recomputed_on_load() -> None:
    state, _ = run([ev("created", "2026-03-02T09:00"), ev("customer", "2026-03-02T09:05")], PS)
    blob = serialise(state)
    faster = load_policies("other.yaml", text=POLICIES.replace("resolution: 8h", "resolution: 2h"))
    loaded = deserialise(blob, faster)
    view = describe(loaded, utc("2026-03-02T09:30"), faster)
    resolution = next(t for t in view["targets"] if t["target"] == "resolution")
    assert resolution["deadline"] == "2026-03-02T11:00:00+00:00"
    loaded, out = advance(loaded, utc("2026-03-02T11:01"), faster)
    assert "T1/resolution/0/breached" in by_id(out)


# ------------------------------------------------------------ one deadline per target cycle
def test_an_escalation_carries_its_breach_deadline_whichever_path_emits_it() -> None:
    created = ev("created", "2026-03-02T09:00", priority="urgent", customer_tier="gold")
    timer, _ = run([created], PS)
    timer, fired = advance(timer, utc("2026-03-02T09:50"))  # the timer (advance)
    _, applied = run([created, ev("note", "2026-03-02T09:50")], PS)  # applying a later event
    for out in (fired, applied):
        got = by_id(out)
        assert got["T1/first_response/0/escalated-2"].occurred_at == utc("2026-03-02T09:45")  # 15m + 30m
        assert {e.deadline for e in out if e.target_name == "first_response"} == {utc("2026-03-02T09:15")}
    assert [(e.id, e.occurred_at, e.deadline) for e in fired] == [(e.id, e.occurred_at, e.deadline) for e in applied]


def test_a_warning_at_a_reselection_counts_the_time_already_passed() -> None:
    _, out = run([ev("created", "2026-03-02T09:00", priority="normal", customer_tier="gold"),
                  ev("updated", "2026-03-02T09:10", priority="urgent")], PS)
    warning = by_id(out)["T1/first_response/0/warning-50"]  # the highest passed (80 % is 09:12)
    # vip from 09:00: half of 15 minutes was used at 09:07:30, due at 09:15 - not 09:17:30.
    assert warning.occurred_at == utc("2026-03-02T09:07:30") and warning.deadline == utc("2026-03-02T09:15")
    assert warning.policy == "vip" and warning.elapsed_seconds == 450


def test_a_breach_recomputed_by_a_later_batch_is_retracted_and_sent_again() -> None:
    """The issue's case: a past-dated ticket.created advanced to now on its own breaches
    under the first policy; the ticket.updated that re-selects a stricter one comes in the
    next batch. Downstream must end up with the breach posting both in one batch gives."""
    created = ev("created", "2026-03-02T09:00", priority="normal", customer_tier="gold")
    updated = ev("updated", "2026-03-02T09:20", priority="urgent")
    now = utc("2026-03-02T11:00")
    together, out = run([created, updated], PS)
    together, more = advance(together, now)
    one = by_id(out + more)
    split, first = run([created], PS)
    split, fired = advance(split, now)
    assert by_id(fired)["T1/first_response/0/breached"].policy == "standard"  # due 10:00 under it
    split, later = apply(split, updated, PS)
    got = by_id(later)
    assert got["T1/first_response/0/retracted"].retracts == "T1/first_response/0/breached"
    again = got["T1/first_response/0/breached.r1"]
    truth = one["T1/first_response/0/breached"]
    assert (again.policy, again.deadline, again.occurred_at) == (truth.policy, truth.deadline, truth.occurred_at)
    assert (again.policy, again.deadline) == ("vip", utc("2026-03-02T09:15"))
    assert [e.id for e in later if e.kind == "sla.escalated"] == [
        "T1/first_response/0/escalated-1.r1", "T1/first_response/0/escalated-2.r1"]
    assert {e.deadline for e in later if e.kind == "sla.escalated"} == {utc("2026-03-02T09:15")}
    assert describe(split, now) == describe(together, now)


def test_a_late_pause_after_the_breach_moves_an_escalation_and_it_is_sent_again() -> None:
    state, _ = run([ev("created", "2026-03-02T09:00", priority="urgent", customer_tier="gold"),
                    ev("agent", "2026-03-02T09:05"), ev("customer", "2026-03-02T09:10")], PS)  # next response due 09:40
    state, out = advance(state, utc("2026-03-02T10:20"))
    assert by_id(out)["T1/next_response/1/escalated-2"].occurred_at == utc("2026-03-02T10:10")
    state, late = run([ev("status", "2026-03-02T09:50", status="pending"),
                       ev("status", "2026-03-02T10:00", status="open")], PS, state)
    got = by_id(late)
    # The breach (09:40) and level 1 (09:40) still hold; level 2 is 10 minutes later.
    assert "T1/next_response/1/breached.r1" not in got and "T1/next_response/1/escalated-1.r1" not in got
    assert got["T1/next_response/1/retracted-2"].retracts == "T1/next_response/1/escalated-2"
    moved = got["T1/next_response/1/escalated-2.r1"]
    assert moved.occurred_at == utc("2026-03-02T10:20") and moved.deadline == utc("2026-03-02T09:40")
    state, out = apply(state, ev("agent", "2026-03-02T10:30"), PS)
    assert by_id(out)["T1/next_response/1/met"].deadline == utc("2026-03-02T09:40")


def test_a_policy_reload_that_moves_a_standing_breach_sends_the_true_one() -> None:
    state, _ = run([ev("created", "2026-03-02T09:00")], PS)
    state, out = advance(state, utc("2026-03-02T10:30"))
    assert by_id(out)["T1/first_response/0/breached"].deadline == utc("2026-03-02T10:00")
    faster = load_policies("other.yaml", text=POLICIES.replace("targets: {first_response: 1h,",
                                                                "targets: {first_response: 10m,"))
    state, out = advance(state, utc("2026-03-02T10:31"), faster)
    got = by_id(out)
    assert got["T1/first_response/0/retracted"].retracts == "T1/first_response/0/breached"
    assert got["T1/first_response/0/breached.r1"].deadline == utc("2026-03-02T09:10")


def test_a_state_stored_before_signatures_keeps_its_breach() -> None:
    """Ledger rows written before breach signatures existed read as "not known": the
    recomputed breach is adopted without a retraction (nothing says it changed)."""
    state, _ = run([ev("created", "2026-03-02T09:00", priority="urgent", customer_tier="gold")], PS)
    state, _ = advance(state, utc("2026-03-02T09:50"))
    for entry in state.ledger.values():
        entry.breach_signature = 0
        entry.level_signatures = []
    old = deserialise(serialise(state), PS)
    assert all(entry.breach_signature == 0 for entry in old.ledger.values())
    old, out = apply(old, ev("agent", "2026-03-02T09:40"), PS)  # late: replays the ticket
    assert [e.kind for e in out] == ["sla.met", "sla.retracted"]
    assert out[1].retracts == "T1/first_response/0/escalated-2"  # 09:45 is no longer reached
    assert old.ledger[(Target.first_response, 0)].breach_signature != 0  # known from now on


def test_a_reopen_recounted_under_a_new_policy_dates_its_thresholds_as_that_policy_would() -> None:
    """Solved exactly at the vip resolution deadline (in time), re-selected to vip while
    solved, reopened: the recount breaches at the reopen, as a vip ticket would have."""
    late = [ev("agent", "2026-03-02T09:05"), ev("status", "2026-03-02T13:00", status="solved")]
    _, out = run([ev("created", "2026-03-02T09:00", priority="normal", customer_tier="gold"), *late,
                  ev("updated", "2026-03-02T14:00", priority="urgent"),
                  ev("status", "2026-03-02T15:00", status="open"), ev("note", "2026-03-02T15:01")], PS)
    _, vip = run([ev("created", "2026-03-02T09:00", ticket="T2", priority="urgent", customer_tier="gold"),
                  *(e.model_copy(update={"ticket_id": "T2"}) for e in late),
                  ev("status", "2026-03-02T15:00", ticket="T2", status="open"), ev("note", "2026-03-02T15:01", ticket="T2")],
                 PS)
    recounted, always = by_id(out)["T1/resolution/0/breached"], by_id(vip)["T2/resolution/0/breached"]
    assert recounted.policy == always.policy == "vip"
    assert recounted.occurred_at == always.occurred_at == recounted.deadline == utc("2026-03-02T15:00")
