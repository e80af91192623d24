"""The SLA state machine: ticket events in, SLA events out. Pure and synchronous.

``apply(state, event, policies)`` and ``advance(state, now)`` mutate the state they are
given and return it with the SLA events they decided; nothing here reads a clock, a file
or a socket. The rules are written down in docs/policies.md; this module is their only
implementation. The read side (describe, facts, timeline) is in shared/engine/views.py.

How one ticket is computed
--------------------------
Events are processed in event-time order, key ``(occurred_at, created-first, hash(event_id))``.
Each target cycle is a :class:`~slawatch.shared.engine.state.Clock`: it counts business
milliseconds of its policy's calendar while it runs, against a sorted list of thresholds
on that count - the ``warn_at`` fractions, the breach at 100 %, the escalation offsets past
it. A threshold is *crossed* at the first instant the count reaches it.

- Processing an event at ``t`` first crosses every threshold whose instant is before
  ``t`` (so a reply exactly at the deadline is in time), then folds the event into the
  ticket (``ticket_log.fold_event``) and applies the SLA rules to what changed.
- The *horizon* is the latest instant the state has been brought to: the newest event
  time, or the ``now`` given to ``advance``. Thresholds of running clocks whose instant is
  at or before the horizon are emitted too ("projected"): that is how ``advance`` fires
  warnings, breaches and escalations, each with its true instant as ``occurred_at``.

Everything emitted is recorded in the state's ledger, per (target, cycle). An event that
arrives in order is processed incrementally. One that arrives late (or any event after
the policy file changed) makes the engine recompute the ticket from its retained log, in
event-time order, and diff the result against the ledger: what is new is emitted, a breach
that no longer holds is retracted, one that holds but now says another instant, deadline or
policy is retracted and emitted again under a revision id, and nothing is emitted twice.

One deadline per target cycle: every threshold event is built by ``_emit_threshold`` from
the instant its count was reached and the cycle's deadline, computed from the clock's
checkpoint the same way on every path (``_cross`` in event time, ``_project`` up to the
horizon, ``_recount`` when a re-selection recounts a cycle from its start), so the same
events give the same SLA events whatever the batching.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any, Final

from slawatch.shared.engine.calendar import from_ms, to_ms
from slawatch.shared.engine.policy import BREACH, DONE_STATUSES, WARN, Policy, PolicySet, TargetSpec
from slawatch.shared.engine.record import SlaRecord
from slawatch.shared.engine.state import (
    AGENT_REPLY,
    ASSIGNED,
    CREATED,
    CUSTOMER_MESSAGE,
    STATUS_CHANGED,
    UPDATED,
    Clock,
    LedgerEntry,
    LogEntry,
    State,
)
from slawatch.shared.engine.ticket_log import event_hash, fold_event, log_entry
from slawatch.shared.events import TicketEvent
from slawatch.shared.sla_events import GROUP_TARGETS, TICKET_TARGETS, SlaKind, Target, sla_event_id

NEVER = 1 << 62
_DONE = DONE_STATUSES
# Module constants: reading a member off its enum class costs a lookup per SLA event.
_WARNING: Final = SlaKind.warning
_BREACHED: Final = SlaKind.breached
_ESCALATED: Final = SlaKind.escalated
_MET: Final = SlaKind.met
_RETRACTED: Final = SlaKind.retracted
_TICKET_TARGETS: Final = TICKET_TARGETS  # a policy's, in their order
_GROUP_TARGETS: Final = GROUP_TARGETS  # an OLA's
_FIRST_RESPONSE: Final = Target.first_response
_NEXT_RESPONSE: Final = Target.next_response
_PERIODIC_UPDATE: Final = Target.periodic_update
_RESOLUTION: Final = Target.resolution
_GROUP_RESPONSE: Final = Target.group_response

LedgerKey = tuple[Target, int]


# ---------------------------------------------------------------------------- public API
def apply(
    state: State | None, event: TicketEvent, policies: PolicySet
) -> tuple[State, list[SlaRecord]]:
    """Apply one ticket event; returns the (same, mutated) state and the SLA events it decided.

    ``state`` is None for a ticket not seen before. A duplicate ``event_id`` changes nothing.
    """
    t = to_ms(event.occurred_at)
    hashed = event_hash(event.event_id)
    if state is None:
        state = State(event.ticket_id, policies)
    elif state.ticket_id != event.ticket_id:
        raise ValueError(
            f"event {event.event_id!r} is for ticket {event.ticket_id!r}, not {state.ticket_id!r}"
        )
    elif state.has_event(hashed):
        return state, []
    entry = log_entry(event, t, hashed)
    out: list[SlaRecord] = []
    last = state.last_entry
    state.called_at = t
    # In order: after the newest entry (most are strictly later: no comparison of entries).
    if state.fingerprint == policies.fingerprint and (
        last is None or (t > state.projected_until and (t > last.at or last < entry))
    ):
        state.policy_set = policies
        state.append_entry(entry)
        if t > state.horizon:
            state.horizon = t
        _process(state, entry, out)
        _project(state, out)
    else:
        state.policy_set = policies
        state.insert_entry(entry)
        _replay(state, out, t)
    return state, out


def advance(
    state: State, now: datetime, policies: PolicySet | None = None
) -> tuple[State, list[SlaRecord]]:
    """Bring the state to ``now``: emit the warnings, breaches and escalations due by then.

    Each has its true instant as ``occurred_at`` (never ``now``). Calling it again with the
    same or an earlier ``now`` emits nothing.
    """
    ps = state.policies(policies)
    out: list[SlaRecord] = []
    n = to_ms(now)
    state.called_at = n
    if ps.fingerprint != state.fingerprint:
        state.policy_set = ps
        _replay(state, out, n)
    if n > state.horizon:
        state.horizon = n
    _project(state, out)
    return state, out


def recompute(state: State, policies: PolicySet, at: int) -> list[SlaRecord]:
    """Recompute the ticket under ``policies`` from its log, as of the call at ``at`` (ms);
    returns what that emits or retracts (the read side recomputes a copy and drops it)."""
    out: list[SlaRecord] = []
    state.policy_set = policies
    _replay(state, out, at)
    return out


def next_due(state: State) -> datetime | None:
    """The earliest instant at which ``advance`` would emit something, or None."""
    due = next_due_ms(state)
    return None if due is None else from_ms(due)


def earliest_deadline(state: State) -> datetime | None:
    """The earliest deadline among running, unmet targets (overdue ones included): what the
    at-risk listing sorts by. Cheaper than ``describe`` on a hot path."""
    best = None
    for clock in state.clocks.values():
        if clock.met or not clock.running:
            continue
        due = deadline_ms(clock)
        if due is not None and (best is None or due < best):
            best = due
    return None if best is None else from_ms(best)


def is_open(state: State) -> bool:
    """False once the ticket is solved or closed (no clock runs; a reopen may follow)."""
    return state.status not in _DONE


def deadline_ms(clock: Clock) -> int | None:
    """The cycle's deadline: its breach instant once crossed, else where the running clock
    reaches the target (None while paused: it has no date yet)."""
    if clock.breached_at is not None:
        return clock.breached_at
    spec = clock.spec
    if not clock.running:
        return None
    return spec.calendar.add(clock.checkpoint, spec.ms - clock.counted_ms)


def next_due_ms(s: State) -> int | None:
    """``next_due`` in ms (it caches the next projection on the clocks)."""
    best = NEVER
    horizon = s.horizon
    for clock in s.clocks.values():
        if not clock.running:
            continue
        due = clock.projected_due
        if due is None or due <= horizon:
            spec = clock.spec
            thresholds = spec.thresholds
            k = clock.next_threshold if due is None else clock.projected_index
            due = NEVER
            while k < len(thresholds):
                due = spec.calendar.add(clock.checkpoint, thresholds[k][0] - clock.counted_ms)
                if due > horizon:
                    break
                k += 1
                due = NEVER
            clock.projected_index, clock.projected_due = k, due
        if due < best:
            best = due
    return None if best == NEVER else best


# ---------------------------------------------------------------------------- replay
def _replay(s: State, out: list[SlaRecord], trigger: int) -> None:
    """Recompute the ticket from its log in event-time order; diff against the ledger."""
    ps = s.policy_set
    assert ps is not None
    s.fingerprint = ps.fingerprint
    s.called_at = trigger
    s.reset()
    s.projected_until = 0
    s.confirmed = {}
    for entry in s.log:
        _process(s, entry, out)
    if s.log:
        last = s.log[-1]
        s.last_entry = last
        if last.at > s.horizon:
            s.horizon = last.at
    _project(s, out)
    confirmed = s.confirmed
    for key, sent in s.ledger.items():
        if not sent.breach_stands:
            continue
        level = confirmed.get(key)
        if level is None:
            _withdraw_breach(s, key, sent, trigger, out)
        elif sent.escalation_level > level:
            for gone in range(sent.escalation_level, level, -1):
                _retract(s, key, sent, gone, trigger, out)
            sent.escalation_level = level
            sent.escalation_revision += 1
            del sent.level_signatures[level:]
    s.confirmed = None


def _withdraw_breach(
    s: State, key: LedgerKey, entry: LedgerEntry, at: int, out: list[SlaRecord]
) -> None:
    """Retract the standing breach of ``key`` (its escalations go with it)."""
    _retract(s, key, entry, None, at, out)
    entry.breach_stands = False
    entry.escalation_level = 0
    entry.escalation_revision += 1
    entry.breach_signature = 0
    entry.level_signatures.clear()


def _ledger_entry(s: State, key: LedgerKey) -> LedgerEntry:
    entry = s.ledger.get(key)
    if entry is None:
        entry = s.ledger[key] = LedgerEntry()
    return entry


def signature(at: int, deadline: int, policy: str) -> int:
    """What a standing breach or escalation said, in 31 bits (never 0: "not known").
    Stable across processes (states are stored and loaded elsewhere), unlike ``hash``."""
    return (zlib.crc32(f"{at},{deadline},{policy}".encode()) & 0x7FFFFFFF) or 1


def _retract(
    s: State,
    key: LedgerKey,
    entry: LedgerEntry,
    level: int | None,
    at: int,
    out: list[SlaRecord],
) -> None:
    """Withdraw the standing breach (``level`` None; its escalations go with it) or one
    escalation level that recomputation no longer reaches."""
    target, cycle = key
    if level is None:
        revision = entry.breach_revision - 1
        withdrawn = sla_event_id(s.ticket_id, target, cycle, _BREACHED, revision=revision)
    else:
        revision = entry.revision_of(level)  # as it was emitted
        withdrawn = sla_event_id(
            s.ticket_id, target, cycle, _ESCALATED, level=level, revision=revision
        )
    clock = s.clocks.get(target)
    if clock is not None and clock.cycle != cycle:
        clock = None
    spec = clock.spec if clock is not None else None
    if spec is None and target in _GROUP_TARGETS:
        groups = s.ola_groups
        group = groups[cycle - 1] if 0 < cycle <= len(groups) else None
        spec = _policies(s).ola_spec(group, target)
    elif spec is None and s.policy_id is not None:
        spec = s.policy.targets.get(target)
    _emit(
        s,
        out,
        _RETRACTED,
        target,
        spec,
        cycle,
        at,
        deadline_ms(clock) if clock is not None else None,
        clock.counted_ms if clock is not None else 0,
        level=level,
        revision=revision,
        retracts=withdrawn,
    )
    if s.journal is not None:
        _note(s, at, "retracted", target, cycle, withdrawn)


def _emit(
    s: State,
    out: list[SlaRecord],
    kind: SlaKind,
    target: Target,
    spec: TargetSpec | None,
    cycle: int,
    at: int,
    deadline: int | None,
    elapsed_ms: int,
    revision: int,
    *,
    fraction: float | None = None,
    level: int | None = None,
    breached: bool | None = None,
    retracts: str | None = None,
) -> None:
    """Append the SLA record of one decision: the one place a record is built. ``revision``
    tells apart a second occurrence of the same condition (see ``sla_event_id``). An OLA
    target's record carries the group of its cycle, whatever group the ticket has now."""
    attributes = s.attributes()
    if spec is not None and spec.group is not None and spec.group != attributes[3]:
        a = attributes
        attributes = (a[0], a[1], a[2], spec.group, a[4], a[5], a[6], a[7])
    out.append(
        SlaRecord(
            kind=kind,
            ticket_id=s.ticket_id,
            target_name=target.value if spec is None else spec.name,
            policy=(s.policy_id or "") if spec is None else spec.policy,
            cycle=cycle,
            at_ms=at,
            deadline_ms=deadline,
            elapsed_ms=elapsed_ms,
            target_ms=0 if spec is None else spec.ms,
            attributes=attributes,
            fraction=fraction,
            level=level,
            breached=breached,
            revision=revision,
            retracts=retracts,
        )
    )


# ---------------------------------------------------------------------------- one event
def _process(s: State, entry: LogEntry, out: list[SlaRecord]) -> None:
    """Cross what falls due before the event, fold it into the ticket, apply the SLA rules."""
    t = entry.at
    kind = entry.kind
    for clock in s.clocks.values():
        if clock.running:
            due = clock.next_due
            if due is None:
                due = _calc_due(clock)
            while due < t:
                _cross(s, clock, due, out)
                due = _calc_due(clock)
    if kind is AGENT_REPLY:
        first = s.first_reply_at is None
        if fold_event(s, entry):
            _agent_reply(s, t, first, out)
    elif kind is CUSTOMER_MESSAGE:
        if fold_event(s, entry):
            _customer_message(s, t, out)
    elif kind is STATUS_CHANGED:
        old = s.status
        if fold_event(s, entry):
            _status_changed(s, t, old, out)
    elif kind is CREATED and s.created_at is None:
        fold_event(s, entry)
        _created(s, t, out)
    elif kind is CREATED or kind is UPDATED or kind is ASSIGNED:
        # Attributes only (a second ticket.created too): the policy may change, a new
        # group starts its OLA cycle, a tag may pause or resume clocks.
        group, tags = s.group, s.tags
        before = (s.priority, s.customer_tier, s.customer_id, group, tags)
        fold_event(s, entry)
        if s.created_at is not None:
            if s.group != group:
                _group_changed(s, t, out)
            if (s.priority, s.customer_tier, s.customer_id, s.group, s.tags) != before:
                _reselect(s, t, out)
            if s.tags != tags:
                _repause(s, t, out, "tags")
    else:
        fold_event(s, entry)  # a survey; an internal note folds to nothing


def _created(s: State, t: int, out: list[SlaRecord]) -> None:
    """The ticket exists: select its policy, start first response and resolution. Their
    clocks start as for status ``new``; a ticket created in another status changes to it
    at the same instant (the fold recorded it so)."""
    policy = _select(s)
    s.policy_id = policy.id
    s.policy = policy
    if s.journal is not None:
        _note(s, t, "policy", None, None, policy.id, why=s.why)
    for target in (_FIRST_RESPONSE, _RESOLUTION):
        spec = policy.targets.get(target)
        if spec is not None:
            _new_clock(s, target, 0, t, spec, "new")
    _start_ola_cycle(s, t, "new")
    if s.status != "new":
        _status_changed(s, t, "new", out)


def _agent_reply(s: State, t: int, first: bool, out: list[SlaRecord]) -> None:
    clocks = s.clocks
    if first and _FIRST_RESPONSE not in clocks:
        s.first_response_ms = s.policy.calendar.elapsed(s.created_at, t)
    if s.status in _DONE:
        return
    if not s.first_response_done:
        s.first_response_done = True
        clock = clocks.get(_FIRST_RESPONSE)
        if clock is not None:
            _meet(s, clock, t, out)
            s.first_response_ms = clock.counted_ms
    if s.next_response_started_at is not None:
        s.next_response_started_at = None
        clock = clocks.get(_NEXT_RESPONSE)
        if clock is not None:
            _meet(s, clock, t, out)
    clock = clocks.get(_PERIODIC_UPDATE)
    if clock is not None:
        _meet(s, clock, t, out)
    clock = clocks.get(_GROUP_RESPONSE)
    if clock is not None:
        _meet(s, clock, t, out)
    s.periodic_update_cycle += 1
    s.periodic_update_started_at = t
    spec = s.policy.targets.get(_PERIODIC_UPDATE)
    if spec is not None:
        _new_clock(s, _PERIODIC_UPDATE, s.periodic_update_cycle, t, spec, s.status)


def _customer_message(s: State, t: int, out: list[SlaRecord]) -> None:
    if s.status in _DONE or not s.first_response_done or s.next_response_started_at is not None:
        return
    s.next_response_cycle += 1
    s.next_response_started_at = t
    spec = s.policy.targets.get(_NEXT_RESPONSE)
    if spec is not None:
        _new_clock(s, _NEXT_RESPONSE, s.next_response_cycle, t, spec, s.status)


def _status_changed(s: State, t: int, old: str, out: list[SlaRecord]) -> None:
    """The ticket went from ``old`` to ``s.status`` at ``t`` (folded already)."""
    new = s.status
    if new in _DONE:
        if old in _DONE:
            return
        s.first_response_done = True
        for clock in list(s.clocks.values()):
            if not clock.met:
                _meet(s, clock, t, out)
        s.next_response_started_at = None
        s.periodic_update_started_at = None
        resolution = s.clocks.get(_RESOLUTION)
        if resolution is not None:
            s.resolution_ms = resolution.counted_ms
        else:
            s.resolution_ms = s.policy.calendar.elapsed(s.created_at, t)
        return
    if old in _DONE:
        _reopen(s, t, out)
        return
    _repause(s, t, out, new)


def _repause(s: State, t: int, out: list[SlaRecord], why: str) -> None:
    """The status or the tags changed at ``t``: pause the clocks a condition of theirs now
    holds for, resume those none holds for any more (each target its own conditions)."""
    status = s.status
    tags = s.tags
    for clock in s.clocks.values():
        if clock.met:
            continue
        spec = clock.spec
        if not spec.pause_statuses and not spec.pause_tags:
            continue  # nothing pauses it
        if _paused(spec, status, tags):
            if clock.running:
                due = clock.next_due if clock.next_due is not None else _calc_due(clock)
                while due <= t:  # pausing at the very instant does not dodge a threshold
                    _cross(s, clock, due, out)
                    due = _calc_due(clock)
                _stop(clock, t)
                if s.journal is not None:
                    _note(s, t, "paused", clock.target, clock.cycle, why)
        elif not clock.running:
            _resume(clock, t)
            if s.journal is not None:
                _note(s, t, "resumed", clock.target, clock.cycle, why)


def _paused(spec: TargetSpec, status: str, tags: tuple[str, ...]) -> bool:
    """Whether a condition of the target holds: its pause status, or one of its tags."""
    if status in spec.pause_statuses:
        return True
    pause_tags = spec.pause_tags
    if pause_tags:
        for tag in tags:
            if tag in pause_tags:
                return True
    return False


def _group_changed(s: State, t: int, out: list[SlaRecord]) -> None:
    """The ticket left its group at ``t`` (folded already): the group's OLA cycle ends - met,
    its breach standing if it ran out - and the new group's begins."""
    clocks = s.clocks
    for target in _GROUP_TARGETS:
        clock = clocks.get(target)
        if clock is not None and not clock.met:
            _meet(s, clock, t, out)
    if s.status not in _DONE:
        _start_ola_cycle(s, t, s.status)


def _start_ola_cycle(s: State, t: int, status: str) -> None:
    """Start an OLA cycle of the ticket's group, if its group has an OLA: the next cycle
    number of the ticket, shared by the OLA's targets."""
    group = s.group
    if group is None:
        return
    ola = _policies(s).olas.get(group)
    if ola is None:
        return
    s.ola_groups.append(group)
    cycle = len(s.ola_groups)
    for target, spec in ola.targets.items():
        _new_clock(s, target, cycle, t, spec, status)


def _reopen(s: State, t: int, out: list[SlaRecord]) -> None:
    policy = s.policy
    spec = policy.targets.get(_RESOLUTION)
    resolution = s.clocks.get(_RESOLUTION)
    if s.journal is not None:
        _note(s, t, "reopened", None, None, s.status)
    if resolution is not None:
        resolution.met = False
        if not resolution.breached and resolution.spec is not spec:
            if spec is None:
                del s.clocks[_RESOLUTION]
            else:
                _respec(s, resolution, spec, t, out)
        elif _should_run(s, resolution, s.status):
            _resume(resolution, t)
            if s.journal is not None:
                _note(s, t, "resumed", _RESOLUTION, resolution.cycle, "reopened")
    elif spec is not None:
        # A reopen follows a created ticket: created_at is set.
        resolution = Clock(_RESOLUTION, 0, s.created_at or t, spec)
        s.clocks[_RESOLUTION] = resolution
        _respec(s, resolution, spec, t, out)
    s.periodic_update_cycle += 1
    s.periodic_update_started_at = t
    update = policy.targets.get(_PERIODIC_UPDATE)
    if update is not None:
        _new_clock(s, _PERIODIC_UPDATE, s.periodic_update_cycle, t, update, s.status)
    _start_ola_cycle(s, t, s.status)  # the group holds the ticket again: a new cycle


def _reselect(s: State, t: int, out: list[SlaRecord]) -> None:
    """Attributes changed: pick the policy again; recompute running targets under it."""
    policy = _select(s)
    if policy.id == s.policy_id:
        return
    if s.journal is not None:
        why = policy.why(
            s.priority, s.customer_tier, s.channel, s.group, s.tags, customer=s.customer_id
        )
        _note(s, t, "policy", None, None, policy.id, why=why, previous=s.policy_id)
    s.policy_id = policy.id
    s.policy = policy
    clocks = s.clocks
    for target in _TICKET_TARGETS:  # OLA clocks do not depend on the policy
        clock = clocks.get(target)
        spec = policy.targets.get(target)
        if clock is not None:
            if clock.met or clock.breached:
                continue  # met or breached targets keep their outcome (and their policy)
            if spec is None:
                del clocks[target]
                if s.journal is not None:
                    _note(s, t, "dropped", target, clock.cycle, policy.id)
            else:
                _respec(s, clock, spec, t, out)
            continue
        if spec is None:
            continue
        start, cycle = _cycle_in_progress(s, target)
        if start is not None:
            clock = Clock(target, cycle, start, spec)
            clocks[target] = clock
            _respec(s, clock, spec, t, out)


def _select(s: State) -> Policy:
    """The policy in force at the ticket's creation: contracts' windows are read at
    ``created_at`` on every (re)selection, so a contract that ends or starts while the
    ticket is open changes nothing for it (shared/engine/contracts.py)."""
    return _policies(s).select(
        s.priority, s.customer_tier, s.channel, s.group, s.tags,
        customer=s.customer_id, at=s.created_at,
    )  # fmt: skip


def _cycle_in_progress(s: State, target: Target) -> tuple[int | None, int]:
    """(start, cycle) of the target's cycle under way if the policy had it; start None if
    none is: the first response once answered, resolution while solved, next response
    while no customer message awaits a reply."""
    if target is _FIRST_RESPONSE:
        return (None if s.first_response_done else s.created_at), 0
    if target is _NEXT_RESPONSE:
        return s.next_response_started_at, s.next_response_cycle
    if target is _PERIODIC_UPDATE:
        return s.periodic_update_started_at, s.periodic_update_cycle
    return (None if s.status in _DONE else s.created_at), 0


# ---------------------------------------------------------------------------- clocks
def _should_run(s: State, clock: Clock, status: str) -> bool:
    """Whether the clock runs while the ticket is in ``status`` (with its tags now)."""
    return not clock.met and status not in _DONE and not _paused(clock.spec, status, s.tags)


def _policies(s: State) -> PolicySet:
    """The policy set being applied (apply and advance set it before anything runs)."""
    ps = s.policy_set
    if ps is None:
        raise LookupError(f"ticket {s.ticket_id!r}: no policy set")
    return ps


def _new_clock(
    s: State, target: Target, cycle: int, start: int, spec: TargetSpec, status: str
) -> Clock:
    """Start a target cycle at ``start``, with the ticket in ``status``."""
    clock = Clock(target, cycle, start, spec)
    clock.running = _should_run(s, clock, status)
    s.clocks[target] = clock
    if s.journal is not None:
        _note(s, start, "started", target, cycle, spec.policy, running=clock.running)
    return clock


def _calc_due(clock: Clock) -> int:
    spec = clock.spec
    thresholds = spec.thresholds
    if not clock.running or clock.next_threshold >= len(thresholds):
        clock.next_due = NEVER
    else:
        count = thresholds[clock.next_threshold][0]
        clock.next_due = spec.calendar.add(clock.checkpoint, count - clock.counted_ms)
    return clock.next_due


def _stop(clock: Clock, t: int) -> None:
    if clock.running:
        clock.counted_ms += clock.spec.calendar.elapsed(clock.checkpoint, t)
        clock.checkpoint = t
        clock.running = False
        clock.next_due = clock.projected_due = None


def _resume(clock: Clock, t: int) -> None:
    clock.checkpoint = t
    clock.running = True
    clock.next_due = clock.projected_due = None


def _meet(s: State, clock: Clock, t: int, out: list[SlaRecord]) -> None:
    spec = clock.spec
    breached = clock.next_threshold > spec.breach_index
    if breached:
        deadline = clock.breached_at
    elif not clock.running:
        deadline = None
    elif clock.next_threshold == spec.breach_index and clock.next_due is not None:
        deadline = clock.next_due  # the next threshold is the breach: already computed
    else:
        deadline = spec.calendar.add(clock.checkpoint, spec.ms - clock.counted_ms)
    _stop(clock, t)
    clock.met = True
    occurrence = clock.times_met
    clock.times_met = occurrence + 1
    target = clock.target
    entry = _ledger_entry(s, (target, clock.cycle))
    if occurrence >= entry.times_met:
        entry.times_met = occurrence + 1
        _emit(
            s,
            out,
            _MET,
            target,
            spec,
            clock.cycle,
            t,
            deadline,
            clock.counted_ms,
            breached=breached,
            revision=occurrence,
        )
    s.last_met[target] = (clock.cycle, t, breached)
    if s.journal is not None:
        _note(s, t, "met", target, clock.cycle, spec.policy, breached=breached)
    if target is not _RESOLUTION:
        del s.clocks[target]


def _respec(s: State, clock: Clock, spec: TargetSpec, t: int, out: list[SlaRecord]) -> None:
    """Put a clock under a new spec: recount from its cycle's start, cross what is passed.

    What the new spec says was passed before ``t`` is emitted with the instant the recount
    reached it (and the deadline as it stood then), exactly as if the ticket had been under
    this spec all along: the same events give the same SLA events whatever path computed
    them. A warning is pointless beside a breach, and only the highest warning passed is sent.
    """
    clock.spec = spec
    counted, passed = _recount(s, clock, spec, t)
    clock.counted_ms = counted
    clock.checkpoint = t
    clock.running = _should_run(s, clock, s.status)
    clock.next_due = clock.projected_due = None
    k = len(passed)
    clock.next_threshold = k
    breached = k > spec.breach_index
    clock.breached_at = passed[spec.breach_index][0] if breached else None
    if s.journal is not None:
        _note(
            s,
            t,
            "recomputed",
            clock.target,
            clock.cycle,
            spec.policy,
            elapsed_seconds=counted / 1000,
        )
    if not k:
        return
    thresholds = spec.thresholds
    last_warning = max((j for j in range(k) if thresholds[j][1] == WARN), default=-1)
    for j in range(k):
        if thresholds[j][1] == WARN and (breached or j != last_warning):
            continue
        at, deadline = passed[j]
        _emit_threshold(s, clock, j, at, deadline, out)


def _recount(s: State, clock: Clock, spec: TargetSpec, t: int) -> tuple[int, list[tuple[int, int]]]:
    """Walk the status history of the clock's cycle from its start to ``t`` under ``spec``.

    Returns the business ms counted, and for each threshold the count reached strictly
    before ``t`` (a prefix of ``spec.thresholds``): (the instant it was reached, the
    deadline as it stood then). Those are the instants and deadlines the event-time clock
    computes when it runs under ``spec`` from the start: the same calendar pieces, the same
    pauses, the same rules for a threshold reached at the very instant the clock stops."""
    calendar = spec.calendar
    thresholds = spec.thresholds
    origin = clock.cycle_start
    status = "new"
    tags: tuple[str, ...] = ()
    # The changes of what stops the clock after the origin: (instant, status, tags), None
    # where that one did not change.
    changes: list[tuple[int, str | None, tuple[str, ...] | None]] = []
    for at, st in s.status_history:
        if at <= origin:
            status = st
        elif at <= t:
            changes.append((at, st, None))
    if spec.pause_tags:
        for at, tg in s.tag_history:
            if at <= origin:
                tags = tg
            elif at <= t:
                changes.append((at, None, tg))
        changes.sort(key=_instant)  # stable: a status and a tag change keep their order
    counted = 0
    passed: list[tuple[int, int]] = []
    breached_at = 0
    j = 0
    n = len(thresholds)
    start = None if status in _DONE or _paused(spec, status, tags) else origin
    last = len(changes)
    for index in range(last + 1):
        end = index == last  # the end, ``t``
        if end:
            at = t
            done = False
            stopped = True
        else:
            at, st_new, tags_new = changes[index]
            if st_new is not None:
                status = st_new
            if tags_new is not None:
                tags = tags_new
            done = status in _DONE
            stopped = done or _paused(spec, status, tags)
        if start is not None and stopped:
            piece = calendar.elapsed(start, at)
            while j < n and counted + piece >= thresholds[j][0]:
                value = thresholds[j][0]
                reached = calendar.add(start, value - counted)
                # Reached exactly where the clock stops: a pause does not dodge it (the clock
                # crosses it when pausing); a solve there meets it in time, and so does the
                # end, ``t`` (what is due at ``t`` fires after the event, not before it).
                if reached == at and (end or done):
                    break
                if j == spec.breach_index:
                    breached_at = reached
                    deadline = reached
                elif j > spec.breach_index:
                    deadline = breached_at
                else:
                    deadline = calendar.add(start, spec.ms - counted)
                passed.append((reached, deadline))
                j += 1
            counted += piece
            start = None
        elif start is None and not stopped:
            start = at
    return counted, passed


def _instant(change: tuple[int, str | None, tuple[str, ...] | None]) -> int:
    return change[0]


def _cross(s: State, clock: Clock, at: int, out: list[SlaRecord]) -> None:
    """Cross the clock's next threshold in event time, at instant ``at``."""
    k = clock.next_threshold
    clock.next_threshold = k + 1
    clock.next_due = clock.projected_due = None
    spec = clock.spec
    kind = spec.thresholds[k][1]
    if kind == BREACH:
        clock.breached_at = at
        deadline = at
    elif kind == WARN or clock.breached_at is None:
        deadline = spec.calendar.add(clock.checkpoint, spec.ms - clock.counted_ms)
    else:
        deadline = clock.breached_at
    _emit_threshold(s, clock, k, at, deadline, out)


def _emit_threshold(
    s: State, clock: Clock, k: int, at: int, deadline: int, out: list[SlaRecord]
) -> None:
    """Emit threshold ``k`` of the clock, reached at ``at``, unless the ledger has it.

    ``deadline`` is the cycle's deadline: for a breach its own instant, for an escalation
    its breach's, for a warning the instant the target falls due if the clock keeps
    running. A breach or escalation that stands with another instant, deadline or policy
    (a later-applied event changed it) is retracted and sent again under a new revision."""
    spec = clock.spec
    count, kind, param = spec.thresholds[k]
    target = clock.target
    cycle = clock.cycle
    key = (target, cycle)
    entry = s.ledger.get(key)  # inline: this runs for every threshold crossed
    if entry is None:
        entry = s.ledger[key] = LedgerEntry()
    confirmed = s.confirmed
    if kind == WARN:
        bit = 1 << param
        if entry.warned & bit:
            return
        entry.warned |= bit
        _emit(s, out, _WARNING, target, spec, cycle, at, deadline, count, 0, fraction=param / 100)
        if s.journal is not None:
            _note(s, at, "warning", target, cycle, spec.policy, percent=param)
    elif kind == BREACH:
        if confirmed is not None and key not in confirmed:
            confirmed[key] = 0
        said = signature(at, deadline, spec.policy)
        if entry.breach_stands:
            known = entry.breach_signature
            if known == said or not known:
                entry.breach_signature = said
                return
            _withdraw_breach(s, key, entry, s.called_at, out)  # it said another deadline or policy
        revision = entry.breach_revision
        entry.breach_revision = revision + 1
        entry.breach_stands = True
        entry.escalation_level = 0
        entry.breach_signature = said
        _emit(s, out, _BREACHED, target, spec, cycle, at, deadline, count, revision)
        if s.journal is not None:
            _note(s, at, "breached", target, cycle, spec.policy)
    else:
        level = param
        if confirmed is not None and confirmed.get(key, level) < level:
            confirmed[key] = level
        if not entry.breach_stands:
            return
        said = signature(at, deadline, spec.policy)
        signatures = entry.level_signatures
        while len(signatures) < level:
            signatures.append(0)
        if level <= entry.escalation_level:
            known = signatures[level - 1]
            if known == said or not known:
                signatures[level - 1] = said
                return
            _retract(s, key, entry, level, s.called_at, out)  # it said another instant or deadline
            entry.escalation_revision += 1
        else:
            entry.escalation_level = level
        signatures[level - 1] = said
        revision = entry.escalation_revision
        entry.sent_level(level, revision)
        _emit(s, out, _ESCALATED, target, spec, cycle, at, deadline, count, revision, level=level)
        if s.journal is not None:
            _note(s, at, "escalated", target, cycle, spec.policy, level=level)


def _project(s: State, out: list[SlaRecord]) -> None:
    """Emit thresholds of running clocks whose instant is at or before the horizon."""
    horizon = s.horizon
    for clock in s.clocks.values():
        if not clock.running:
            continue
        due = clock.projected_due
        if due is None:
            due = clock.next_due if clock.next_due is not None else _calc_due(clock)
            clock.projected_index = clock.next_threshold
            clock.projected_due = due
        if due > horizon:
            continue
        spec = clock.spec
        thresholds = spec.thresholds
        calendar = spec.calendar
        # The cycle's deadline: crossed already, or where the running clock reaches it.
        breached_at = clock.breached_at
        if breached_at is not None:
            deadline = breached_at
        else:
            deadline = calendar.add(clock.checkpoint, spec.ms - clock.counted_ms)
        k = clock.projected_index
        while due <= horizon:
            if due > s.projected_until:
                s.projected_until = due
            _emit_threshold(s, clock, k, due, deadline, out)
            k += 1
            if k < len(thresholds):
                due = calendar.add(clock.checkpoint, thresholds[k][0] - clock.counted_ms)
            else:
                due = NEVER
        clock.projected_index = k
        clock.projected_due = due


# ---------------------------------------------------------------------------- timeline
def _note(
    s: State,
    at: int,
    what: str,
    target: Target | None,
    cycle: int | None,
    detail: Any,
    **extra: Any,
) -> None:
    """A line of the timeline (only recorded when a timeline is being built: views.timeline)."""
    if s.journal is None:
        return
    item: dict[str, Any] = {"_t": at, "at": from_ms(at).isoformat(), "what": what}
    if target is not None:
        item["target"] = target.value
        item["cycle"] = cycle
    if detail is not None:
        item["detail"] = detail
    item.update(extra)
    s.journal.append(item)
