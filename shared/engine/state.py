"""The per-ticket SLA state: the ticket as its events tell it, its clocks, and its ledger.

What is kept, and why:

- ``log``: every ticket event applied, reduced to a :class:`LogEntry` (time, event-id hash,
  :class:`EventKind`, the few fields that matter). It makes duplicates recognisable (same
  hash) and lets the engine recompute the ticket from scratch in event-time order when an
  event arrives late or the policy file changes. Event ids are kept as a 48-bit hash so the
  size stays bounded whatever the producers' ids look like (ticket_log.event_hash), in
  ``hashes``. A loaded state keeps its log packed (``packed_log``, as stored) until
  something reads ``log``: an event applied in order only appends to it.
- the ticket (created, channel, attributes, status and its history, first reply, replies,
  solve time, survey): folded from the log by ``ticket_log.fold_event``, the one fold both
  the machine and loading a format-1 state run; stored in format 2, so loading one does
  not replay the log.
- the SLA derived from it: the selected policy, one :class:`Clock` per running target
  cycle, the last outcome of each target, and the bookkeeping of the cycles of the
  next-response and periodic-update targets. Stored (shared/engine/codec.py), so loading a
  state does not need a replay; it is always what a replay of ``log`` would produce.
- ``ledger``: one :class:`LedgerEntry` per (target, cycle): what has been emitted for it.
  Recomputation is diffed against it, so re-running history emits only what is new,
  retracts what no longer holds and re-sends what now says otherwise, and ids stay
  deterministic.

Instants are integer milliseconds since the epoch (UTC); durations are business
milliseconds of the policy's calendar.
"""

from __future__ import annotations

from bisect import insort
from enum import StrEnum
from typing import Any, Final

from pydantic_core import from_json, to_json

from slawatch.shared.engine.policy import PolicySet, TargetSpec, registered
from slawatch.shared.engine.record import Attributes
from slawatch.shared.sla_events import Target


class EventKind(StrEnum):
    """What a ticket event is to the SLA clocks. The value is the letter the log stores."""

    created = "C"
    updated = "U"
    assigned = "A"
    status_changed = "S"
    agent_reply = "a"  # a public message by an agent
    customer_message = "c"  # a public message by the customer
    other_message = "n"  # an internal note, or a public message by anyone else
    survey = "v"
    work_logged = "w"  # agent effort without a message (work.logged)


# The log's key of a status change's new status (ticket_log names the other keys).
STATUS: Final = "st"

# The kinds as constants: reading a member off its enum class costs a lookup per event.
CREATED: Final = EventKind.created
UPDATED: Final = EventKind.updated
ASSIGNED: Final = EventKind.assigned
STATUS_CHANGED: Final = EventKind.status_changed
AGENT_REPLY: Final = EventKind.agent_reply
CUSTOMER_MESSAGE: Final = EventKind.customer_message
OTHER_MESSAGE: Final = EventKind.other_message
SURVEY: Final = EventKind.survey
WORK_LOGGED: Final = EventKind.work_logged


class LogEntry:
    """One ticket event as the log keeps it: when it occurred (ms), its event-id hash, its
    kind and the fields that matter, under ticket_log's short keys (the log is stored as it
    is). Entries sort in event-time order, ticket.created first at equal instants, the hash
    breaking ties (two never tie: a tie is a duplicate)."""

    __slots__ = ("at", "rank", "hashed", "kind", "fields")

    def __init__(
        self, at: int, hashed: str, kind: EventKind, fields: dict[str, Any] | None
    ) -> None:
        self.at = at
        self.rank = 0 if kind is CREATED else 1
        self.hashed = hashed
        self.kind = kind
        self.fields = fields

    def __lt__(self, other: LogEntry) -> bool:
        if self.at != other.at:
            return self.at < other.at
        if self.rank != other.rank:
            return self.rank < other.rank
        return self.hashed < other.hashed

    def __repr__(self) -> str:
        return f"LogEntry({self.at}, {self.hashed!r}, {self.kind.name}, {self.fields!r})"


class Clock:
    """One running (or resumable) clock: one target, one cycle, under one policy's spec.

    It counts business ms of the spec's calendar while it runs: ``counted_ms`` up to
    ``checkpoint`` (the last start, pause or recount), plus the calendar's business time
    since then while ``running``. ``next_threshold`` is the index in ``spec.thresholds``
    (warnings, breach, escalations) of the first one not yet crossed in event time.
    ``next_due``, ``projected_index`` and ``projected_due`` are caches, never stored: the
    instant the next threshold falls due, and the next threshold not yet projected up to the
    horizon (index, instant).
    """

    __slots__ = (
        "target",
        "cycle",
        "cycle_start",
        "spec",
        "checkpoint",
        "counted_ms",
        "running",
        "next_threshold",
        "met",
        "times_met",
        "breached_at",
        "next_due",
        "projected_index",
        "projected_due",
    )

    def __init__(self, target: Target, cycle: int, cycle_start: int, spec: TargetSpec) -> None:
        self.target = target
        self.cycle = cycle
        self.cycle_start = cycle_start  # where this cycle began (a recount starts there)
        self.spec = spec
        self.checkpoint = cycle_start
        self.counted_ms = 0
        self.running = True
        self.next_threshold = 0
        self.met = False
        self.times_met = 0  # resolution can be met, reopened, met again
        self.breached_at: int | None = None  # the breach instant, once crossed
        self.next_due: int | None = None
        self.projected_index = 0  # meaningful only while projected_due is set
        self.projected_due: int | None = None

    @property
    def breached(self) -> bool:
        return self.next_threshold > self.spec.breach_index


# Escalation revisions are packed into one int, LEVEL_BITS per level (level 1 lowest).
LEVEL_BITS = 16
LEVEL_MASK = (1 << LEVEL_BITS) - 1


class LedgerEntry:
    """What has been emitted for one (target, cycle), so nothing is emitted twice.

    A retraction withdraws an event by the id it was sent with, so the entry remembers each
    standing event's revision (a breach and its escalations are re-sent under the next
    revision after a retraction; levels below the one withdrawn keep their older one). A
    signature (machine.signature) fingerprints what a standing breach or escalation said -
    its instant, deadline and policy - so a recomputation that says otherwise retracts it
    and sends the true one; 0 means "not known" (a state stored before signatures existed).
    """

    __slots__ = (
        "warned",
        "breach_revision",
        "breach_stands",
        "escalation_level",
        "times_met",
        "escalation_revision",
        "level_revisions",
        "breach_signature",
        "level_signatures",
    )

    def __init__(
        self,
        *,
        warned: int = 0,
        breach_revision: int = 0,
        breach_stands: bool = False,
        escalation_level: int = 0,
        times_met: int = 0,
        escalation_revision: int = 0,
        level_revisions: int = 0,
        breach_signature: int = 0,
        level_signatures: list[int] | None = None,
    ) -> None:
        self.warned = warned  # bit mask of the warning percents sent
        self.breach_revision = breach_revision  # the revision the next breach goes out under
        self.breach_stands = breach_stands
        self.escalation_level = escalation_level  # the highest level standing
        self.times_met = times_met  # met notices sent (resolution: once per reopen)
        self.escalation_revision = escalation_revision  # the next escalation's revision
        self.level_revisions = level_revisions  # each level's, packed: see revision_of
        self.breach_signature = breach_signature
        # One per escalation level, level 1 first; 0 where not known.
        self.level_signatures: list[int] = [] if level_signatures is None else level_signatures

    def revision_of(self, level: int) -> int:
        """The revision escalation ``level`` was last sent under."""
        return (self.level_revisions >> (LEVEL_BITS * (level - 1))) & LEVEL_MASK

    def sent_level(self, level: int, revision: int) -> None:
        """Remember that escalation ``level`` went out under ``revision``."""
        shift = LEVEL_BITS * (level - 1)
        self.level_revisions = (self.level_revisions & ~(LEVEL_MASK << shift)) | (revision << shift)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LedgerEntry):
            return NotImplemented
        return (
            self.warned == other.warned
            and self.breach_revision == other.breach_revision
            and self.breach_stands == other.breach_stands
            and self.escalation_level == other.escalation_level
            and self.times_met == other.times_met
            and self.escalation_revision == other.escalation_revision
            and self.level_revisions == other.level_revisions
            and self.breach_signature == other.breach_signature
            and self.level_signatures == other.level_signatures
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"LedgerEntry(warned={self.warned:#x}, breach_revision={self.breach_revision}, "
            f"breach_stands={self.breach_stands}, escalation_level={self.escalation_level}, "
            f"times_met={self.times_met}, escalation_revision={self.escalation_revision}, "
            f"level_revisions={self.level_revisions:#x}, breach_signature={self.breach_signature}, "
            f"level_signatures={self.level_signatures})"
        )


# The outcome a target's last met cycle kept after its clock was dropped: (cycle, met at,
# breached). A resolution clock stays (it can reopen); the others go once met.
MetOutcome = tuple[int, int, bool]


class State:
    """Everything the engine knows about one ticket. Mutated in place by the engine."""

    __slots__ = (
        "ticket_id", "fingerprint", "policy_set", "_log", "packed_log", "log_base", "hashes",
        "last_entry", "horizon",
        "projected_until", "ledger", "confirmed", "journal", "called_at",
        # the ticket, folded from the log in event-time order (ticket_log.fold_event)
        "created_at", "channel", "priority", "customer_tier", "customer_id", "group", "assignee",
        "tags", "url",
        "subject", "status", "status_history", "tag_history", "first_reply_at",
        "public_agent_replies", "solved_at", "csat", "nps", "attribute_values", "handle_ms",
        # its SLA, derived by the machine
        "policy_id", "policy", "first_response_done", "first_response_ms", "resolution_ms",
        "next_response_cycle", "next_response_started_at", "periodic_update_cycle",
        "periodic_update_started_at", "ola_groups", "clocks", "last_met",
    )  # fmt: skip

    def __init__(self, ticket_id: str, policies: PolicySet | None = None) -> None:
        self.ticket_id = ticket_id
        self.policy_set = policies
        self.fingerprint = policies.fingerprint if policies is not None else ""
        # The log, sorted; None while it is still in its stored form (``packed_log``).
        self._log: list[LogEntry] | None = []
        self.packed_log = ""  # the stored entries (see pack_entry), read only while _log is None
        self.log_base = 0  # the instant packed_log's offsets count from
        self.hashes = ""  # each applied event's id hash, 8 characters (log order while packed)
        self.last_entry: LogEntry | None = None  # the latest in event time
        self.horizon = 0  # the latest instant the state has been brought to
        self.projected_until = 0  # latest threshold instant projected past the last event
        self.ledger: dict[tuple[Target, int], LedgerEntry] = {}
        # During a replay: the escalation level (0: the breach) each (target, cycle) reaches.
        self.confirmed: dict[tuple[Target, int], int] | None = None
        self.journal: list[dict[str, Any]] | None = None  # the timeline being built, if any
        self.called_at = 0  # the instant of the engine call in hand: what a retraction is dated
        self.reset()

    def reset(self) -> None:
        """Forget everything derived from the log (before a replay)."""
        self.created_at: int | None = None
        self.channel: str | None = None
        self.priority = "normal"
        self.customer_tier: str | None = None
        # set by ticket.created: contracts match on it, reports group by it
        self.customer_id: str | None = None
        self.group: str | None = None
        self.assignee: str | None = None
        self.tags: tuple[str, ...] = ()
        self.url: str | None = None
        self.subject: str | None = None
        self.status = "new"
        self.status_history: list[tuple[int, str]] = []
        # (instant, tags) at each change of the tags (tag pauses are recounted from it)
        self.tag_history: list[tuple[int, tuple[str, ...]]] = []
        self.first_reply_at: int | None = None  # the first public agent reply
        self.public_agent_replies = 0
        self.solved_at: int | None = None  # the last solve
        self.csat: int | None = None
        self.nps: int | None = None
        self.attribute_values: Attributes | None = None  # see attributes()
        self.handle_ms = 0  # agent effort reported (handle_seconds, work.logged), summed
        self.policy_id: str | None = None
        self.policy: Any = None  # the Policy of policy_id (a cache); set once the ticket is created
        self.first_response_done = False  # answered, or solved before an answer
        self.first_response_ms: int | None = None  # business ms to the first reply
        self.resolution_ms: int | None = None  # business ms to the last solve
        self.next_response_cycle = 0  # customer messages that started a next-response cycle
        self.next_response_started_at: int | None = None  # None while no reply is awaited
        self.periodic_update_cycle = 0
        self.periodic_update_started_at: int | None = None  # the last agent reply or reopen
        # The group of each OLA cycle, cycle n at index n - 1: a cycle starts at every
        # assignment to a group with an OLA (and at a reopen while the group holds it).
        self.ola_groups: list[str] = []
        self.clocks: dict[Target, Clock] = {}
        self.last_met: dict[Target, MetOutcome] = {}

    def attributes(self) -> Attributes:
        """The ticket's attributes as every SLA event carries them; one tuple shared by the
        events emitted until an attribute changes (``fold_attributes`` drops it)."""
        values = self.attribute_values
        if values is None:
            values = self.attribute_values = (
                self.priority, self.customer_tier, self.channel, self.group, self.assignee,
                self.tags, self.url, self.subject,
            )  # fmt: skip
        return values

    @property
    def why(self) -> dict[str, Any] | None:
        """Which of the ticket's attribute values made its policy match ({} for a catch-all).

        Computed when read (the read API, reports, the timeline), not on every attribute
        change: the clock never needs it, and every attribute it shows re-selects the policy."""
        policy = self.policy
        if policy is None:
            return None
        return policy.why(
            self.priority, self.customer_tier, self.channel, self.group, self.tags,
            customer=self.customer_id,
        )  # fmt: skip

    @property
    def log(self) -> list[LogEntry]:
        """The log, unpacked from its stored form the first time it is needed (a replay, a
        late event, the timeline): an event applied in order only appends to it."""
        log = self._log
        if log is None:
            log = self._log = unpack_log(self.packed_log, self.hashes, self.log_base)
            self.packed_log = ""
            newest = self.last_entry
            if log and newest is not None:
                # The newest entry was read at load without its fields (nothing before this
                # reads them): it takes them, and stays the one object that is the newest.
                newest.fields = log[-1].fields
                log[-1] = newest
        return log

    def packed(self) -> tuple[str, str, int]:
        """(entries, id hashes, base) of the log in its stored form (see pack_entry)."""
        log = self._log
        if log is None:
            return self.packed_log, self.hashes, self.log_base
        base = log[0].at if log else 0
        return pack_log(log, base), "".join([entry.hashed for entry in log]), base

    def load_packed(self, packed: str, hashes: str, base: int) -> None:
        """Take a stored log as it is: only its newest entry's instant, kind and hash are
        read (``last_entry``: what the next event is ordered against), the rest when
        something needs the log (StateError when it does not look whole)."""
        if not hashes:
            if packed:
                raise StateError("damaged SLA state: a log without event hashes")
            self._log = []
            self.hashes = ""
            self.last_entry = None
            return
        size = len(hashes)
        if size % HASH_LENGTH or packed.count(ENTRY_SEPARATOR) != size // HASH_LENGTH - 1:
            raise StateError("damaged SLA state: its log and its event hashes disagree")
        text = packed[packed.rfind(ENTRY_SEPARATOR) + 1 :]
        try:
            end = len(text)
            for mark in (":", "{"):
                found = text.find(mark)
                if 0 < found < end:
                    end = found
            newest = LogEntry(
                base + int(text[1:end], 16), hashes[-HASH_LENGTH:], _KIND[text[0]], None
            )
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise StateError(f"damaged SLA state: {exc!r}") from None
        self._log = None
        self.packed_log = packed
        self.hashes = hashes
        self.log_base = base
        self.last_entry = newest

    @property
    def event_hashes(self) -> frozenset[str]:
        """The id hashes of the events applied (dedup: ``has_event`` is the cheap test)."""
        hashes = self.hashes
        return frozenset(hashes[i : i + HASH_LENGTH] for i in range(0, len(hashes), HASH_LENGTH))

    def event_count(self) -> int:
        """How many distinct events the log holds."""
        return len(self.hashes) // HASH_LENGTH

    def has_event(self, hashed: str) -> bool:
        """Whether an event with this id hash was applied (a duplicate changes nothing)."""
        hashes = self.hashes
        at = hashes.find(hashed)
        while at >= 0:
            if at % HASH_LENGTH == 0:
                return True
            at = hashes.find(hashed, at + 1)
        return False

    def append_entry(self, entry: LogEntry) -> None:
        """Add an entry that sorts after every other (an event in order), packed or not."""
        self.hashes += entry.hashed
        log = self._log
        if log is None:
            self.packed_log += ENTRY_SEPARATOR + pack_entry(entry, self.log_base)
        else:
            log.append(entry)
        self.last_entry = entry

    def insert_entry(self, entry: LogEntry) -> None:
        """Add an entry where it sorts (a late event: a replay follows)."""
        log = self.log
        insort(log, entry)
        self.hashes += entry.hashed

    def policies(self, given: PolicySet | None = None) -> PolicySet:
        """The policy set to compute with: ``given``, else the one it was computed under."""
        ps = given or self.policy_set or registered(self.fingerprint)
        if ps is None:
            raise LookupError(
                f"ticket {self.ticket_id!r}: its policy set {self.fingerprint!r} is not loaded; "
                "pass the PolicySet explicitly"
            )
        self.policy_set = ps
        return ps


# The log's stored form (codec.py format 2): one text per entry, ENTRY_SEPARATOR between them
# (JSON escapes every control character, so neither it nor NUL occurs in an entry): the kind
# letter, the hexadecimal ms offset from the log's base, then ``:status`` for a status change
# or the fields as compact JSON. The id hashes are stored apart (``State.hashes``).
ENTRY_SEPARATOR: Final = "\x1e"
HASH_LENGTH: Final = 8  # ticket_log.event_hash: 48 bits as 8 base64 characters
_KIND: Final = {kind.value: kind for kind in EventKind}


class StateError(ValueError):
    """A serialised state this engine cannot read (wrong version, damaged)."""


def pack_entry(entry: LogEntry, base: int) -> str:
    """One log entry's stored text, its instant as an offset from ``base``."""
    letter: str = entry.kind
    fields = entry.fields
    text = f"{letter}{entry.at - base:x}"
    if fields is None:
        return text
    if entry.kind is STATUS_CHANGED:
        return text + ":" + fields[STATUS]
    # pydantic-core's encoder: the same compact JSON as the stdlib's, 4-10x faster on these
    # small objects (bench/engine.py's load+dump).
    return text + to_json(fields).decode()


def pack_log(log: list[LogEntry], base: int) -> str:
    return ENTRY_SEPARATOR.join([pack_entry(entry, base) for entry in log])


def unpack_entry(text: str, hashed: str, base: int) -> LogEntry:
    """The entry ``pack_entry`` wrote (ValueError, KeyError or TypeError when damaged)."""
    kind = _KIND[text[0]]
    fields: dict[str, Any] | None = None
    end = len(text)
    colon = text.find(":")
    brace = text.find("{")
    if colon > 0 and (brace < 0 or colon < brace):
        if kind is not STATUS_CHANGED:
            raise ValueError(f"a status on a {kind.name} entry")
        fields = {STATUS: text[colon + 1 :]}
        end = colon
    elif brace > 0:
        loaded = from_json(text[brace:])
        if not isinstance(loaded, dict):
            raise TypeError("entry fields are not an object")
        fields = loaded
        end = brace
    if kind is STATUS_CHANGED and fields is None:
        raise ValueError("a status change without its status")
    if len(hashed) != HASH_LENGTH:
        raise ValueError("an entry without its id hash")
    return LogEntry(base + int(text[1:end], 16), hashed, kind, fields)


def unpack_log(packed: str, hashes: str, base: int) -> list[LogEntry]:
    """The log ``pack_log`` wrote; StateError when it does not read back (the blob it came
    from passed its checksum, so only a blob made to look whole gets here)."""
    if not packed:
        return []
    texts = packed.split(ENTRY_SEPARATOR)
    if len(texts) * HASH_LENGTH != len(hashes):
        raise StateError("damaged SLA state: its log and its event hashes disagree")
    try:
        return [
            unpack_entry(text, hashes[i * HASH_LENGTH : (i + 1) * HASH_LENGTH], base)
            for i, text in enumerate(texts)
        ]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise StateError(f"damaged SLA state: {exc!r}") from None
