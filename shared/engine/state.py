"""The per-ticket SLA state and its compact, versioned serialisation.

What is kept, and why:

- ``log``: every ticket event applied, reduced to (time, event-id hash, kind, the few
  fields that matter). It makes duplicates recognisable (same hash) and lets the engine
  recompute the ticket from scratch in event-time order when an event arrives late or the
  policy file changes. Event ids are kept as a 64-bit hash so the size stays bounded
  whatever the producers' ids look like.
- ``ledger``: what has been emitted per (target, cycle) - warning percents, breach
  revision and whether it stands, escalation level, met count, and a signature of what the
  standing breach and each standing escalation said (instant, deadline, policy).
  Recomputation is diffed against it, so re-running history emits only what is new,
  retracts what no longer holds and re-sends what now says otherwise, and ids stay
  deterministic.
- the derived clock state (tracks, status history, cycles, facts), stored so loading a
  state does not need a replay. It is always what a replay of ``log`` would produce.

Instants are integer milliseconds since the epoch (UTC) in memory; on disk they are
offsets from the first event, which keeps a realistic ticket well under 1 KB.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from shared.engine.policy import DONE_STATUSES, PolicySet, TargetSpec, registered
from shared.engine.record import Attributes

FORMAT_VERSION = 1
# A serialised state longer than this is stored zlib-compressed (a long conversation: ~1 in
# 10 realistic open tickets); shorter ones stay plain JSON, cheaper to write and to read.
COMPRESS_ABOVE = 1024


class StateError(ValueError):
    """A serialised state this engine cannot read (wrong version, damaged)."""


class Track:
    """One running (or resumable) clock: one target, one cycle, under one policy's spec.

    ``nxt`` counts the spec's thresholds (warnings, breach, escalations) crossed in
    event time; ``ck``/``el`` are the last checkpoint and the business ms counted up to it.
    ``due``/``pk``/``pdue`` are caches (never serialised): the next threshold's instant, and
    the next threshold not yet projected (index, instant).
    """

    __slots__ = (
        "code",
        "cyc",
        "org",
        "spec",
        "ck",
        "el",
        "run",
        "nxt",
        "met",
        "mc",
        "bat",
        "due",
        "pk",
        "pdue",
    )

    def __init__(self, code: str, cyc: int, org: int, spec: TargetSpec) -> None:
        self.code = code
        self.cyc = cyc
        self.org = org  # the original start of this cycle
        self.spec = spec
        self.ck = org
        self.el = 0
        self.run = True
        self.nxt = 0
        self.met = False
        self.mc = 0  # how many times it was met (resolution can be met, reopened, met again)
        self.bat: int | None = None  # the breach instant, once crossed
        self.due: int | None = None
        self.pk = 0  # meaningful only while pdue is set
        self.pdue: int | None = None

    @property
    def breached(self) -> bool:
        return self.nxt > self.spec.breach_index


class State:
    """Everything the engine knows about one ticket. Mutated in place by the engine."""

    __slots__ = (
        "tid", "fp", "ps", "log", "ids", "last", "hz", "spec", "ledger", "confirm", "journal", "trig",
        # ticket, derived from the log in event-time order
        "ct", "st", "sh", "pri", "tier", "chan", "grp", "tags", "asg", "url", "subj", "csat", "nps",
        "av", "pid", "pol", "frd", "fra", "frs", "sa", "rs", "rp", "nrc", "nrs", "puc", "pus", "tracks", "oc",
    )  # fmt: skip

    def __init__(self, ticket_id: str, policies: PolicySet | None = None) -> None:
        self.tid = ticket_id
        self.ps = policies
        self.fp = policies.fingerprint if policies is not None else ""
        self.log: list[tuple] = []  # (t, rank, hash, code, payload), sorted
        self.ids: set[str] = set()
        self.last: tuple | None = None
        self.hz = 0  # horizon: the latest instant the state has been brought to
        self.spec = 0  # latest threshold instant projected past the last event (see machine)
        self.ledger: dict[tuple[str, int], list[int]] = {}
        self.confirm: dict[tuple[str, int], int] | None = None  # during a replay (see machine)
        self.journal: list[dict[str, Any]] | None = None
        self.trig = 0  # the instant of the engine call in hand: what a retraction is dated
        self.reset()

    def reset(self) -> None:
        """Forget everything derived from the log (before a replay)."""
        self.ct: int | None = None
        self.st = "new"
        self.sh: list[tuple[int, str]] = []
        self.pri = "normal"
        self.tier: str | None = None
        self.chan: str | None = None
        self.grp: str | None = None
        self.asg: str | None = None
        self.url: str | None = None
        self.subj: str | None = None
        self.tags: tuple[str, ...] = ()
        self.av: Attributes | None = None
        self.csat: int | None = None
        self.nps: int | None = None
        self.pid: str | None = None
        self.pol: Any = None  # the Policy of pid (a cache); set once the ticket is created
        self.frd = False
        self.fra: int | None = None  # first public agent reply
        self.frs: int | None = None  # first-response business ms
        self.sa: int | None = None  # solved at
        self.rs: int | None = None  # resolution business ms
        self.rp = 0
        self.nrc = 0
        self.nrs: int | None = None
        self.puc = 0
        self.pus: int | None = None
        self.tracks: dict[str, Track] = {}
        self.oc: dict[str, tuple[int, int, bool]] = {}

    def attributes(self) -> Attributes:
        """The ticket's attributes as every SLA event carries them; one tuple shared by the
        events emitted until an attribute changes (``fold_attributes`` drops it)."""
        av = self.av
        if av is None:
            av = self.av = (
                self.pri, self.tier, self.chan, self.grp, self.asg, self.tags, self.url, self.subj,
            )  # fmt: skip
        return av

    @property
    def why(self) -> dict[str, Any] | None:
        """Which of the ticket's attribute values made its policy match ({} for a catch-all).

        Computed when read (the read API, reports, the timeline), not on every attribute
        change: the clock never needs it, and every attribute it shows re-selects the policy."""
        pol = self.pol
        return None if pol is None else pol.why(self.pri, self.tier, self.chan, self.grp, self.tags)

    def policies(self, given: PolicySet | None = None) -> PolicySet:
        ps = given or self.ps or registered(self.fp)
        if ps is None:
            raise LookupError(
                f"ticket {self.tid!r}: its policy set {self.fp!r} is not loaded; pass the PolicySet explicitly"
            )
        self.ps = ps
        return ps


# ---------------------------------------------------------------------------- attributes
ATTR_KEYS = {
    "p": "pri",
    "ti": "tier",
    "g": "grp",
    "a": "asg",
    "tg": "tags",
    "u": "url",
    "su": "subj",
}


def fold_attributes(state: State, payload: dict[str, Any] | None) -> None:
    """Apply an attribute payload (short keys) to the state; shared by apply and load."""
    if not payload:
        return
    state.av = None
    for key, value in payload.items():
        name = ATTR_KEYS.get(key)
        if name is None:
            continue
        if name == "tags":
            value = tuple(value or ())
        elif name == "pri" and value is None:
            continue
        setattr(state, name, value)


# ---------------------------------------------------------------------------- serialisation
def serialise(state: State) -> bytes:
    """Compact JSON, versioned (zlib-compressed above ``COMPRESS_ABOVE`` bytes). Layout of
    format 1::

        [1, ticket_id, policy_fingerprint, base_ms, horizon, projected_until,
         log, ledger, derived]

    Instants are ms offsets from ``base_ms`` (the first event). A log entry is one string,
    kind letter + 8-character id hash + hexadecimal offset (+ ``:status`` for a status
    change), or ``[that, {fields}]`` when the event carries other fields. A ledger row is ``"<target><cycle>|<warning %s>|<breach
    revisions>,<standing>,<escalation level>,<times met>,<escalation revisions>,<each standing
    level's revision, packed (see machine)>,<the standing breach's signature>,<each standing
    level's signature, level 1 first>"`` (trailing zeros left out; a row written before
    signatures existed reads with signature 0, "not known").
    Status history, first reply, reply count, solve time, channel and attributes are not
    stored: loading folds them from the log.
    """
    log = state.log
    base = log[0][0] if log else 0
    entries: list[Any] = []
    for t, _rank, h, code, payload in log:
        tag = f"{code}{h}{t - base:x}"
        if code == "S":
            entries.append(tag + ":" + payload["st"])
        else:
            entries.append([tag, payload] if payload else tag)
    ledger = []
    for (code, cyc), vals in state.ledger.items():
        rest = list(vals[1:])
        while rest and not rest[-1]:
            rest.pop()
        percents = ",".join(str(p) for p in _percents(vals[0]))
        ledger.append(f"{code}{cyc}|{percents}|{','.join(map(str, rest))}")

    def rel(ms: int | None) -> int | None:
        return None if ms is None else ms - base

    tracks = [
        [
            tr.code,
            tr.cyc,
            tr.org - base,
            0 if tr.spec.policy == state.pid else tr.spec.policy,
            tr.ck - base,
            tr.el,
            int(tr.run),
            tr.nxt,
            int(tr.met),
            tr.mc,
            rel(tr.bat),
        ]
        for tr in state.tracks.values()
    ]
    derived: dict[str, Any] = {}
    if state.pid is not None:
        derived["pid"] = state.pid
    if state.frd:
        derived["frd"] = 1
    for key in ("nrs", "pus"):
        value = getattr(state, key)
        if value is not None:
            derived[key] = value - base
    for key in ("frs", "rs", "nrc", "puc"):
        value = getattr(state, key)
        if value:
            derived[key] = value
    if tracks:
        derived["tr"] = tracks
    if state.oc:
        derived["oc"] = {code: [cyc, at - base, int(b)] for code, (cyc, at, b) in state.oc.items()}
    doc = [
        FORMAT_VERSION,
        state.tid,
        state.fp,
        base,
        rel(state.hz or None),
        rel(state.spec or None),
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
        return _read_v1(doc, policies)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise StateError(f"damaged SLA state: {exc!r}") from None


def _read_v1(doc: list, policies: PolicySet | None) -> State:
    _v, tid, fp, base, hz, spec, entries, ledger, derived = doc
    payload: dict[str, Any] | None
    state = State(tid)
    state.fp = fp
    state.ps = policies if policies is not None and policies.fingerprint == fp else registered(fp)
    state.hz = 0 if hz is None else base + hz
    state.spec = 0 if spec is None else base + spec
    log = state.log
    ids = state.ids
    # Fold what processing would derive from the log without SLA arithmetic: attributes,
    # status and its history, first reply, reply count, last solve. Same rules as machine.
    ct = None
    status = "new"
    history: list[tuple[int, str]] = []
    for item in entries:
        if isinstance(item, str):
            tagged, _, status_text = item.partition(":")
            payload = {"st": status_text} if status_text else None
        else:
            tagged, payload = item
        code, h = tagged[0], tagged[1:9]
        t = base + int(tagged[9:], 16)
        log.append((t, 0 if code == "C" else 1, h, code, payload))
        ids.add(h)
        if code == "a":
            if ct is not None:
                state.rp += 1
                if state.fra is None:
                    state.fra = t
        elif code == "S":
            new = payload["st"] if payload else status
            if ct is not None and new != status:
                if new in DONE_STATUSES and status not in DONE_STATUSES:
                    state.sa = t
                status = new
                history.append((t, new))
        elif code == "C" and payload is not None:
            if ct is None:
                ct = t
                state.chan = payload.get("ch")
                state.av = None
                history.append((t, "new"))
                new = payload.get("st", "new")
                if new != "new":
                    if new in DONE_STATUSES:
                        state.sa = t
                    status = new
                    history.append((t, new))
            fold_attributes(state, payload)
        elif code in "UA":
            fold_attributes(state, payload)
        elif code == "v" and payload:
            if payload.get("cs") is not None:
                state.csat = payload["cs"]
            if payload.get("np") is not None:
                state.nps = payload["np"]
    state.ct = ct
    state.st = status
    state.sh = history
    if log:
        state.last = log[-1]
    for row in ledger:
        head, percents, rest = row.split("|")
        values = [int(v) for v in rest.split(",")] if rest else []
        values += [0] * (7 - len(values))  # signatures absent: written before them
        mask = _mask([int(p) for p in percents.split(",")]) if percents else 0
        state.ledger[(head[0], int(head[1:]))] = [mask, *values]
    state.pid = derived.get("pid")
    state.frd = bool(derived.get("frd"))
    for key in ("nrs", "pus"):
        if key in derived:
            setattr(state, key, base + derived[key])
    state.frs = derived.get("frs")
    state.rs = derived.get("rs")
    state.nrc = derived.get("nrc", 0)
    state.puc = derived.get("puc", 0)
    state.oc = {
        code: (cyc, base + at, bool(b)) for code, (cyc, at, b) in derived.get("oc", {}).items()
    }
    rows = derived.get("tr", ())
    ps = state.ps
    if ps is None:
        # Computed under a policy file that is not loaded here: the tracks cannot be
        # rebuilt from it, so leave them out; the first engine call with a policy set
        # sees the fingerprint differ and recomputes the ticket from its log.
        state.ps = policies
        rows = ()
    if rows and ps is not None:
        for code, cyc, org, pid, ck, el, run, nxt, met, mc, bat in rows:
            policy = ps.get(pid or state.pid or "")
            spec = policy.targets.get(code) if policy is not None else None
            if spec is None:
                raise KeyError(f"policy {pid!r} has no target {code!r}")
            tr = Track(code, cyc, base + org, spec)
            tr.ck = base + ck
            tr.el = el
            tr.run = bool(run)
            tr.nxt = nxt
            tr.met = bool(met)
            tr.mc = mc
            tr.bat = None if bat is None else base + bat
            state.tracks[code] = tr
    if state.pid is not None and state.ps is not None and state.ps.fingerprint == fp:
        state.pol = state.ps.get(state.pid)
    return state
