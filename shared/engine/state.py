"""The per-ticket SLA state and its compact, versioned serialisation.

What is kept, and why:

- ``log``: every ticket event applied, reduced to (time, event-id hash, kind, the few
  fields that matter). It makes duplicates recognisable (same hash) and lets the engine
  recompute the ticket from scratch in event-time order when an event arrives late or the
  policy file changes. Event ids are kept as a 64-bit hash so the size stays bounded
  whatever the producers' ids look like.
- ``ledger``: what has been emitted per (target, cycle) - warning percents, breach
  revision and whether it stands, escalation level, met count. Recomputation is diffed
  against it, so re-running history emits only what is new (and retracts what no longer
  holds), and ids stay deterministic.
- the derived clock state (tracks, status history, cycles, facts), stored so loading a
  state does not need a replay. It is always what a replay of ``log`` would produce.

Instants are integer milliseconds since the epoch (UTC) in memory; on disk they are
offsets from the first event, which keeps a realistic ticket well under 1 KB.
"""

from __future__ import annotations

import json
from typing import Any

from shared.engine.policy import PolicySet, TargetSpec, registered

FORMAT_VERSION = 1


class StateError(ValueError):
    """A serialised state this engine cannot read (wrong version, damaged)."""


class Track:
    """One running (or resumable) clock: one target, one cycle, under one policy's spec.

    ``nxt`` counts the spec's thresholds (warnings, breach, escalations) crossed in
    event time; ``ck``/``el`` are the last checkpoint and the business ms counted up to it.
    ``due``/``pk``/``pdue`` are caches (never serialised).
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
        self.pk: int | None = None
        self.pdue: int | None = None

    @property
    def breached(self) -> bool:
        return self.nxt > self.spec.breach_index


class State:
    """Everything the engine knows about one ticket. Mutated in place by the engine."""

    __slots__ = (
        "tid", "fp", "ps", "log", "ids", "last", "hz", "spec", "ledger", "confirm", "journal",
        # ticket, derived from the log in event-time order
        "ct", "st", "sh", "pri", "tier", "chan", "grp", "tags", "asg", "url", "subj", "csat", "nps",
        "pid", "pol", "why", "frd", "fra", "frs", "sa", "rs", "rp", "nrc", "nrs", "puc", "pus", "tracks", "oc",
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
        self.confirm: set | None = None
        self.journal: list | None = None
        self.reset()

    def reset(self) -> None:
        """Forget everything derived from the log (before a replay)."""
        self.ct: int | None = None
        self.st = "new"
        self.sh: list[tuple[int, str]] = []
        self.pri = "normal"
        self.tier = self.chan = self.grp = self.asg = self.url = self.subj = None
        self.tags: tuple[str, ...] = ()
        self.csat = self.nps = None
        self.pid: str | None = None
        self.pol = None  # the Policy object of pid (a cache)
        self.why: dict | None = None
        self.frd = False
        self.fra = self.frs = self.sa = self.rs = None
        self.rp = 0
        self.nrc = 0
        self.nrs: int | None = None
        self.puc = 0
        self.pus: int | None = None
        self.tracks: dict[str, Track] = {}
        self.oc: dict[str, tuple[int, int, bool]] = {}

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
    """Compact JSON (short keys, offsets in ms from the first event), versioned."""
    log = state.log
    base = log[0][0] if log else 0
    entries = []
    for t, _rank, h, code, payload in log:
        entries.append([t - base, code + h, payload] if payload else [t - base, code + h])
    # Ledger row: target code, cycle, warning percents sent, breach revisions, breach
    # standing, escalation level sent, times met, escalation revisions.
    ledger = [
        [code, cyc, _percents(vals[0]), *vals[1:]] for (code, cyc), vals in state.ledger.items()
    ]

    def rel(ms: int | None) -> int | None:
        return None if ms is None else ms - base

    tracks = [
        [
            tr.code,
            tr.cyc,
            tr.org - base,
            tr.spec.policy,
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
    derived: dict[str, Any] = {"st": state.st}
    if state.pid is not None:
        derived["pid"] = state.pid
    if state.sh:
        derived["sh"] = [[t - base, s] for t, s in state.sh]
    if state.frd:
        derived["frd"] = 1
    for key in ("fra", "sa", "nrs", "pus"):
        value = getattr(state, key)
        if value is not None:
            derived[key] = value - base
    for key in ("frs", "rs"):
        value = getattr(state, key)
        if value is not None:
            derived[key] = value
    for key in ("rp", "nrc", "puc"):
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
        state.hz - base if state.hz else 0,
        state.spec - base if state.spec else 0,
        entries,
        ledger,
        derived,
    ]
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _percents(mask: int) -> list[int]:
    return [p for p in range(1, 100) if mask >> p & 1] if mask else []


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
        doc = json.loads(blob)
        version = doc[0]
    except (ValueError, TypeError, IndexError, KeyError) as exc:
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
    state = State(tid)
    state.fp = fp
    state.ps = policies if policies is not None and policies.fingerprint == fp else registered(fp)
    state.hz = base + hz if hz else 0
    state.spec = base + spec if spec else 0
    log = state.log
    ids = state.ids
    first_created = True
    for item in entries:
        t = base + item[0]
        tagged = item[1]
        code, h = tagged[0], tagged[1:]
        payload = item[2] if len(item) > 2 else None
        log.append((t, 0 if code == "C" else 1, h, code, payload))
        ids.add(h)
        if payload:
            if code == "C":
                if first_created:
                    state.chan = payload.get("ch")
                    first_created = False
                fold_attributes(state, payload)
            elif code in "UA":
                fold_attributes(state, payload)
            elif code == "v":
                if payload.get("cs") is not None:
                    state.csat = payload["cs"]
                if payload.get("np") is not None:
                    state.nps = payload["np"]
    if log:
        state.last = log[-1][:3]
        created = next((e[0] for e in log if e[3] == "C"), None)
        state.ct = created
    state.ledger = {(row[0], row[1]): [_mask(row[2]), *row[3:]] for row in ledger}
    state.st = derived.get("st", "new")
    state.pid = derived.get("pid")
    state.sh = [(base + t, s) for t, s in derived.get("sh", ())]
    state.frd = bool(derived.get("frd"))
    for key in ("fra", "sa", "nrs", "pus"):
        if key in derived:
            setattr(state, key, base + derived[key])
    state.frs = derived.get("frs")
    state.rs = derived.get("rs")
    state.rp = derived.get("rp", 0)
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
    if rows:
        for code, cyc, org, pid, ck, el, run, nxt, met, mc, bat in rows:
            policy = ps.get(pid)
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
        policy = state.pol = state.ps.get(state.pid)
        if policy is not None:
            state.why = policy.why(state.pri, state.tier, state.chan, state.grp, state.tags)
    return state
