"""The SLA state machine: ticket events in, SLA events out. Pure and synchronous.

``apply(state, event, policies)`` and ``advance(state, now)`` mutate the state they are
given and return it with the SLA events they decided; nothing here reads a clock, a file
or a socket. The rules are written down in docs/policies.md; this module is their only
implementation.

How one ticket is computed
--------------------------
Events are processed in event-time order, key ``(occurred_at, created-first, hash(event_id))``.
Each target cycle is a *track*: a clock that counts business milliseconds of its
policy's calendar while it runs, and a sorted list of thresholds on that count - the
``warn_at`` fractions, the breach at 100 %, the escalation offsets past it. A threshold
is *crossed* at the first instant the count reaches it.

- Processing an event at ``t`` first crosses every threshold whose instant is before
  ``t`` (so a reply exactly at the deadline is in time), then applies the event.
- The *horizon* is the latest instant the state has been brought to: the newest event
  time, or the ``now`` given to ``advance``. Thresholds of running tracks whose instant is
  at or before the horizon are emitted too ("projected"): that is how ``advance`` fires
  warnings, breaches and escalations, each with its true instant as ``occurred_at``.

Everything emitted is recorded in the state's ledger, per (target, cycle). An event that
arrives in order is processed incrementally. One that arrives late (or any event after
the policy file changed) makes the engine recompute the ticket from its retained log, in
event-time order, and diff the result against the ledger: what is new is emitted, a breach
that no longer holds is retracted, one that holds but now says another instant, deadline or
policy is retracted and emitted again under a revision id, and nothing is emitted twice.

One deadline per target cycle: every threshold event is built by ``_emit_threshold`` from
the instant its count was reached and the cycle's deadline, computed from the track's
checkpoint the same way on every path (``_cross`` in event time, ``_project`` up to the
horizon, ``_recount`` when a re-selection recounts a cycle from its start), so the same
events give the same SLA events whatever the batching.
"""

from __future__ import annotations

import binascii
import hashlib
import zlib
from bisect import insort
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shared.engine.calendar import from_ms, to_ms
from shared.engine.policy import (
    BREACH,
    CODE_TARGETS,
    DONE_STATUSES,
    WARN,
    PolicySet,
    TargetSpec,
)
from shared.engine.record import SlaRecord
from shared.engine.state import State, Track, deserialise, fold_attributes, serialise
from shared.events import (
    AssignedData,
    MessageCreatedData,
    StatusChangedData,
    SurveyRespondedData,
    TicketCreatedData,
    TicketEvent,
    TicketUpdatedData,
)
from shared.sla_events import SlaKind, sla_event_id

NEVER = 1 << 62
# Ledger row: [warning bit mask, breach revision (next), breach stands, escalation level,
# times met, escalation revision (next), the revision each standing level was emitted under
# (_LEVEL_BITS per level, level 1 lowest), the standing breach's signature, then one
# signature per standing escalation level (level 1 first)]. A retraction withdraws a level
# by the id it was sent with: levels below the one withdrawn keep their older revision.
# A signature (``_signature``) fingerprints what the standing event said - its instant,
# deadline and policy - so a recomputation that says otherwise retracts it and sends the
# true one under a new revision. 0 means "not known" (a state stored before signatures).
_LEVEL_BITS = 16
_LEVEL_MASK = (1 << _LEVEL_BITS) - 1
_BREACH_SIG = 7
_LEVEL_SIG = 8  # + level - 1
# Module constants: reading an enum member off its class costs a lookup per SLA event.
_WARNING, _BREACHED, _ESCALATED, _MET, _RETRACTED = (
    SlaKind.warning,
    SlaKind.breached,
    SlaKind.escalated,
    SlaKind.met,
    SlaKind.retracted,
)
_DONE = DONE_STATUSES


# ---------------------------------------------------------------------------- public API
def apply(
    state: State | None, event: TicketEvent, policies: PolicySet
) -> tuple[State, list[SlaRecord]]:
    """Apply one ticket event; returns the (same, mutated) state and the SLA events it decided.

    ``state`` is None for a ticket not seen before. A duplicate ``event_id`` changes nothing.
    """
    t = to_ms(event.occurred_at)
    h = event_hash(event.event_id)
    if state is None:
        state = State(event.ticket_id, policies)
    elif state.tid != event.ticket_id:
        raise ValueError(
            f"event {event.event_id!r} is for ticket {event.ticket_id!r}, not {state.tid!r}"
        )
    elif h in state.ids:
        return state, []
    code, payload = encode(event)
    # Entries sort by (time, created-first, hash); two never tie (a tie is a duplicate).
    entry = (t, 0 if code == "C" else 1, h, code, payload)
    out: list[SlaRecord] = []
    state.ids.add(h)
    last = state.last
    state.trig = t
    if state.fp == policies.fingerprint and (last is None or (t > state.spec and entry > last)):
        state.ps = policies
        state.log.append(entry)
        state.last = entry
        if t > state.hz:
            state.hz = t
        _process(state, entry, out)
        _project(state, out)
    else:
        state.ps = policies
        insort(state.log, entry)
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
    state.trig = n
    if ps.fingerprint != state.fp:
        state.ps = ps
        _replay(state, out, n)
    if n > state.hz:
        state.hz = n
    _project(state, out)
    return state, out


def next_due(state: State) -> datetime | None:
    """The earliest instant at which ``advance`` would emit something, or None."""
    due = _next_due_ms(state)
    return None if due is None else from_ms(due)


def earliest_deadline(state: State) -> datetime | None:
    """The earliest deadline among running, unmet targets (overdue ones included): what the
    at-risk listing sorts by. Cheaper than ``describe`` on a hot path."""
    best = None
    for tr in state.tracks.values():
        if tr.met or not tr.run:
            continue
        due = _deadline(tr)
        if due is not None and (best is None or due < best):
            best = due
    return None if best is None else from_ms(best)


def is_open(state: State) -> bool:
    """False once the ticket is solved or closed (no clock runs; a reopen may follow)."""
    return state.st not in _DONE


def copy_state(state: State, policies: PolicySet | None = None) -> State:
    """An independent copy (apply and advance mutate the state they are given)."""
    return deserialise(serialise(state), policies or state.ps)


def event_hash(event_id: str) -> str:
    """48-bit hash of an event id (8 base64 characters): the dedup and tie-break key.

    Two different ids of one ticket collide with odds of about n^2 / 2^49 (1e-12 for a
    20-event ticket); the hash keeps the state small whatever producers' ids look like."""
    return _b64(_blake2b(event_id.encode(), digest_size=6).digest(), newline=False).decode()


_b64 = binascii.b2a_base64
_blake2b = hashlib.blake2b


def encode(event: TicketEvent) -> tuple[str, dict[str, Any] | None]:
    """(kind code, the fields that matter) of a ticket event, as kept in the state's log."""
    data = event.data
    if isinstance(data, MessageCreatedData):
        if not data.public:
            return "n", None
        role = data.author_role
        return ("a" if role == "agent" else "c" if role == "customer" else "n"), None
    if isinstance(data, StatusChangedData):
        return "S", {"st": data.status.value}
    payload: dict[str, Any] = {}
    if isinstance(data, TicketCreatedData):
        payload["p"] = data.priority.value
        payload["ch"] = event.channel.value
        if data.status != "new":
            payload["st"] = data.status.value
        if data.customer_tier is not None:
            payload["ti"] = data.customer_tier
        if data.group is not None:
            payload["g"] = data.group
        if data.assignee is not None:
            payload["a"] = data.assignee
        if data.tags:
            payload["tg"] = list(data.tags)
        if data.url is not None:
            payload["u"] = data.url
        if data.subject is not None:
            payload["su"] = data.subject
        return "C", payload
    if isinstance(data, TicketUpdatedData):
        fields = data.model_fields_set
        if "priority" in fields and data.priority is not None:
            payload["p"] = data.priority.value
        if "customer_tier" in fields:
            payload["ti"] = data.customer_tier
        if "group" in fields:
            payload["g"] = data.group
        if "assignee" in fields:
            payload["a"] = data.assignee
        if "tags" in fields:
            payload["tg"] = list(data.tags or ())
        if "url" in fields:
            payload["u"] = data.url
        return "U", payload or None
    if isinstance(data, AssignedData):
        fields = data.model_fields_set
        if "assignee" in fields:
            payload["a"] = data.assignee
        if "group" in fields:
            payload["g"] = data.group
        return "A", payload or None
    if isinstance(data, SurveyRespondedData):
        if data.csat is not None:
            payload["cs"] = data.csat
        if data.nps is not None:
            payload["np"] = data.nps
        return "v", payload
    raise ValueError(f"unknown event type {event.type!r}")


# ---------------------------------------------------------------------------- replay
def _replay(s: State, out: list[SlaRecord], trigger: int) -> None:
    """Recompute the ticket from its log in event-time order; diff against the ledger."""
    ps = s.ps
    assert ps is not None
    s.fp = ps.fingerprint
    s.trig = trigger
    s.reset()
    s.spec = 0
    s.confirm = {}
    for entry in s.log:
        _process(s, entry, out)
    if s.log:
        s.last = s.log[-1]
        if s.log[-1][0] > s.hz:
            s.hz = s.log[-1][0]
    _project(s, out)
    confirmed = s.confirm
    for key, led in s.ledger.items():
        if not led[2]:
            continue
        level = confirmed.get(key)
        if level is None:
            _withdraw_breach(s, key, led, trigger, out)
        elif led[3] > level:
            for gone in range(led[3], level, -1):
                _retract(s, key, led, gone, trigger, out)
            led[3] = level
            led[5] += 1
            del led[_LEVEL_SIG + level :]
    s.confirm = None


def _withdraw_breach(
    s: State, key: tuple[str, int], led: list[int], at: int, out: list[SlaRecord]
) -> None:
    """Retract the standing breach of ``key`` (its escalations go with it)."""
    _retract(s, key, led, None, at, out)
    led[2] = 0
    led[3] = 0
    led[5] += 1
    led[_BREACH_SIG] = 0
    del led[_LEVEL_SIG:]


def _ledger_row(s: State, key: tuple[str, int]) -> list[int]:
    led = s.ledger.get(key)
    if led is None:
        led = s.ledger[key] = [0, 0, 0, 0, 0, 0, 0, 0]
    return led


def _signature(at: int, deadline: int, policy: str) -> int:
    """What a standing breach or escalation said, in 31 bits (never 0: "not known").
    Stable across processes (states are stored and loaded elsewhere), unlike ``hash``."""
    return (zlib.crc32(f"{at},{deadline},{policy}".encode()) & 0x7FFFFFFF) or 1


def _retract(
    s: State, key: tuple[str, int], led: list[int], level: int | None, at: int, out: list[SlaRecord]
) -> None:
    """Withdraw the standing breach (``level`` None; its escalations go with it) or one
    escalation level that recomputation no longer reaches."""
    code, cyc = key
    name = CODE_TARGETS[code]
    if level is None:
        revision = led[1] - 1
        withdrawn = sla_event_id(s.tid, name, cyc, SlaKind.breached.value, revision=revision)
    else:
        revision = (led[6] >> (_LEVEL_BITS * (level - 1))) & _LEVEL_MASK  # as it was emitted
        withdrawn = sla_event_id(
            s.tid, name, cyc, SlaKind.escalated.value, level=level, revision=revision
        )
    tr = s.tracks.get(code)
    if tr is not None and tr.cyc != cyc:
        tr = None
    spec = tr.spec if tr is not None else None
    if spec is None and s.pid is not None:
        spec = s.pol.targets.get(code)
    out.append(
        SlaRecord(
            _RETRACTED,
            s.tid,
            name,
            spec.policy if spec else (s.pid or ""),
            cyc,
            at,
            _deadline(tr) if tr is not None else None,
            tr.el if tr is not None else 0,
            spec.ms if spec else 0,
            None,  # fraction
            level,
            None,  # breached
            revision,
            withdrawn,
            s.attributes(),
        )
    )
    if s.journal is not None:
        _note(s, at, "retracted", code, cyc, withdrawn)


# ---------------------------------------------------------------------------- one event
def _process(s: State, entry: tuple, out: list[SlaRecord]) -> None:
    t, _rank, _h, code, payload = entry
    for tr in s.tracks.values():
        if tr.run:
            due = tr.due
            if due is None:
                due = _calc_due(tr)
            while due < t:
                _cross(s, tr, due, out)
                due = _calc_due(tr)
    if code == "a":
        _agent_reply(s, t, out)
    elif code == "c":
        _customer_message(s, t, out)
    elif code == "S":
        _status(s, t, payload["st"], out)
    elif code == "C":
        _created(s, t, payload, out)
    elif code == "U" or code == "A":
        _update(s, t, payload, out)
    elif code == "v" and payload:
        if payload.get("cs") is not None:
            s.csat = payload["cs"]
        if payload.get("np") is not None:
            s.nps = payload["np"]


def _created(s: State, t: int, payload: dict, out: list[SlaRecord]) -> None:
    if s.ct is not None:
        _update(s, t, payload, out)  # a second ticket.created only updates attributes
        return
    s.ct = t
    s.chan = payload.get("ch")
    s.av = None
    fold_attributes(s, payload)
    s.st = "new"
    s.sh = [(t, "new")]
    policy = _policies(s).select(s.pri, s.tier, s.chan, s.grp, s.tags)
    s.pid = policy.id
    s.pol = policy
    if s.journal is not None:
        _note(s, t, "policy", None, None, policy.id, why=s.why)
    for code in ("f", "r"):
        spec = policy.targets.get(code)
        if spec is not None:
            _new_track(s, code, 0, t, spec)
    status = payload.get("st", "new")
    if status != "new":
        _status(s, t, status, out)


def _update(s: State, t: int, payload: dict | None, out: list[SlaRecord]) -> None:
    before = (s.pri, s.tier, s.grp, s.tags)
    fold_attributes(s, payload)
    if s.ct is not None and (s.pri, s.tier, s.grp, s.tags) != before:
        _reselect(s, t, out)


def _agent_reply(s: State, t: int, out: list[SlaRecord]) -> None:
    if s.ct is None:
        return
    s.rp += 1
    if s.fra is None:
        s.fra = t
        fr = s.tracks.get("f")
        if fr is None:
            s.frs = s.pol.calendar.elapsed(s.ct, t)
    if s.st in _DONE:
        return
    tracks = s.tracks
    if not s.frd:
        s.frd = True
        fr = tracks.get("f")
        if fr is not None:
            _meet(s, fr, t, out)
            s.frs = fr.el
    if s.nrs is not None:
        s.nrs = None
        nr = tracks.get("n")
        if nr is not None:
            _meet(s, nr, t, out)
    pu = tracks.get("p")
    if pu is not None:
        _meet(s, pu, t, out)
    s.puc += 1
    s.pus = t
    spec = s.pol.targets.get("p")
    if spec is not None:
        _new_track(s, "p", s.puc, t, spec)


def _customer_message(s: State, t: int, out: list[SlaRecord]) -> None:
    if s.ct is None or s.st in _DONE or not s.frd or s.nrs is not None:
        return
    s.nrc += 1
    s.nrs = t
    spec = s.pol.targets.get("n")
    if spec is not None:
        _new_track(s, "n", s.nrc, t, spec)


def _status(s: State, t: int, new: str, out: list[SlaRecord]) -> None:
    old = s.st
    if new == old or s.ct is None:
        return
    s.st = new
    s.sh.append((t, new))
    if new in _DONE:
        if old in _DONE:
            return
        s.frd = True
        s.sa = t
        for tr in list(s.tracks.values()):
            if not tr.met:
                _meet(s, tr, t, out)
        s.nrs = None
        s.pus = None
        r = s.tracks.get("r")
        s.rs = r.el if r is not None else s.pol.calendar.elapsed(s.ct, t)
        return
    if old in _DONE:
        _reopen(s, t, out)
        return
    pause = _policies(s).pause_statuses
    pausing = new in pause
    if (old in pause) == pausing:
        return
    for tr in s.tracks.values():
        if tr.met or not tr.spec.pausable:
            continue
        if pausing:
            if tr.run:
                due = tr.due if tr.due is not None else _calc_due(tr)
                while due <= t:  # pausing at the very instant does not dodge a threshold
                    _cross(s, tr, due, out)
                    due = _calc_due(tr)
                _stop(tr, t)
                if s.journal is not None:
                    _note(s, t, "paused", tr.code, tr.cyc, new)
        elif not tr.run:
            _resume(tr, t)
            if s.journal is not None:
                _note(s, t, "resumed", tr.code, tr.cyc, new)


def _reopen(s: State, t: int, out: list[SlaRecord]) -> None:
    policy = s.pol
    spec = policy.targets.get("r")
    r = s.tracks.get("r")
    if s.journal is not None:
        _note(s, t, "reopened", None, None, s.st)
    if r is not None:
        r.met = False
        if not r.breached and r.spec is not spec:
            if spec is None:
                del s.tracks["r"]
            else:
                _respec(s, r, spec, t, out)
        elif _should_run(s, r):
            _resume(r, t)
            if s.journal is not None:
                _note(s, t, "resumed", "r", r.cyc, "reopened")
    elif spec is not None:
        r = Track("r", 0, s.ct or t, spec)  # a reopen follows a created ticket: ct is set
        s.tracks["r"] = r
        _respec(s, r, spec, t, out)
    s.puc += 1
    s.pus = t
    pspec = policy.targets.get("p")
    if pspec is not None:
        _new_track(s, "p", s.puc, t, pspec)


def _reselect(s: State, t: int, out: list[SlaRecord]) -> None:
    """Attributes changed: pick the policy again; recompute running targets under it."""
    policy = _policies(s).select(s.pri, s.tier, s.chan, s.grp, s.tags)
    if policy.id == s.pid:
        return
    if s.journal is not None:
        why = policy.why(s.pri, s.tier, s.chan, s.grp, s.tags)
        _note(s, t, "policy", None, None, policy.id, why=why, previous=s.pid)
    s.pid = policy.id
    s.pol = policy
    tracks = s.tracks
    for code in ("f", "n", "p", "r"):
        tr = tracks.get(code)
        spec = policy.targets.get(code)
        if tr is not None:
            if tr.met or tr.breached:
                continue  # met or breached targets keep their outcome (and their policy)
            if spec is None:
                del tracks[code]
                if s.journal is not None:
                    _note(s, t, "dropped", code, tr.cyc, policy.id)
            else:
                _respec(s, tr, spec, t, out)
            continue
        if spec is None:
            continue
        origin, cyc = None, 0
        if code == "f" and not s.frd:
            origin = s.ct
        elif code == "n":
            origin, cyc = s.nrs, s.nrc
        elif code == "p":
            origin, cyc = s.pus, s.puc
        elif code == "r" and s.st not in _DONE:
            origin = s.ct
        if origin is not None:
            tr = Track(code, cyc, origin, spec)
            tracks[code] = tr
            _respec(s, tr, spec, t, out)


# ---------------------------------------------------------------------------- tracks
def _should_run(s: State, tr: Track) -> bool:
    st = s.st
    return not tr.met and st not in _DONE and not (tr.spec.pausable and st in _policies(s).pause_statuses)


def _policies(s: State) -> PolicySet:
    """The policy set being applied (apply and advance set it before anything runs)."""
    ps = s.ps
    if ps is None:
        raise LookupError(f"ticket {s.tid!r}: no policy set")
    return ps


def _new_track(s: State, code: str, cyc: int, origin: int, spec: TargetSpec) -> Track:
    tr = Track(code, cyc, origin, spec)
    tr.run = _should_run(s, tr)
    s.tracks[code] = tr
    if s.journal is not None:
        _note(s, origin, "started", code, cyc, spec.policy, running=tr.run)
    return tr


def _calc_due(tr: Track) -> int:
    spec = tr.spec
    thresholds = spec.thresholds
    if not tr.run or tr.nxt >= len(thresholds):
        tr.due = NEVER
    else:
        tr.due = spec.calendar.add(tr.ck, thresholds[tr.nxt][0] - tr.el)
    return tr.due


def _stop(tr: Track, t: int) -> None:
    if tr.run:
        tr.el += tr.spec.calendar.elapsed(tr.ck, t)
        tr.ck = t
        tr.run = False
        tr.due = tr.pdue = None


def _resume(tr: Track, t: int) -> None:
    tr.ck = t
    tr.run = True
    tr.due = tr.pdue = None


def _deadline(tr: Track) -> int | None:
    if tr.bat is not None:
        return tr.bat
    spec = tr.spec
    if not tr.run:
        return None
    return spec.calendar.add(tr.ck, spec.ms - tr.el)


def _meet(s: State, tr: Track, t: int, out: list[SlaRecord]) -> None:
    spec = tr.spec
    breached = tr.nxt > spec.breach_index
    if breached:
        deadline = tr.bat
    elif not tr.run:
        deadline = None
    elif tr.nxt == spec.breach_index and tr.due is not None:
        deadline = tr.due  # the next threshold is the breach: already computed
    else:
        deadline = spec.calendar.add(tr.ck, spec.ms - tr.el)
    _stop(tr, t)
    tr.met = True
    occurrence = tr.mc
    tr.mc = occurrence + 1
    led = _ledger_row(s, (tr.code, tr.cyc))
    if occurrence >= led[4]:
        led[4] = occurrence + 1
        out.append(
            SlaRecord(
                _MET,
                s.tid,
                spec.name,
                spec.policy,
                tr.cyc,
                t,
                deadline,
                tr.el,
                spec.ms,
                None,  # fraction
                None,  # level
                breached,
                occurrence,  # revision
                None,  # retracts
                s.attributes(),
            )
        )
    s.oc[tr.code] = (tr.cyc, t, breached)
    if s.journal is not None:
        _note(s, t, "met", tr.code, tr.cyc, spec.policy, breached=breached)
    if tr.code != "r":
        del s.tracks[tr.code]


def _respec(s: State, tr: Track, spec: TargetSpec, t: int, out: list[SlaRecord]) -> None:
    """Put a track under a new spec: recount from its original start, cross what is passed.

    What the new spec says was passed before ``t`` is emitted with the instant the recount
    reached it (and the deadline as it stood then), exactly as if the ticket had been under
    this spec all along: the same events give the same SLA events whatever path computed
    them. A warning is pointless beside a breach, and only the highest warning passed is sent.
    """
    tr.spec = spec
    el, passed = _recount(s, tr, spec, t)
    tr.el = el
    tr.ck = t
    tr.run = _should_run(s, tr)
    tr.due = tr.pdue = None
    k = len(passed)
    tr.nxt = k
    breached = k > spec.breach_index
    tr.bat = passed[spec.breach_index][0] if breached else None
    if s.journal is not None:
        _note(s, t, "recomputed", tr.code, tr.cyc, spec.policy, elapsed_seconds=el / 1000)
    if not k:
        return
    thresholds = spec.thresholds
    last_warning = max((j for j in range(k) if thresholds[j][1] == WARN), default=-1)
    for j in range(k):
        if thresholds[j][1] == WARN and (breached or j != last_warning):
            continue
        at, deadline = passed[j]
        _emit_threshold(s, tr, j, at, deadline, out)


def _recount(s: State, tr: Track, spec: TargetSpec, t: int) -> tuple[int, list[tuple[int, int]]]:
    """Walk the status history of the track's cycle from its origin to ``t`` under ``spec``.

    Returns the business ms counted, and for each threshold the count reached strictly
    before ``t`` (a prefix of ``spec.thresholds``): (the instant it was reached, the
    deadline as it stood then). Those are the instants and deadlines the event-time clock
    computes when it runs under ``spec`` from the start: the same calendar pieces, the same
    pauses, the same rules for a threshold reached at the very instant the clock stops."""
    stop = (_policies(s).pause_statuses if spec.pausable else frozenset()) | _DONE
    calendar = spec.calendar
    thresholds = spec.thresholds
    origin = tr.org
    status = "new"
    changes: list[tuple[int, str | None]] = []
    for at, st in s.sh:
        if at <= origin:
            status = st
        elif at <= t:
            changes.append((at, st))
    el = 0
    passed: list[tuple[int, int]] = []
    bat = 0
    j = 0
    n = len(thresholds)
    start = origin if status not in stop else None
    for at, new in [*changes, (t, None)]:  # None: the end, ``t``
        if start is not None and (new is None or new in stop):
            piece = calendar.elapsed(start, at)
            while j < n and el + piece >= thresholds[j][0]:
                value = thresholds[j][0]
                reached = calendar.add(start, value - el)
                # Reached exactly where the clock stops: a pause does not dodge it (the clock
                # crosses it when pausing); a solve there meets it in time, and so does the
                # end, ``t`` (what is due at ``t`` fires after the event, not before it).
                if reached == at and (new is None or new in _DONE):
                    break
                if j == spec.breach_index:
                    bat = reached
                    deadline = reached
                elif j > spec.breach_index:
                    deadline = bat
                else:
                    deadline = calendar.add(start, spec.ms - el)
                passed.append((reached, deadline))
                j += 1
            el += piece
            start = None
        elif start is None and new is not None and new not in stop:
            start = at
    return el, passed


def _cross(s: State, tr: Track, at: int, out: list[SlaRecord]) -> None:
    """Cross the track's next threshold in event time, at instant ``at``."""
    k = tr.nxt
    tr.nxt = k + 1
    tr.due = tr.pdue = None
    spec = tr.spec
    kind = spec.thresholds[k][1]
    if kind == BREACH:
        tr.bat = at
        deadline = at
    elif kind == WARN or tr.bat is None:
        deadline = spec.calendar.add(tr.ck, spec.ms - tr.el)
    else:
        deadline = tr.bat
    _emit_threshold(s, tr, k, at, deadline, out)


def _emit_threshold(
    s: State, tr: Track, k: int, at: int, deadline: int, out: list[SlaRecord]
) -> None:
    """Emit threshold ``k`` of the track, reached at ``at``, unless the ledger has it.

    ``deadline`` is the cycle's deadline: for a breach its own instant, for an escalation
    its breach's, for a warning the instant the target falls due if the clock keeps
    running. A breach or escalation that stands with another instant, deadline or policy
    (a later-applied event changed it) is retracted and sent again under a new revision."""
    spec = tr.spec
    value, kind, param = spec.thresholds[k]
    key = (tr.code, tr.cyc)
    led = s.ledger.get(key)
    if led is None:
        led = s.ledger[key] = [0, 0, 0, 0, 0, 0, 0, 0]
    confirm = s.confirm
    if kind == WARN:
        bit = 1 << param
        if led[0] & bit:
            return
        led[0] |= bit
        out.append(
            SlaRecord(
                _WARNING,
                s.tid,
                spec.name,
                spec.policy,
                tr.cyc,
                at,
                deadline,
                value,
                spec.ms,
                param / 100,  # fraction
                None,  # level
                None,  # breached
                0,  # revision
                None,  # retracts
                s.attributes(),
            )
        )
        if s.journal is not None:
            _note(s, at, "warning", tr.code, tr.cyc, spec.policy, percent=param)
    elif kind == BREACH:
        if confirm is not None and key not in confirm:
            confirm[key] = 0
        sig = _signature(at, deadline, spec.policy)
        if led[2]:
            known = led[_BREACH_SIG]
            if known == sig or not known:
                led[_BREACH_SIG] = sig
                return
            _withdraw_breach(s, key, led, s.trig, out)  # it said another deadline or policy
        revision = led[1]
        led[1] = revision + 1
        led[2] = 1
        led[3] = 0
        led[_BREACH_SIG] = sig
        out.append(
            SlaRecord(
                _BREACHED,
                s.tid,
                spec.name,
                spec.policy,
                tr.cyc,
                at,
                deadline,
                value,
                spec.ms,
                None,  # fraction
                None,  # level
                None,  # breached
                revision,
                None,  # retracts
                s.attributes(),
            )
        )
        if s.journal is not None:
            _note(s, at, "breached", tr.code, tr.cyc, spec.policy)
    else:
        if confirm is not None and confirm.get(key, param) < param:
            confirm[key] = param
        if not led[2]:
            return
        sig = _signature(at, deadline, spec.policy)
        slot = _LEVEL_SIG + param - 1
        while len(led) <= slot:
            led.append(0)
        if param <= led[3]:
            known = led[slot]
            if known == sig or not known:
                led[slot] = sig
                return
            _retract(s, key, led, param, s.trig, out)  # it said another instant or deadline
            led[5] += 1
        else:
            led[3] = param
        led[slot] = sig
        shift = _LEVEL_BITS * (param - 1)  # remember the revision this level goes out under
        led[6] = (led[6] & ~(_LEVEL_MASK << shift)) | (led[5] << shift)
        out.append(
            SlaRecord(
                _ESCALATED,
                s.tid,
                spec.name,
                spec.policy,
                tr.cyc,
                at,
                deadline,
                value,
                spec.ms,
                None,  # fraction
                param,  # level
                None,  # breached
                led[5],  # revision
                None,  # retracts
                s.attributes(),
            )
        )
        if s.journal is not None:
            _note(s, at, "escalated", tr.code, tr.cyc, spec.policy, level=param)


def _project(s: State, out: list[SlaRecord]) -> None:
    """Emit thresholds of running tracks whose instant is at or before the horizon."""
    hz = s.hz
    for tr in s.tracks.values():
        if not tr.run:
            continue
        pdue = tr.pdue
        if pdue is None:
            pdue = tr.due if tr.due is not None else _calc_due(tr)
            tr.pk = tr.nxt
            tr.pdue = pdue
        if pdue > hz:
            continue
        spec = tr.spec
        thresholds = spec.thresholds
        calendar = spec.calendar
        # The cycle's deadline: crossed already, or where the running clock reaches it.
        bat = tr.bat
        deadline = bat if bat is not None else calendar.add(tr.ck, spec.ms - tr.el)
        k = tr.pk
        while pdue <= hz:
            if pdue > s.spec:
                s.spec = pdue
            _emit_threshold(s, tr, k, pdue, deadline, out)
            k += 1
            pdue = calendar.add(tr.ck, thresholds[k][0] - tr.el) if k < len(thresholds) else NEVER
        tr.pk = k
        tr.pdue = pdue


def _next_due_ms(s: State) -> int | None:
    best = NEVER
    hz = s.hz
    for tr in s.tracks.values():
        if not tr.run:
            continue
        pdue = tr.pdue
        if pdue is None or pdue <= hz:
            spec = tr.spec
            thresholds = spec.thresholds
            k = tr.nxt if pdue is None else tr.pk
            pdue = NEVER
            while k < len(thresholds):
                pdue = spec.calendar.add(tr.ck, thresholds[k][0] - tr.el)
                if pdue > hz:
                    break
                k += 1
                pdue = NEVER
            tr.pk, tr.pdue = k, pdue
        if pdue < best:
            best = pdue
    return None if best == NEVER else best


# ---------------------------------------------------------------------------- timeline
def _note(
    s: State, at: int, what: str, code: str | None, cycle: int | None, detail: Any, **extra: Any
) -> None:
    """A line of the timeline (only recorded when a timeline is being built)."""
    if s.journal is None:
        return
    item: dict[str, Any] = {"_t": at, "at": from_ms(at).isoformat(), "what": what}
    if code is not None:
        item["target"] = CODE_TARGETS[code]
        item["cycle"] = cycle
    if detail is not None:
        item["detail"] = detail
    item.update(extra)
    s.journal.append(item)


# ---------------------------------------------------------------------------- read side
def describe(state: State, now: datetime, policies: PolicySet | None = None) -> dict[str, Any]:
    """The ticket's SLA status at ``now`` for the read API: which policy and why, and per
    target its state (running / paused / met / breached), deadline and business time left
    or overdue. Does not change the state."""
    ps = state.policies(policies)
    if ps.fingerprint != state.fp:
        state = copy_state(state, ps)
        state.ps = ps
        _replay(state, [], to_ms(now))
    n = to_ms(now)
    targets: list[dict[str, Any]] = []
    for tr in state.tracks.values():
        spec = tr.spec
        el = tr.el + (spec.calendar.elapsed(tr.ck, n) if tr.run and n > tr.ck else 0)
        deadline = _deadline(tr)
        breached = (
            tr.breached or el > spec.ms or (deadline is not None and deadline <= n and not tr.met)
        )
        if tr.met:
            status = "met"
        elif breached:
            status = "breached"
        else:
            status = "running" if tr.run else "paused"
        targets.append(
            {
                "target": spec.name,
                "cycle": tr.cyc,
                "status": status,
                "breached": breached,
                "policy": spec.policy,
                "calendar": spec.calendar.name,
                "started_at": from_ms(tr.org).isoformat(),
                "deadline": None if deadline is None else from_ms(deadline).isoformat(),
                "target_seconds": spec.ms / 1000,
                "elapsed_seconds": el / 1000,
                "remaining_seconds": max(0, spec.ms - el) / 1000,
                "overdue_seconds": max(0, el - spec.ms) / 1000,
            }
        )
    for code, (cyc, at, breached) in sorted(state.oc.items()):
        if code in state.tracks and state.tracks[code].cyc == cyc:
            continue
        targets.append(
            {
                "target": CODE_TARGETS[code],
                "cycle": cyc,
                "status": "met",
                "breached": breached,
                "met_at": from_ms(at).isoformat(),
            }
        )
    order = {"first_response": 0, "next_response": 1, "periodic_update": 2, "resolution": 3}
    targets.sort(key=lambda item: (order[item["target"]], item["cycle"]))
    due = _next_due_ms(state)
    return {
        "ticket_id": state.tid,
        "status": state.st,
        "policy": state.pid,
        "why": state.why,
        "policy_set": state.fp,
        "attributes": _attributes(state),
        "targets": targets,
        "next_due": None if due is None else from_ms(due).isoformat(),
        "as_of": from_ms(n).isoformat(),
    }


def _attributes(s: State) -> dict[str, Any]:
    return {
        "priority": s.pri,
        "customer_tier": s.tier,
        "channel": s.chan,
        "group": s.grp,
        "assignee": s.asg,
        "tags": list(s.tags),
        "url": s.url,
        "subject": s.subj,
    }


def facts(state: State) -> dict[str, Any]:
    """Per-ticket facts for compliance reports (JSON-ready; instants as ISO 8601 UTC)."""

    def iso(ms: int | None) -> str | None:
        return None if ms is None else from_ms(ms).isoformat()

    per_target: dict[str, dict[str, int]] = {}
    for (code, _cyc), led in state.ledger.items():
        counts = per_target.setdefault(CODE_TARGETS[code], {"cycles_met": 0, "breaches": 0})
        if led[4]:
            counts["cycles_met"] += 1
        if led[2]:
            counts["breaches"] += 1
    return {
        "ticket_id": state.tid,
        "policy": state.pid,
        "why": state.why,
        "priority": state.pri,
        "customer_tier": state.tier,
        "channel": state.chan,
        "group": state.grp,
        "assignee": state.asg,
        "status": state.st,
        "created_at": iso(state.ct),
        "first_response_at": iso(state.fra),
        "first_response_seconds": None if state.frs is None else state.frs / 1000,
        "solved": state.st in _DONE,
        "solved_at": iso(state.sa),
        "resolution_seconds": None if state.rs is None else state.rs / 1000,
        "public_agent_replies": state.rp,
        "csat": state.csat,
        "nps": state.nps,
        "targets": per_target,
    }


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
