"""The stored form of an SLA state: compact, versioned JSON (format 1).

This module is the only place that knows the stored layout and its short keys. States
stored by any engine since format 1 load; what is written is format 1 still, byte for byte
what the engine wrote before its fields had names (tests/engine/test_format1.py loads blobs
stored by that engine and checks they write back unchanged), so no migration is needed.

Layout::

    [1, ticket_id, policy_fingerprint, base_ms, horizon, projected_until,
     log, ledger, derived]

Instants are ms offsets from ``base_ms`` (the first event), which keeps a realistic ticket
well under 1 KB. A log entry is one string, kind letter (``EventKind``) + 8-character id
hash + hexadecimal offset (+ ``:status`` for a status change), or ``[that, {fields}]`` when
the event carries other fields (ticket_log's keys). A ledger row is
``"<target letter><cycle>|<warning percents>|<breach revision>,<breach stands>,<escalation
level>,<times met>,<escalation revision>,<level revisions, packed>,<breach signature>,<each
level's signature, level 1 first>"`` (trailing zeros left out; a row written before
signatures existed reads with signature 0, "not known"). ``derived`` holds the SLA fields
(``pid`` policy id, ``frd`` first response done, ``frs``/``rs`` first-response/resolution
business ms, ``nrc``/``nrs`` next-response cycle and its start, ``puc``/``pus`` periodic
update, ``og`` the group of each OLA cycle, ``tr`` the clocks, ``oc`` the last met
outcomes). An OLA clock (target letters ``o`` group_ownership, ``g`` group_response) stores
its policy as 0: its cycle's group in ``og`` names its OLA. Blobs without OLAs are byte for
byte what format 1 always was; the OLA keys only extend it. The ticket's own fields are not
stored: loading folds them from the log (``ticket_log.fold_event``).
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Final

from slawatch.shared.engine.policy import PolicySet, registered
from slawatch.shared.engine.state import (
    STATUS_CHANGED,
    Clock,
    EventKind,
    LedgerEntry,
    LogEntry,
    State,
)
from slawatch.shared.engine.ticket_log import STATUS, fold_event
from slawatch.shared.sla_events import GROUP_TARGETS, Target

FORMAT_VERSION = 1
# A serialised state longer than this is stored zlib-compressed (a long conversation: ~1 in
# 10 realistic open tickets); shorter ones stay plain JSON, cheaper to write and to read.
COMPRESS_ABOVE = 1024

# A target is stored as one letter: the ticket targets their initial (format 1 as it was
# first written), the OLA targets letters no initial took (unique: checked at import).
_LETTER: Final = {
    Target.first_response: "f",
    Target.next_response: "n",
    Target.periodic_update: "p",
    Target.resolution: "r",
    Target.group_ownership: "o",
    Target.group_response: "g",
}
assert set(_LETTER) == set(Target), "every target needs its stored letter"
_TARGET: Final = {letter: target for target, letter in _LETTER.items()}
assert len(_TARGET) == len(_LETTER), (
    "two targets share an initial: the stored format needs another letter"
)
_KIND: Final = {kind.value: kind for kind in EventKind}
_GROUP_TARGETS: Final = frozenset(GROUP_TARGETS)


class StateError(ValueError):
    """A serialised state this engine cannot read (wrong version, damaged)."""


def serialise(state: State) -> bytes:
    """The state's stored form (zlib-compressed above ``COMPRESS_ABOVE`` bytes)."""
    log = state.log
    base = log[0].at if log else 0
    entries: list[Any] = []
    for entry in log:
        kind = entry.kind
        fields = entry.fields
        letter: str = kind  # joined as the str it is, not formatted as an enum member
        tag = f"{letter}{entry.hashed}{entry.at - base:x}"
        if kind is STATUS_CHANGED:
            assert fields is not None
            entries.append(tag + ":" + fields[STATUS])
        else:
            entries.append([tag, fields] if fields else tag)
    ledger = []
    for (target, cycle), sent in state.ledger.items():
        values = [
            sent.breach_revision,
            int(sent.breach_stands),
            sent.escalation_level,
            sent.times_met,
            sent.escalation_revision,
            sent.level_revisions,
            sent.breach_signature,
            *sent.level_signatures,
        ]
        while values and not values[-1]:
            values.pop()
        percents = ",".join(str(p) for p in _percents(sent.warned))
        ledger.append(f"{_LETTER[target]}{cycle}|{percents}|{','.join(map(str, values))}")

    def rel(ms: int | None) -> int | None:
        return None if ms is None else ms - base

    clocks = [
        [
            _LETTER[clock.target],
            clock.cycle,
            clock.cycle_start - base,
            0
            if clock.spec.group is not None or clock.spec.policy == state.policy_id
            else clock.spec.policy,
            clock.checkpoint - base,
            clock.counted_ms,
            int(clock.running),
            clock.next_threshold,
            int(clock.met),
            clock.times_met,
            rel(clock.breached_at),
        ]
        for clock in state.clocks.values()
    ]
    derived: dict[str, Any] = {}
    if state.policy_id is not None:
        derived["pid"] = state.policy_id
    if state.first_response_done:
        derived["frd"] = 1
    if state.next_response_started_at is not None:
        derived["nrs"] = state.next_response_started_at - base
    if state.periodic_update_started_at is not None:
        derived["pus"] = state.periodic_update_started_at - base
    if state.first_response_ms:
        derived["frs"] = state.first_response_ms
    if state.resolution_ms:
        derived["rs"] = state.resolution_ms
    if state.next_response_cycle:
        derived["nrc"] = state.next_response_cycle
    if state.periodic_update_cycle:
        derived["puc"] = state.periodic_update_cycle
    if clocks:
        derived["tr"] = clocks
    if state.ola_groups:
        derived["og"] = state.ola_groups
    if state.last_met:
        derived["oc"] = {
            _LETTER[target]: [cycle, at - base, int(breached)]
            for target, (cycle, at, breached) in state.last_met.items()
        }
    doc = [
        FORMAT_VERSION,
        state.ticket_id,
        state.fingerprint,
        base,
        rel(state.horizon or None),
        rel(state.projected_until or None),
        entries,
        ledger,
        derived,
    ]
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    if len(raw) > COMPRESS_ABOVE:
        return zlib.compress(raw)  # its first byte is 0x78, never the JSON's "["
    return raw


def _percents(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _mask(percents: list[int]) -> int:
    mask = 0
    for p in percents:
        mask |= 1 << p
    return mask


def deserialise(blob: bytes | str, policies: PolicySet | None = None) -> State:
    """Read a state back. ``policies`` may be left out when the set it was computed with is
    loaded in this process (found by fingerprint); a changed policy file is handled by the
    next engine call, which recomputes the ticket under the set it is given."""
    try:
        if isinstance(blob, bytes) and blob[:1] == b"\x78":
            blob = zlib.decompress(blob)
        doc = json.loads(blob)
        version = doc[0]
    except (ValueError, TypeError, IndexError, KeyError, zlib.error) as exc:
        raise StateError(f"not a serialised SLA state: {exc}") from None
    if version != FORMAT_VERSION:
        raise StateError(
            f"SLA state format {version!r} is not supported (this engine reads {FORMAT_VERSION})"
        )
    try:
        return _read_format_1(doc, policies)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, AssertionError) as exc:
        raise StateError(f"damaged SLA state: {exc!r}") from None


def copy_state(state: State, policies: PolicySet | None = None) -> State:
    """An independent copy (apply and advance mutate the state they are given)."""
    return deserialise(serialise(state), policies or state.policy_set)


def _read_format_1(doc: list, policies: PolicySet | None) -> State:
    _version, ticket_id, fingerprint, base, horizon, projected, entries, ledger, derived = doc
    fields: dict[str, Any] | None
    state = State(ticket_id)
    state.fingerprint = fingerprint
    if policies is not None and policies.fingerprint == fingerprint:
        state.policy_set = policies
    else:
        state.policy_set = registered(fingerprint)
    state.horizon = 0 if horizon is None else base + horizon
    state.projected_until = 0 if projected is None else base + projected
    log = state.log
    hashes = state.event_hashes
    for item in entries:
        if isinstance(item, str):
            tagged, _, status = item.partition(":")
            fields = {STATUS: status} if status else None
        else:
            tagged, fields = item
        hashed = tagged[1:9]
        entry = LogEntry(base + int(tagged[9:], 16), hashed, _KIND[tagged[0]], fields)
        log.append(entry)
        hashes.add(hashed)
        fold_event(state, entry)
    if log:
        state.last_entry = log[-1]
    for row in ledger:
        head, percents, rest = row.split("|")
        values = [int(v) for v in rest.split(",")] if rest else []
        values += [0] * (7 - len(values))  # signatures absent: written before them
        state.ledger[(_TARGET[head[0]], int(head[1:]))] = LedgerEntry(
            warned=_mask([int(p) for p in percents.split(",")]) if percents else 0,
            breach_revision=values[0],
            breach_stands=bool(values[1]),
            escalation_level=values[2],
            times_met=values[3],
            escalation_revision=values[4],
            level_revisions=values[5],
            breach_signature=values[6],
            level_signatures=values[7:],
        )
    state.policy_id = derived.get("pid")
    state.first_response_done = bool(derived.get("frd"))
    if "nrs" in derived:
        state.next_response_started_at = base + derived["nrs"]
    if "pus" in derived:
        state.periodic_update_started_at = base + derived["pus"]
    state.first_response_ms = derived.get("frs")
    state.resolution_ms = derived.get("rs")
    state.next_response_cycle = derived.get("nrc", 0)
    state.periodic_update_cycle = derived.get("puc", 0)
    state.ola_groups = list(derived.get("og", ()))
    state.last_met = {
        _TARGET[letter]: (cycle, base + at, bool(breached))
        for letter, (cycle, at, breached) in derived.get("oc", {}).items()
    }
    rows = derived.get("tr", ())
    ps = state.policy_set
    if ps is None:
        # Computed under a policy file that is not loaded here: the clocks cannot be
        # rebuilt from it, so leave them out; the first engine call with a policy set
        # sees the fingerprint differ and recomputes the ticket from its log.
        state.policy_set = policies
        rows = ()
    if rows and ps is not None:
        for (
            letter,
            cycle,
            start,
            pid,
            checkpoint,
            counted,
            running,
            nxt,
            met,
            times,
            breached,
        ) in rows:
            target = _TARGET[letter]
            if target in _GROUP_TARGETS:  # an OLA cycle: its group says which OLA
                group = state.ola_groups[cycle - 1]
                spec = ps.ola_spec(group, target)
                if spec is None:
                    raise KeyError(f"group {group!r} has no OLA target {target.value!r}")
            else:
                policy = ps.get(pid or state.policy_id or "")
                spec = policy.targets.get(target) if policy is not None else None
                if spec is None:
                    raise KeyError(f"policy {pid!r} has no target {target.value!r}")
            clock = Clock(target, cycle, base + start, spec)
            clock.checkpoint = base + checkpoint
            clock.counted_ms = counted
            clock.running = bool(running)
            clock.next_threshold = nxt
            clock.met = bool(met)
            clock.times_met = times
            clock.breached_at = None if breached is None else base + breached
            state.clocks[target] = clock
    if (
        state.policy_id is not None
        and state.policy_set is not None
        and state.policy_set.fingerprint == fingerprint
    ):
        state.policy = state.policy_set.get(state.policy_id)
    return state
