"""The read side of the engine: what a ticket's SLA state says, for people and reports.

``describe`` (the read API), ``facts`` (the per-ticket row compliance reports are computed
from) and ``timeline`` (the replay tool). None of them changes the state it is given; none
is on the path that decides SLA events (shared/engine/machine.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from slawatch.shared.engine.calendar import from_ms, iso_ms, to_ms
from slawatch.shared.engine.codec import copy_state
from slawatch.shared.engine.machine import advance, apply, deadline_ms, next_due_ms, recompute
from slawatch.shared.engine.policy import DONE_STATUSES, PolicySet
from slawatch.shared.engine.state import State
from slawatch.shared.engine.ticket_log import event_hash
from slawatch.shared.events import TicketEvent
from slawatch.shared.sla_events import GROUP_TARGETS, Target

_ORDER: Final = {target.value: i for i, target in enumerate(Target)}
_NAMES: Final = {target: target.value for target in Target}  # a member's plain str, read fast
_GROUP_TARGETS: Final = frozenset(GROUP_TARGETS)
# Zendesk's definitions: agent work time counts while the ticket is new or open, requester
# wait time while it is new, open or on-hold (not pending, not solved/closed).
WORK_STATUSES: Final = frozenset({"new", "open"})
WAIT_STATUSES: Final = frozenset({"new", "open", "on_hold"})


def describe(state: State, now: datetime, policies: PolicySet | None = None) -> dict[str, Any]:
    """The ticket's SLA status at ``now`` for the read API: which policy and why, and per
    target its state (running / paused / met / breached), deadline and business time left
    or overdue. Under another policy set than the state's, describes a recomputed copy."""
    ps = state.policies(policies)
    n = to_ms(now)
    if ps.fingerprint != state.fingerprint:
        state = copy_state(state, ps)
        recompute(state, ps, n)
    targets: list[dict[str, Any]] = []
    for clock in state.clocks.values():
        spec = clock.spec
        counted = clock.counted_ms
        if clock.running and n > clock.checkpoint:
            counted += spec.calendar.elapsed(clock.checkpoint, n)
        deadline = deadline_ms(clock)
        breached = (
            clock.breached
            or counted > spec.ms
            or (deadline is not None and deadline <= n and not clock.met)
        )
        if clock.met:
            status = "met"
        elif breached:
            status = "breached"
        else:
            status = "running" if clock.running else "paused"
        item = {
            "target": spec.name,
            "cycle": clock.cycle,
            "status": status,
            "breached": breached,
            "policy": spec.policy,
            "calendar": spec.calendar.name,
            "started_at": from_ms(clock.cycle_start).isoformat(),
            "deadline": None if deadline is None else from_ms(deadline).isoformat(),
            "estimated": _estimated(ps, spec.calendar.name, deadline),
            "target_seconds": spec.ms / 1000,
            "elapsed_seconds": counted / 1000,
            "remaining_seconds": max(0, spec.ms - counted) / 1000,
            "overdue_seconds": max(0, counted - spec.ms) / 1000,
        }
        if spec.group is not None:
            item["group"] = spec.group  # an OLA cycle: the group whose target it is
        targets.append(item)
    for target, (cycle, met_at, breached) in sorted(state.last_met.items()):
        running = state.clocks.get(target)
        if running is not None and running.cycle == cycle:
            continue
        item = {
            "target": target.value,
            "cycle": cycle,
            "status": "met",
            "breached": breached,
            "met_at": from_ms(met_at).isoformat(),
        }
        if target in _GROUP_TARGETS and 0 < cycle <= len(state.ola_groups):
            item["group"] = state.ola_groups[cycle - 1]
        targets.append(item)
    targets.sort(key=lambda item: (_ORDER[item["target"]], item["cycle"]))
    due = next_due_ms(state)
    return {
        "ticket_id": state.ticket_id,
        "status": state.status,
        "policy": state.policy_id,
        "why": state.why,
        "policy_set": state.fingerprint,
        "attributes": {
            "priority": state.priority,
            "customer_tier": state.customer_tier,
            "channel": state.channel,
            "group": state.group,
            "assignee": state.assignee,
            "tags": list(state.tags),
            "url": state.url,
            "subject": state.subject,
        },
        "targets": targets,
        # Every OLA cycle of the ticket, in order: which group held it from when.
        "group_cycles": _group_cycles(state),
        "work_time": _work_time(state),
        "next_due": None if due is None else from_ms(due).isoformat(),
        "as_of": from_ms(n).isoformat(),
    }


def _estimated(ps: PolicySet, calendar: str, deadline: int | None) -> bool:
    """Whether the deadline falls in days whose holiday data is not official (the calendar
    coverage guard, shared/engine/coverage.py, as of its last ``check_coverage``)."""
    since = ps.estimated_from.get(calendar)
    return deadline is not None and since is not None and deadline >= since


def facts(state: State) -> dict[str, Any]:
    """Per-ticket facts for compliance reports (JSON-ready; instants as ISO 8601 UTC).

    Outcomes are counted per (target, cycle) from what was emitted: ``targets_breached``
    the cycles whose breach stands, ``targets_met`` those met without one (a target met
    late counts as breached); ``targets`` has the same per target, where ``cycles_met``
    counts every cycle met, late or not."""
    per_target: dict[str, dict[str, int]] = {}
    met = breached = 0
    for (target, _cycle), entry in state.ledger.items():
        counts = per_target.setdefault(_NAMES[target], {"cycles_met": 0, "breaches": 0})
        if entry.times_met:
            counts["cycles_met"] += 1
        if entry.breach_stands:
            counts["breaches"] += 1
            breached += 1
        elif entry.times_met:
            met += 1
    out: dict[str, Any] = {
        "ticket_id": state.ticket_id,
        "policy": state.policy_id,
        "why": state.why,
        "priority": state.priority,
        "customer_tier": state.customer_tier,
        "channel": state.channel,
        "group": state.group,
        "assignee": state.assignee,
        "tags": list(state.tags),  # the board finds tickets a tag pauses by them
        "status": state.status,
        "created_at": _iso(state.created_at),
        "first_response_at": _iso(state.first_reply_at),
        "first_response_seconds": _seconds(state.first_response_ms),
        "solved": state.status in DONE_STATUSES,
        "solved_at": _iso(state.solved_at),
        "resolution_seconds": _seconds(state.resolution_ms),
        "public_agent_replies": state.public_agent_replies,
        "csat": state.csat,
        "nps": state.nps,
        "customer_id": state.customer_id,
        "handle_seconds": state.handle_ms / 1000,
        "targets": per_target,
        "targets_met": met,
        "targets_breached": breached,
    }
    work_business, work_calendar, wait_business, wait_calendar = _work_times(state)
    out["agent_work_business_ms"] = work_business
    out["agent_work_calendar_ms"] = work_calendar
    out["requester_wait_business_ms"] = wait_business
    out["requester_wait_calendar_ms"] = wait_calendar
    return out


def _group_cycles(state: State) -> list[dict[str, Any]]:
    return [{"cycle": n, "group": g} for n, g in enumerate(state.ola_groups, start=1)]


_WORK_TIME_KEYS: Final = (
    "agent_work_business_ms", "agent_work_calendar_ms",
    "requester_wait_business_ms", "requester_wait_calendar_ms",
)  # fmt: skip


def _work_time(state: State) -> dict[str, int | None]:
    """Agent work time and requester wait time, in the policy's business time and in
    calendar time (ms): the time the ticket spent in the work / wait statuses, from its
    creation to its last solve (across reopens), or to the horizon (the latest instant the
    state was brought to) while it is open. None before the ticket is created."""
    return dict(zip(_WORK_TIME_KEYS, _work_times(state), strict=True))


def _work_times(state: State) -> tuple[int | None, int | None, int | None, int | None]:
    """``_work_time``'s values in its keys' order (facts sets them as keys of its own dict)."""
    if state.created_at is None or state.policy is None:
        return None, None, None, None
    calendar = state.policy.calendar
    end = max(state.horizon, state.created_at)
    history = state.status_history
    work_business = work_calendar = wait_business = wait_calendar = 0
    for index, (at, status) in enumerate(history):
        until = history[index + 1][0] if index + 1 < len(history) else end
        if until <= at or status not in WAIT_STATUSES:
            continue
        business = calendar.elapsed(at, until)
        wait_business += business
        wait_calendar += until - at
        if status in WORK_STATUSES:
            work_business += business
            work_calendar += until - at
    return work_business, work_calendar, wait_business, wait_calendar


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def timeline(
    events: Iterable[TicketEvent], policies: PolicySet, now: datetime | None = None
) -> list[dict[str, Any]]:
    """What happened to a ticket's SLA clocks, in event-time order: policy chosen (and why),
    targets started, paused, resumed, recomputed, warned, breached, escalated, met,
    retracted. For the replay tool; ``now`` also runs the clocks up to that instant."""
    ordered = sorted(
        events,
        key=lambda e: (to_ms(e.occurred_at), e.type != "ticket.created", event_hash(e.event_id)),
    )
    state: State | None = None
    lines: list[dict[str, Any]] = []
    for event in ordered:
        if state is None:
            state = State(event.ticket_id, policies)
            state.journal = lines
        before = len(lines)
        state, _out = apply(state, event, policies)
        lines.insert(
            before,
            {
                "_t": to_ms(event.occurred_at),
                "at": event.occurred_at.isoformat(),
                "what": "event",
                "detail": event.type,
                "event_id": event.event_id,
            },
        )
    if state is not None and now is not None:
        advance(state, now, policies)
    lines.sort(key=lambda item: item["_t"])  # stable: an event's consequences follow it
    for item in lines:
        del item["_t"]
    return lines
