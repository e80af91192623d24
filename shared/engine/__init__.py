"""The SLA engine: policy language, business-hour calendars and the pure SLA state machine.

Pure and synchronous: no clock, no I/O; the current time is passed in. The monitor
service is a thin shell around these calls::

    policies = load_policies("policies.yaml")          # once; PolicyError lists problems
    state, sla_events = apply(state, event, policies)  # state None for a new ticket
                                                       # (SlaRecord: .to_event(), .to_json())
    state, sla_events = advance(state, now)             # warnings/breaches/escalations due
    due = next_due(state)                               # when to call advance next
    blob = serialise(state); state = deserialise(blob)  # compact, versioned (<= 1 KB)
    describe(state, now); facts(state)                  # the read side (views.py)

Modules: machine (the rules), state (the ticket, its clocks and ledger, in named fields),
ticket_log (what is kept of each event, and the one fold of it), codec (the stored form,
the only place with short keys), views (describe, facts, timeline), record (SlaRecord),
calendar, policy, contracts (customer contracts' windows and their checks), coverage (up to
which date each calendar's holiday data is official), durations.

``apply`` and ``advance`` mutate the state they are given (and return it).
"""

# ruff: noqa: E402
from slawatch.shared.engine import native

# Before any compiled module is imported: True when it runs compiled (tools/build_native.py);
# a partial or stale compiled engine stops the import here, with the command that fixes it.
NATIVE = native.check()

from slawatch.shared.engine.calendar import Calendar, from_ms, to_ms
from slawatch.shared.engine.codec import (
    FORMAT_VERSION,
    StateError,
    copy_state,
    deserialise,
    serialise,
)
from slawatch.shared.engine.durations import DurationError, format_duration, parse_duration
from slawatch.shared.engine.machine import advance, apply, earliest_deadline, is_open, next_due
from slawatch.shared.engine.policy import (
    Policy,
    PolicyError,
    PolicySet,
    Problem,
    load_policies,
    policy_json_schema,
)
from slawatch.shared.engine.record import SlaRecord
from slawatch.shared.engine.state import State
from slawatch.shared.engine.ticket_log import event_hash
from slawatch.shared.engine.views import describe, facts, timeline

__all__ = [
    "FORMAT_VERSION",
    "NATIVE",
    "Calendar",
    "DurationError",
    "Policy",
    "PolicyError",
    "PolicySet",
    "Problem",
    "SlaRecord",
    "State",
    "StateError",
    "advance",
    "apply",
    "copy_state",
    "describe",
    "deserialise",
    "earliest_deadline",
    "event_hash",
    "facts",
    "format_duration",
    "from_ms",
    "is_open",
    "load_policies",
    "next_due",
    "parse_duration",
    "policy_json_schema",
    "serialise",
    "timeline",
    "to_ms",
]
