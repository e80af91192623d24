"""Handle time (#14): agent effort reported on messages and work.logged, summed per ticket."""

from __future__ import annotations

from slawatch.shared.engine import deserialise, facts, serialise
from slawatch.shared.events import parse_event
from tests.engine.helpers import ev, policies, run

# Module-level, as in the other engine tests: the registry of policy sets by fingerprint
# holds them weakly, and a set collected mid-run would unregister the fingerprint the
# other modules' states are read back with.
PS = policies()


def worked(at: str, seconds: int, event_id: str, agent: str = "li.na"):
    return parse_event(
        {
            "event_id": event_id,
            "type": "work.logged",
            "ticket_id": "T1",
            "occurred_at": at + "+00:00",
            "data": {"agent": agent, "seconds": seconds},
        }
    )


def test_effort_is_summed_once_per_event_wherever_it_sorts() -> None:
    ps = PS
    reply = ev("agent", "2026-03-02T09:10", event_id="r1", handle_seconds=120)
    events = [
        worked("2026-03-02T08:59", 30, "w0"),  # logged before the ticket.created sorts: counts
        ev("created", "2026-03-02T09:00", customer_id="C-7", customer_tier="gold"),
        reply,
        reply,  # a duplicate counts once
        ev("note", "2026-03-02T09:20", handle_seconds=60),  # an internal note's effort
        ev("customer", "2026-03-02T09:30"),
        worked("2026-03-02T09:40", 300, "w1"),
        ev("agent", "2026-03-02T09:50"),  # a reply without effort
        ev("status", "2026-03-02T10:00", status="solved"),
        worked("2026-03-02T09:05", 15, "w2"),  # late: replayed in event-time order
    ]
    state, _ = run(events, ps)
    got = facts(state)
    assert got["handle_seconds"] == 30 + 120 + 60 + 300 + 15
    assert got["customer_id"] == "C-7"
    assert got["public_agent_replies"] == 2  # work.logged is not a reply
    assert got["first_response_seconds"] == 600  # nor a first response
    again = deserialise(serialise(state), ps)
    assert facts(again) == got
    assert serialise(again) == serialise(state)


def test_work_logged_changes_no_clock() -> None:
    ps = PS
    base = [ev("created", "2026-03-02T09:00", event_id="c")]
    plain, out_plain = run(base, ps)
    logged, out_logged = run([*base, worked("2026-03-02T09:05", 60, "w")], ps)
    assert [r.kind for r in out_logged] == [r.kind for r in out_plain]
    assert logged.first_reply_at is None and logged.handle_ms == 60_000
    assert facts(plain)["handle_seconds"] == 0
