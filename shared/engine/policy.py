"""The SLA policy file compiled for the engine: the policy set, its policies and targets.

The file's rules live in shared/engine/policy_file.py (pydantic models, read through the
one config loader, shared/yamlsource.py, so that every problem keeps its line; all
problems are reported at once, each as ``FILE:LINE: problem``). A file that loads is
compiled once into a :class:`PolicySet` - calendars built, durations in milliseconds,
warning/breach/escalation thresholds pre-sorted - which the monitor passes to every
engine call.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from slawatch.shared.bounds import text_problem
from slawatch.shared.engine import contracts, coverage, policy_file
from slawatch.shared.engine.calendar import Calendar
from slawatch.shared.engine.policy_file import DONE_STATUSES as DONE_STATUSES
from slawatch.shared.engine.policy_file import PAUSABLE_STATUSES as PAUSABLE_STATUSES
from slawatch.shared.engine.policy_file import VERSION as VERSION
from slawatch.shared.sla_events import TICKET_TARGETS, Target
from slawatch.shared.yamlsource import Issue, Located, load_located, validate

TARGETS: tuple[str, ...] = tuple(target.value for target in TICKET_TARGETS)  # from Target
assert TARGETS == policy_file.TARGETS, "the policy file's targets are the engine's"
# Threshold kinds, in the order they sort at equal elapsed time.
WARN, BREACH, ESCALATE = 0, 1, 2


@dataclass(frozen=True)
class Problem:
    line: int
    message: str


class PolicyError(ValueError):
    """A policy file that cannot be used; ``problems`` lists every (line, message)."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(
            f"{self.source}:{p.line}: {p.message}" if p.line else f"{self.source}: {p.message}"
            for p in self.problems
        )


@dataclass(frozen=True, eq=False)
class TargetSpec:
    """One target of one policy, ready for the clock: everything in milliseconds."""

    name: str
    target: Target
    policy: str
    ms: int
    calendar: Calendar
    # What pauses it (policy_file.pause_plan): the ticket is in one of these statuses, or
    # has one of these tags. Both empty: nothing pauses it.
    pause_statuses: frozenset[str]
    pause_tags: frozenset[str]
    # (elapsed ms at which it fires, kind, percent-or-level), ascending.
    thresholds: tuple[tuple[int, int, int], ...]
    breach_index: int
    group: str | None = None  # the group of an OLA target (its cycles are that group's)

    @property
    def pausable(self) -> bool:
        return bool(self.pause_statuses or self.pause_tags)

    def pauses(self, status: str, tags: tuple[str, ...]) -> bool:
        """Whether the ticket in ``status`` with ``tags`` pauses this target."""
        if status in self.pause_statuses:
            return True
        if self.pause_tags:
            for tag in tags:
                if tag in self.pause_tags:
                    return True
        return False


@dataclass(frozen=True, eq=False)
class Ola:
    """A team OLA compiled for one group: its targets on the group's calendar."""

    id: str
    group: str
    calendar: Calendar
    targets: Mapping[Target, TargetSpec]
    description: str | None = None
    line: int = 0


@dataclass(frozen=True, eq=False)
class Policy:
    id: str
    match: Mapping[str, frozenset[str]]
    calendar: Calendar
    targets: Mapping[Target, TargetSpec]
    warn_at: tuple[float, ...]
    escalations: tuple[int, ...]  # ms after the breach, in business time
    pause_first_response: bool
    description: str | None = None
    line: int = 0
    # A contract's window of ticket creation times, [start, end) in UTC ms (shared/engine/
    # contracts.py); (None, None) for a policy that always holds.
    window: contracts.Window = (None, None)

    def matches(
        self,
        priority: str | None,
        tier: str | None,
        channel: str | None,
        group: str | None,
        tags: Iterable[str],
        *,
        customer: str | None = None,
        at: int | None = None,
    ) -> bool:
        """Whether the policy applies to a ticket with these attributes created at ``at``
        (ms; a policy with a window never applies when ``at`` is not known)."""
        if self.window != (None, None) and (at is None or not contracts.holds(self.window, at)):
            return False
        m = self.match
        if not m:
            return True
        if "priority" in m and priority not in m["priority"]:
            return False
        if "customer_tier" in m and tier not in m["customer_tier"]:
            return False
        if "customer_id" in m and customer not in m["customer_id"]:
            return False
        if "channel" in m and channel not in m["channel"]:
            return False
        if "group" in m and group not in m["group"]:
            return False
        return not ("tags" in m and m["tags"].isdisjoint(tags))

    def why(
        self,
        priority: str | None,
        tier: str | None,
        channel: str | None,
        group: str | None,
        tags: Iterable[str],
        *,
        customer: str | None = None,
    ) -> dict[str, Any]:
        """The ticket's values for the keys this policy matched on ({} for a catch-all)."""
        values: dict[str, Any] = {
            "priority": priority,
            "customer_tier": tier,
            "customer_id": customer,
            "channel": channel,
            "group": group,
        }
        out: dict[str, Any] = {}
        for key in self.match:
            if key == "tags":
                out["tags"] = sorted(self.match["tags"].intersection(tags))
            else:
                out[key] = values[key]
        return out


_REGISTRY: weakref.WeakValueDictionary[str, PolicySet] = weakref.WeakValueDictionary()


@dataclass(eq=False)
class PolicySet:
    """A compiled policy file. Pass it to every engine call; build it once."""

    policies: tuple[Policy, ...]
    calendars: Mapping[str, Calendar]
    pause_statuses: frozenset[str]
    fingerprint: str
    source: str = "<policies>"
    pause_tags: frozenset[str] = frozenset()
    olas: Mapping[str, Ola] = field(default_factory=dict)  # by group
    _by_id: dict[str, Policy] = field(default_factory=dict, repr=False)
    _cache: dict[tuple, Policy] = field(default_factory=dict, repr=False)
    # Every start and end of a contract window, sorted: between two of them the same
    # policies hold, so selection caches by the stretch a creation instant falls in.
    _edges: list[int] = field(default_factory=list, repr=False)
    # The calendar coverage guard (shared/engine/coverage.py): ``holidays.official_through``
    # per calendar, as written; and, once ``check_coverage`` ran, the instant from which each
    # calendar's holiday data is not official (the read API marks deadlines from then on).
    official_through: Mapping[str, date] = field(default_factory=dict)
    calendar_lines: Mapping[str, int] = field(default_factory=dict)  # for messages
    estimated_from: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {p.id: p for p in self.policies}
        self._edges = sorted({e for p in self.policies for e in p.window if e is not None})
        _REGISTRY[self.fingerprint] = self

    def policy(self, policy_id: str) -> Policy:
        return self._by_id[policy_id]

    def get(self, policy_id: str) -> Policy | None:
        return self._by_id.get(policy_id)

    def ola_spec(self, group: str | None, target: Target) -> TargetSpec | None:
        """The OLA target of ``group``, if its OLA sets it."""
        ola = self.olas.get(group) if group is not None else None
        return ola.targets.get(target) if ola is not None else None

    def select(
        self,
        priority: str | None,
        tier: str | None,
        channel: str | None,
        group: str | None,
        tags: tuple[str, ...],
        *,
        customer: str | None = None,
        at: int | None = None,
    ) -> Policy:
        """The first policy whose match holds for a ticket created at ``at`` (ms): the
        policy in force at its creation. There is always one (the catch-all)."""
        stretch = -1 if at is None or not self._edges else bisect_right(self._edges, at)
        key = (priority, tier, channel, group, tags, customer, stretch)
        found = self._cache.get(key)
        if found is None:
            found = next(
                p
                for p in self.policies
                if p.matches(priority, tier, channel, group, tags, customer=customer, at=at)
            )
            if len(self._cache) < 100_000:
                self._cache[key] = found
        return found

    def check_coverage(self, today: date) -> list[coverage.Coverage]:
        """Run the calendar coverage guard as of ``today``; remembers, per calendar, the
        instant from which its holiday data is not official (``estimated_from``)."""
        found = coverage.guard(self.calendars, today, self.official_through)
        self.estimated_from = {
            item.calendar: item.official_until_ms
            for item in found
            if item.first_unofficial is not None
        }
        return found

    def contract_policies(self) -> list[contracts.Contract]:
        """The policies that are contracts: a window, or a match on customer_id."""
        return [
            contracts.Contract(p.id, p.line, p.match.get("customer_id", frozenset()), p.window)
            for p in self.policies
            if p.window != (None, None) or "customer_id" in p.match
        ]


def registered(fingerprint: str) -> PolicySet | None:
    """The policy set with this fingerprint, if one is alive in this process."""
    return _REGISTRY.get(fingerprint)


# ---------------------------------------------------------------------------- loading
def load_policies(source: str | Path, *, text: str | None = None) -> PolicySet:
    """Load and compile a policy file; raises :class:`PolicyError` listing every problem.

    ``source`` is a path; pass ``text`` to compile a string (``source`` then only names it
    in messages). The rules are the models of shared/engine/policy_file.py, read through
    the one config loader (shared/yamlsource.py).
    """
    name = str(source)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PolicyError(name, [Problem(0, "no such file")]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(name, [Problem(0, f"cannot read the file: {exc}")]) from None
    doc = load_located(text, syntax="not valid YAML")
    if doc.issues and doc.data is None:
        raise PolicyError(name, _problems(doc.issues))
    if doc.data is None:
        raise PolicyError(name, [Problem(0, "empty policy file")])
    for path, key, line in doc.duplicate_keys:
        doc.issues.append(Issue(line, f"{policy_file.where(doc, path)}: duplicate key {key!r}"))
    for path, key, line in doc.bad_keys:
        doc.issues.append(
            Issue(line, f"{policy_file.where(doc, path)}: keys must be strings, got {key!r}")
        )
    file = validate(doc, policy_file.PolicyFile, lambda refusal: policy_file.word(doc, refusal))
    customer_files: dict[int, tuple[frozenset[str], str]] = {}
    if file is not None:
        doc.issues.extend(policy_file.cross_check(doc, file))
        customer_files = _read_customer_files(file, doc, Path(name).parent)
    if doc.issues or file is None:
        raise PolicyError(name, _problems(doc.issues))
    policies = _compile(file, doc, name, customer_files)
    problems = _contract_problems(policies)
    if problems:
        raise PolicyError(name, problems)
    return policies


# A file of customer ids: bounded like every input (ids are ShortText in ticket events).
MAX_CUSTOMER_FILE_BYTES = 4 * 1024 * 1024
MAX_CUSTOMER_ID_LENGTH = 256


def _read_customer_files(
    file: policy_file.PolicyFile, doc: Located, base: Path
) -> dict[int, tuple[frozenset[str], str]]:
    """The ids (and a digest of the text) of every ``customer_id: {file: PATH}``, by policy
    index; problems go to ``doc.issues`` on the line of the ``file`` key."""
    out: dict[int, tuple[frozenset[str], str]] = {}
    for index, entry in enumerate(file.policies):
        spec = entry.match.customer_id if entry.match else None
        if not isinstance(spec, policy_file.IdFile):
            continue
        at = ("policies", index, "match", "customer_id", "file")
        what = f"policy {entry.id!r}: match: customer_id: file {spec.file!r}"
        path = base / spec.file
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_CUSTOMER_FILE_BYTES + 1)
        except FileNotFoundError:
            doc.issue(at, f"{what}: no such file (paths are relative to the policy file)")
            continue
        except (OSError, ValueError) as exc:
            doc.issue(at, f"{what}: cannot read it: {getattr(exc, 'strerror', None) or exc}")
            continue
        if len(raw) > MAX_CUSTOMER_FILE_BYTES:
            doc.issue(at, f"{what}: larger than {MAX_CUSTOMER_FILE_BYTES} bytes")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            doc.issue(at, f"{what}: not UTF-8 text")
            continue
        ids: set[str] = set()
        for number, line in enumerate(text.splitlines(), 1):
            value = line.split("#", 1)[0].strip()
            if not value:
                continue
            problem = text_problem(value, multiline=False)
            if problem is None and len(value) > MAX_CUSTOMER_ID_LENGTH:
                problem = f"is longer than {MAX_CUSTOMER_ID_LENGTH} characters"
            if problem is not None:
                doc.issue(at, f"{what}: line {number}: the id {problem}")
                break
            ids.add(value)
        else:
            if not ids:
                doc.issue(at, f"{what}: lists no customer id")
                continue
            out[index] = (frozenset(ids), hashlib.sha256(raw).hexdigest())
    return out


def _contract_problems(policies: PolicySet) -> list[Problem]:
    """Windows that end before they start, and overlapping windows of one customer."""
    problems = []
    for policy in policies.policies:
        problem = contracts.window_problem(policy.window)
        if problem is not None:
            problems.append(Problem(policy.line, f"policy {policy.id!r}: {problem}"))
    if not problems:
        for line, message in contracts.overlapping(policies.contract_policies()):
            problems.append(Problem(line, message))
    return problems


def _problems(issues: Iterable[Issue]) -> list[Problem]:
    return [Problem(issue.line or 0, issue.message) for issue in issues]


def _compile(
    file: policy_file.PolicyFile,
    doc: Located,
    source: str,
    customer_files: Mapping[int, tuple[frozenset[str], str]],
) -> PolicySet:
    """A valid file as the engine's objects: calendars built, thresholds in milliseconds."""
    calendars = {
        name: Calendar(
            name,
            spec.timezone,
            always_open=spec.always_open,
            hours=spec.hours.by_day() if spec.hours else {},
            country=spec.holidays.country if spec.holidays else None,
            subdiv=spec.holidays.subdiv if spec.holidays else None,
            closed_dates=set(spec.closed_dates),
            open_dates=set(spec.open_dates),
            open_date_hours=list(spec.open_date_hours) if spec.open_date_hours else None,
        )
        for name, spec in file.calendars.items()
    }
    policies = []
    for index, entry in enumerate(file.policies):
        options = policy_file.options(file, entry)
        ids = customer_files[index][0] if index in customer_files else None
        calendar = calendars[options["calendar"]]
        policies.append(
            _compile_policy(
                entry.id,
                entry.match.sets(ids) if entry.match else {},
                calendar,
                entry.targets.ms(),
                options,
                entry.description,
                doc.line(("policies", index)) or 0,
                policy_file.pause_plan(file, entry),
                contracts.window_ms(entry.valid_from, entry.valid_until, calendar.timezone),
            )
        )
    olas: dict[str, Ola] = {}
    for index, ola in enumerate(file.olas):
        calendar = calendars[ola.calendar or file.defaults.calendar or ""]
        warn_at = tuple(ola.warn_at if ola.warn_at is not None else file.defaults.warn_at)
        escalations = ola.escalations if ola.escalations is not None else file.defaults.escalations
        plan = policy_file.pause_plan(file, ola)
        for group in ola.group:
            specs: dict[Target, TargetSpec] = {}
            for key, ms in ola.targets.ms().items():
                target = Target(policy_file.OLA_TARGET_NAMES[key])
                specs[target] = _spec(
                    target, ola.id, ms, calendar, plan[key], warn_at, escalations, group
                )
            olas[group] = Ola(ola.id, group, calendar, specs, ola.description,
                              doc.line(("olas", index)) or 0)  # fmt: skip
    # The fingerprint covers the files of ids too: editing one recomputes open tickets.
    digests = {str(index): digest for index, (_ids, digest) in sorted(customer_files.items())}
    canonical = json.dumps(
        [doc.data, digests] if digests else doc.data,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return PolicySet(
        policies=tuple(policies),
        calendars=calendars,
        pause_statuses=frozenset(file.pause_statuses),
        calendar_lines={name: doc.line(("calendars", name)) or 0 for name in file.calendars},
        official_through={
            name: spec.holidays.official_through
            for name, spec in file.calendars.items()
            if spec.holidays is not None and spec.holidays.official_through is not None
        },
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest()[:12],
        source=source,
        pause_tags=frozenset(file.pause_tags),
        olas=olas,
    )


def _compile_policy(
    pid: str,
    match: dict[str, frozenset[str]],
    calendar: Calendar,
    targets_ms: dict[str, int],
    options: Mapping[str, Any],
    description: str | None,
    line: int,
    plan: Mapping[str, tuple[frozenset[str], frozenset[str]]],
    window: contracts.Window = (None, None),
) -> Policy:
    warn_at = tuple(options["warn_at"])
    escalations_ms = tuple(offset // timedelta(milliseconds=1) for offset in options["escalations"])
    pause_first = bool(options["pause_first_response"])
    specs: dict[Target, TargetSpec] = {}
    for name in TARGETS:
        if name not in targets_ms:
            continue
        target = Target(name)
        specs[target] = _spec(
            target, pid, targets_ms[name], calendar, plan[name], warn_at, options["escalations"]
        )
    return Policy(
        id=pid,
        match=match,
        calendar=calendar,
        targets=specs,
        warn_at=warn_at,
        escalations=escalations_ms,
        pause_first_response=pause_first,
        description=description,
        line=line,
        window=window,
    )


def _spec(
    target: Target,
    owner: str,
    ms: int,
    calendar: Calendar,
    pause: tuple[frozenset[str], frozenset[str]],
    warn_at: Iterable[float],
    escalations: Iterable[timedelta],
    group: str | None = None,
) -> TargetSpec:
    """One target ready for the clock: its thresholds pre-sorted, in milliseconds."""
    escalations_ms = [offset // timedelta(milliseconds=1) for offset in escalations]
    thresholds = [(round(ms * f), WARN, round(f * 100)) for f in warn_at]
    thresholds.append((ms, BREACH, 0))
    thresholds += [
        (ms + offset, ESCALATE, level) for level, offset in enumerate(escalations_ms, start=1)
    ]
    thresholds.sort(key=lambda t: (t[0], t[1]))
    return TargetSpec(
        name=target.value,
        target=target,
        policy=owner,
        ms=ms,
        calendar=calendar,
        pause_statuses=pause[0],
        pause_tags=pause[1],
        thresholds=tuple(thresholds),
        breach_index=next(i for i, t in enumerate(thresholds) if t[1] == BREACH),
        group=group,
    )


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema of the policy file (docs/schemas/policy.schema.json), generated from the
    models of shared/engine/policy_file.py; the loader checks more than a schema can (line
    numbers, overlaps, a reachable catch-all)."""
    return policy_file.json_schema()
