"""The stored form of an SLA state: compact, versioned, binary (format 2); format 1 reads.

This module is the only place that knows the stored layouts. ``serialise`` writes format 2;
``deserialise`` reads it and format 1 (compact JSON, what engines before format 2 stored:
tests/engine/test_format1.py loads blobs stored by such an engine), so no migration is
needed: a format-1 state is rewritten in format 2 the next time its ticket changes.

Why format 2: a state is loaded and stored around every event whose batch holds no other
event of its ticket (the common case), and format 1 made that round trip 7 times the cost of
applying the event (bench/engine.py): JSON both ways, and loading replayed the whole log
through ``ticket_log.fold_event`` to recover the ticket's own fields. Format 2 stores those
fields, so loading replays nothing, and keeps the log packed until something needs it
(state.py: a replay, a late event, the timeline); an event applied in order appends its
entry to the packed text. The rest is two arrays of integers and one list of strings.

Layout (little-endian)::

    0x02 | crc32 of the rest (4) | small width (1: 2, 4 or 8) | n small (4)
         | large width (1: 4 or 8) | n large (4) | base ms (8, signed)
         | n small unsigned integers | n large signed integers | UTF-8 strings joined by NUL

The small integers (a mask of the optional strings that are None, the counts of the
variable parts, flags, cycles, revisions, warning percents) are 16-bit unless one does not
fit; the large ones (instants as offsets from ``base``, the first log entry; durations;
signatures) 32-bit unless one does not fit (a ticket open for 25 days counts ms offsets
past it): then that whole array is 64-bit. The ticket's and the SLA's optional scalars
are stored only when present (a mask says which); a clock's breach instant, when it has
none, is the width's smallest integer. ``_numbers`` lists both in their order: the scalar
fields, then the status history, tag history, clocks, ledger rows and last outcomes. The strings are the ticket id, the policy fingerprint, priority,
status, the optional strings, tags, the statuses of the status history, the tags of the tag
history, the OLA groups, each clock's policy ("" for the ticket's own or an OLA), the event
id hashes (8 characters each, log order) and last the packed log (state.pack_entry). No
string may hold NUL (bounds.py refuses it in every event; ``serialise`` checks). The
checksum makes a damaged blob a StateError at load, before anything reads its packed log.
A blob longer than ``COMPRESS_ABOVE`` is zstd-compressed as a whole (a zstd frame: first
byte 0x28); engines before it compressed with zlib (first byte 0x78), which still reads.

Format 1 (read only)::

    [1, ticket_id, policy_fingerprint, base_ms, horizon, projected_until,
     log, ledger, derived]

Instants are ms offsets from ``base_ms``. A log entry is one string, kind letter
(``EventKind``) + 8-character id hash + hexadecimal offset (+ ``:status`` for a status
change), or ``[that, {fields}]`` when the event carries other fields (ticket_log's keys). A
ledger row is ``"<target letter><cycle>|<warning percents>|<breach revision>,<breach
stands>,<escalation level>,<times met>,<escalation revision>,<level revisions, packed>,
<breach signature>,<each level's signature, level 1 first>"`` (trailing zeros left out; a
row written before signatures existed reads with signature 0, "not known"). ``derived``
holds the SLA fields (``pid`` policy id, ``frd`` first response done, ``frs``/``rs``
first-response/resolution business ms, ``nrc``/``nrs`` next-response cycle and its start,
``puc``/``pus`` periodic update, ``og`` the group of each OLA cycle, ``tr`` the clocks,
``oc`` the last met outcomes). An OLA clock (target letters ``o`` group_ownership, ``g``
group_response) stores its policy as 0: its cycle's group in ``og`` names its OLA. The
ticket's own fields are not stored: loading folds them from the log
(``ticket_log.fold_event``).
"""

from __future__ import annotations

import json
import struct
import threading
import zlib
from typing import Any, Final

import zstandard

from slawatch.shared.engine.policy import PolicySet, TargetSpec, registered
from slawatch.shared.engine.state import (
    STATUS,
    Clock,
    EventKind,
    LedgerEntry,
    LogEntry,
    State,
    StateError,
)
from slawatch.shared.engine.ticket_log import fold_event
from slawatch.shared.sla_events import GROUP_TARGETS, Target

__all__ = [
    "COMPRESS_ABOVE",
    "FORMAT_VERSION",
    "StateError",
    "copy_state",
    "deserialise",
    "serialise",
]

FORMAT_VERSION = 2  # what serialise writes; deserialise reads 1 too
# A serialised state longer than this is stored compressed (a long conversation: about
# 1 in 11 states along bench/engine.py's realistic tickets, half of them once their clocks
# breached and escalated); shorter ones stay plain, cheaper to write and to read.
COMPRESS_ABOVE = 1024
# zstd level 1 with a context reused per thread (a context is not thread-safe, and making
# one per call costs what zlib's setup does): bench, 1.2 KB states: compress 7.4 us and
# decompress 3.6 us, zlib level 1 27.3 us and 7.9 us, the same size within 5 %.
_ZSTD_LEVEL: Final = 1
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_ZLIB: Final = b"\x78"  # what engines before zstd compressed with (read only)
# A compressed blob says how long it is once decompressed; no state comes near this, so
# a damaged or forged length is refused before anything is allocated for it.
_MAX_STATE_BYTES: Final = 64 << 20
_contexts = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    found: zstandard.ZstdCompressor | None = getattr(_contexts, "compressor", None)
    if found is None:
        found = _contexts.compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    return found


def _decompress(blob: bytes) -> bytes:
    size = zstandard.frame_content_size(blob)
    if size < 0 or size > _MAX_STATE_BYTES:
        raise ValueError(f"a compressed state of {size} bytes")
    found: zstandard.ZstdDecompressor | None = getattr(_contexts, "decompressor", None)
    if found is None:
        found = _contexts.decompressor = zstandard.ZstdDecompressor()
    return found.decompress(blob)

_FORMAT_2: Final = b"\x02"
# (small integers' width, how many), (large integers' width, how many), base ms
_HEAD: Final = struct.Struct("<BIBIq")
_SMALL: Final = {2: "H", 4: "I", 8: "Q"}  # width -> struct code
_LARGE: Final = {4: "i", 8: "q"}
_SCALARS: Final = 12  # the optional scalars (``_numbers``: the ``present`` mask)
_WIDTH: Final = {"H": 2, "I": 4, "Q": 8, "i": 4, "q": 8}
_STRUCTS: dict[str, struct.Struct] = {}
NUL: Final = "\x00"
_NONE_32: Final = -(1 << 31)
_NONE_64: Final = -(1 << 63)
# A target is stored as its index here (format 2; append only).
_TARGETS: Final = (
    Target.first_response,
    Target.next_response,
    Target.periodic_update,
    Target.resolution,
    Target.group_ownership,
    Target.group_response,
)
assert set(_TARGETS) == set(Target), "every target needs its stored index"
_TARGET_INDEX: Final = {target: i for i, target in enumerate(_TARGETS)}

# Format 1 stored a target as one letter: the ticket targets their initial (as it was
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


def serialise(state: State) -> bytes:
    """The state's stored form, format 2 (zstd-compressed above ``COMPRESS_ABOVE`` bytes)."""
    packed, hashes, base = state.packed()
    strings = _strings(state, hashes, packed)
    text = NUL.join(strings)
    if text.count(NUL) != len(strings) - 1:
        raise ValueError(f"ticket {state.ticket_id!r}: a string in its SLA state holds NUL")
    try:
        small, large = _numbers(state, base, _NONE_32)
        small_width, numbers = _pack(small, "HIQ")
        try:
            large_width, offsets = _pack(large, "i")
        except struct.error:  # an instant or a duration past 31 bits: the wide layout
            large_width, offsets = _pack(_numbers(state, base, _NONE_64)[1], "q")
    except (struct.error, OverflowError):
        raise ValueError(f"ticket {state.ticket_id!r}: a value past 64 bits") from None
    body = b"".join(
        [
            _HEAD.pack(small_width, len(small), large_width, len(large), base),
            numbers,
            offsets,
            text.encode(),
        ]
    )
    blob = _FORMAT_2 + zlib.crc32(body).to_bytes(4, "little") + body
    if len(blob) > COMPRESS_ABOVE:
        return _compressor().compress(blob)  # first byte 0x28, never a format's own
    return blob


def _strings(state: State, hashes: str, packed: str) -> list[str]:
    """The state's strings in their stored order (``_numbers`` says which are None)."""
    out = [state.ticket_id, state.fingerprint, state.priority, state.status]
    for value in (
        state.policy_id, state.channel, state.customer_tier, state.customer_id, state.group,
        state.assignee, state.url, state.subject,
    ):  # fmt: skip
        out.append("" if value is None else value)
    out.extend(state.tags)
    for _at, status in state.status_history:
        out.append(status)
    for _at, tags in state.tag_history:
        out.extend(tags)
    out.extend(state.ola_groups)
    for clock in state.clocks.values():
        spec = clock.spec
        out.append("" if spec.group is not None or spec.policy == state.policy_id else spec.policy)
    out.append(hashes)
    out.append(packed)  # last: it is the longest, and NUL-free like the rest
    return out


def _numbers(state: State, base: int, none: int) -> tuple[list[int], list[int]]:
    """The state's integers in their stored order, in two lists: ``small`` (counts, cycles,
    flags, revisions: never negative, mostly 16-bit) and ``large`` (instants as offsets from
    ``base``, durations, signatures; None as ``none``, the layout's smallest integer)."""
    mask = 0
    bit = 1
    for value in (
        state.policy_id, state.channel, state.customer_tier, state.customer_id, state.group,
        state.assignee, state.url, state.subject,
    ):  # fmt: skip
        if value is None:
            mask |= bit
        bit <<= 1
    small = [
        mask,
        len(state.tags),
        len(state.status_history),
        len(state.tag_history),
        len(state.ola_groups),
        len(state.clocks),
        len(state.ledger),
        len(state.last_met),
        state.public_agent_replies,
        int(state.first_response_done),
        state.next_response_cycle,
        state.periodic_update_cycle,
    ]
    # The scalars that may be absent are stored only when present (``present``, a mask).
    large: list[int] = []
    present = _put(large, state.horizon or None, base, 1)
    present |= _put(large, state.projected_until or None, base, 2)
    present |= _put(large, state.created_at, base, 4)
    present |= _put(large, state.first_reply_at, base, 8)
    present |= _put(large, state.solved_at, base, 16)
    present |= _put(large, state.handle_ms or None, 0, 32)
    present |= _put(large, state.csat, 0, 64)
    present |= _put(large, state.nps, 0, 128)
    present |= _put(large, state.first_response_ms, 0, 256)
    present |= _put(large, state.resolution_ms, 0, 512)
    present |= _put(large, state.next_response_started_at, base, 1024)
    present |= _put(large, state.periodic_update_started_at, base, 2048)
    small.append(present)
    for at, _status in state.status_history:
        large.append(at - base)
    for at, tags in state.tag_history:
        large.append(at - base)
        small.append(len(tags))
    for clock in state.clocks.values():
        small.append(_TARGET_INDEX[clock.target])
        small.append(clock.cycle)
        small.append(int(clock.running))
        small.append(clock.next_threshold)
        small.append(int(clock.met))
        small.append(clock.times_met)
        large.append(clock.cycle_start - base)
        large.append(clock.checkpoint - base)
        large.append(clock.counted_ms)
        large.append(_at(clock.breached_at, base, none))
    for (target, cycle), sent in state.ledger.items():
        percents = _percents(sent.warned)
        small.append(_TARGET_INDEX[target])
        small.append(cycle)
        small.append(len(percents))
        small.extend(percents)
        small.append(sent.breach_revision)
        small.append(int(sent.breach_stands))
        small.append(sent.escalation_level)
        small.append(sent.times_met)
        small.append(sent.escalation_revision)
        small.append(len(sent.level_signatures))
        large.append(sent.level_revisions)
        large.append(sent.breach_signature)
        large.extend(sent.level_signatures)
    for target, (cycle, at, breached) in state.last_met.items():
        small.append(_TARGET_INDEX[target])
        small.append(cycle)
        small.append(int(breached))
        large.append(at - base)
    return small, large


def _pack(values: list[int], codes: str) -> tuple[int, bytes]:
    """(width, bytes) of ``values`` in the first of the struct ``codes`` that holds them
    all (struct.error when none does)."""
    last = len(codes) - 1
    for i, code in enumerate(codes):
        try:
            return _WIDTH[code], _packer(code, len(values)).pack(*values)
        except struct.error:
            if i == last:
                raise
    raise struct.error("no struct code given")


def _packer(code: str, count: int) -> struct.Struct:
    """The little-endian struct for ``count`` integers of ``code`` (compiled once)."""
    key = f"<{count}{code}"
    found = _STRUCTS.get(key)
    if found is None:
        if len(_STRUCTS) >= 4096:  # bounded whatever the blobs look like
            _STRUCTS.clear()
        found = _STRUCTS[key] = struct.Struct(key)
    return found


def _put(out: list[int], value: int | None, base: int, bit: int) -> int:
    """Append ``value``'s offset from ``base`` when there is one; returns ``bit`` if so."""
    if value is None:
        return 0
    out.append(value - base)
    return bit


def _at(value: int | None, base: int, none: int) -> int:
    """An optional value as stored: its offset from ``base``, or ``none`` for None."""
    if value is None:
        return none
    offset = value - base
    if offset == none:
        raise struct.error("an offset equal to the None marker")  # the wide layout takes it
    return offset


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
    """Read a state back (format 2, or format 1 as older engines stored it). ``policies``
    may be left out when the set it was computed with is loaded in this process (found by
    fingerprint); a changed policy file is handled by the next engine call, which
    recomputes the ticket under the set it is given."""
    try:
        if isinstance(blob, bytes):
            if blob[:4] == _ZSTD_MAGIC:
                blob = _decompress(blob)
            elif blob[:1] == _ZLIB:
                blob = zlib.decompress(blob)
            if blob[:1] == _FORMAT_2:
                return _read_format_2(blob, policies)
        doc = json.loads(blob)
        version = doc[0]
    except StateError:
        raise
    except (
        ValueError, TypeError, IndexError, KeyError, zlib.error, zstandard.ZstdError, RecursionError
    ) as exc:  # fmt: skip
        raise StateError(f"not a serialised SLA state: {exc}") from None
    if version != 1:
        raise StateError(
            f"SLA state format {version!r} is not supported (this engine reads 1 and {FORMAT_VERSION})"
        )
    try:
        return _read_format_1(doc, policies)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, AssertionError) as exc:
        raise StateError(f"damaged SLA state: {exc!r}") from None


def copy_state(state: State, policies: PolicySet | None = None) -> State:
    """An independent copy (apply and advance mutate the state they are given)."""
    return deserialise(serialise(state), policies or state.policy_set)


def _read_format_2(blob: bytes, policies: PolicySet | None) -> State:
    if len(blob) < 10 or int.from_bytes(blob[1:5], "little") != zlib.crc32(blob[5:]):
        raise StateError("damaged SLA state: its checksum does not match")
    try:
        return _read_format_2_body(blob, policies)
    except StateError:
        raise
    except (
        ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError, struct.error
    ) as exc:  # fmt: skip
        raise StateError(f"damaged SLA state: {exc!r}") from None


def _read_format_2_body(blob: bytes, policies: PolicySet | None) -> State:
    small_width, n_small, large_width, n_large, base = _HEAD.unpack_from(blob, 5)
    start = 5 + _HEAD.size
    middle = start + n_small * small_width
    end = middle + n_large * large_width
    if end > len(blob):
        raise ValueError("cut short")
    ints: tuple[int, ...] = _packer(_SMALL[small_width], n_small).unpack_from(blob, start)
    at: tuple[int, ...] = _packer(_LARGE[large_width], n_large).unpack_from(blob, middle)
    none = _NONE_32 if large_width == 4 else _NONE_64
    strings = blob[end:].decode().split(NUL)
    state = State(strings[0])
    state.fingerprint = fingerprint = strings[1]
    state.priority = strings[2]
    state.status = strings[3]
    mask = ints[0]
    if mask >> 8:
        raise ValueError("unknown flags")
    state.policy_id = None if mask & 1 else strings[4]
    state.channel = None if mask & 2 else strings[5]
    state.customer_tier = None if mask & 4 else strings[6]
    state.customer_id = None if mask & 8 else strings[7]
    state.group = None if mask & 16 else strings[8]
    state.assignee = None if mask & 32 else strings[9]
    state.url = None if mask & 64 else strings[10]
    state.subject = None if mask & 128 else strings[11]
    n_tags = ints[1]
    n_status = ints[2]
    n_tag_history = ints[3]
    n_ola = ints[4]
    n_clocks = ints[5]
    n_ledger = ints[6]
    n_met = ints[7]
    state.public_agent_replies = ints[8]
    state.first_response_done = bool(ints[9])
    state.next_response_cycle = ints[10]
    state.periodic_update_cycle = ints[11]
    present = ints[12]
    if present >> _SCALARS:
        raise ValueError("unknown fields")
    scalars: list[int | None] = []
    j = 0  # the next large integer
    for k in range(_SCALARS):
        if present >> k & 1:
            scalars.append(at[j])
            j += 1
        else:
            scalars.append(None)
    horizon = scalars[0]
    state.horizon = 0 if horizon is None else base + horizon
    projected = scalars[1]
    state.projected_until = 0 if projected is None else base + projected
    state.created_at = _from(scalars[2], base)
    state.first_reply_at = _from(scalars[3], base)
    state.solved_at = _from(scalars[4], base)
    handle = scalars[5]
    state.handle_ms = 0 if handle is None else handle
    state.csat = scalars[6]
    state.nps = scalars[7]
    state.first_response_ms = scalars[8]
    state.resolution_ms = scalars[9]
    state.next_response_started_at = _from(scalars[10], base)
    state.periodic_update_started_at = _from(scalars[11], base)
    i = 13  # the next small integer
    s = 12  # the next string
    state.tags = tuple(strings[s : s + n_tags])
    s += n_tags
    history: list[tuple[int, str]] = []
    for _ in range(n_status):
        history.append((base + at[j], strings[s]))
        j += 1
        s += 1
    state.status_history = history
    tag_history: list[tuple[int, tuple[str, ...]]] = []
    for _ in range(n_tag_history):
        n = ints[i]
        tag_history.append((base + at[j], tuple(strings[s : s + n])))
        i += 1
        j += 1
        s += n
    state.tag_history = tag_history
    state.ola_groups = strings[s : s + n_ola]
    s += n_ola
    if policies is not None and policies.fingerprint == fingerprint:
        ps: PolicySet | None = policies
    else:
        ps = registered(fingerprint)
    state.policy_set = ps if ps is not None else policies
    if state.policy_id is not None and ps is not None:
        state.policy = ps.get(state.policy_id)
    clocks = state.clocks
    for _ in range(n_clocks):
        target = _TARGETS[ints[i]]
        cycle = ints[i + 1]
        pid = strings[s]
        s += 1
        if ps is not None:
            # Computed under a policy file that is not loaded here (ps None): the clocks
            # cannot be rebuilt from it, so they are left out; the first engine call with a
            # policy set sees the fingerprint differ and recomputes the ticket from its log.
            clock = Clock(target, cycle, base + at[j], _spec(state, ps, target, cycle, pid))
            clock.checkpoint = base + at[j + 1]
            clock.counted_ms = at[j + 2]
            clock.breached_at = _instant(at[j + 3], base, none)
            clock.running = bool(ints[i + 2])
            clock.next_threshold = ints[i + 3]
            clock.met = bool(ints[i + 4])
            clock.times_met = ints[i + 5]
            clocks[target] = clock
        i += 6
        j += 4
    ledger = state.ledger
    for _ in range(n_ledger):
        key = (_TARGETS[ints[i]], ints[i + 1])
        n = ints[i + 2]
        warned = 0
        for p in ints[i + 3 : i + 3 + n]:
            if p > 100:
                raise ValueError(f"a warning at {p} %")
            warned |= 1 << p
        i += 3 + n
        levels = ints[i + 5]
        ledger[key] = LedgerEntry(
            warned=warned,
            breach_revision=ints[i],
            breach_stands=bool(ints[i + 1]),
            escalation_level=ints[i + 2],
            times_met=ints[i + 3],
            escalation_revision=ints[i + 4],
            level_revisions=at[j],
            breach_signature=at[j + 1],
            level_signatures=list(at[j + 2 : j + 2 + levels]),
        )
        i += 6
        j += 2 + levels
    last_met = state.last_met
    for _ in range(n_met):
        last_met[_TARGETS[ints[i]]] = (ints[i + 1], base + at[j], bool(ints[i + 2]))
        i += 3
        j += 1
    if i != len(ints) or j != len(at) or s != len(strings) - 2:
        raise ValueError("its parts do not add up")
    state.load_packed(strings[s + 1], strings[s], base)
    return state


def _from(offset: int | None, base: int) -> int | None:
    return None if offset is None else base + offset


def _instant(stored: int, base: int, none: int) -> int | None:
    return None if stored == none else base + stored


def _spec(state: State, ps: PolicySet, target: Target, cycle: int, pid: str) -> TargetSpec:
    """The spec a stored clock counts under: its OLA's (by its cycle's group), else its
    policy's (``pid``, or the ticket's own when empty)."""
    if target in _GROUP_TARGETS:
        group = state.ola_groups[cycle - 1]
        spec = ps.ola_spec(group, target)
        if spec is None:
            raise KeyError(f"group {group!r} has no OLA target {target.value!r}")
        return spec
    policy = state.policy if not pid else ps.get(pid)  # the ticket's own: looked up once
    spec = policy.targets.get(target) if policy is not None else None
    if spec is None:
        raise KeyError(f"policy {pid!r} has no target {target.value!r}")
    return spec


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
    hashes: list[str] = []
    for item in entries:
        if isinstance(item, str):
            tagged, _, status = item.partition(":")
            fields = {STATUS: status} if status else None
        else:
            tagged, fields = item
        hashed = tagged[1:9]
        entry = LogEntry(base + int(tagged[9:], 16), hashed, _KIND[tagged[0]], fields)
        log.append(entry)
        hashes.append(hashed)
        fold_event(state, entry)
    state.hashes = "".join(hashes)
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
