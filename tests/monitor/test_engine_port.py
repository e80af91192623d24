"""The monitor's engine port tells how each event arrived (new, duplicate, late) from the
state around the call: also for a state loaded from storage, whose log stays packed until
a late event needs it (state format 2)."""

from __future__ import annotations

from slawatch.services.sla_monitor import engine_port
from tests.engine.helpers import ev, policies

PS = policies()


def test_arrivals_are_told_apart_on_states_loaded_before_every_event() -> None:
    events = [
        ev("created", "2026-03-02T09:00", customer_tier="gold", priority="urgent"),
        ev("customer", "2026-03-02T09:05"),
        ev("agent", "2026-03-02T09:20"),
    ]
    late = ev("customer", "2026-03-02T09:10")
    blob = None
    seen = []
    for event in [*events, events[1], late, late]:
        state = engine_port.load(blob, PS) if blob is not None else None
        state, _out, arrival = engine_port.apply(state, event, PS)
        seen.append(arrival)
        blob = engine_port.dump(state)
    assert seen == ["new", "new", "new", "duplicate", "late", "duplicate"]
    assert blob is not None
    state = engine_port.load(blob, PS)
    assert [entry.at for entry in state.log] == sorted(entry.at for entry in state.log)
    assert state.event_count() == 4
