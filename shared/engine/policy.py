"""The SLA policy file: loading, validation with line numbers, and the compiled policy set.

The file is parsed with ``yaml.compose`` so that every value keeps its line; validation
collects *all* problems (not just the first) and reports each as ``FILE:LINE: problem``.
A file that loads is compiled once into a :class:`PolicySet` - calendars built, durations
in milliseconds, warning/breach/escalation thresholds pre-sorted - which the monitor
passes to every engine call.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
import yaml

from shared.bounds import text_problem
from shared.engine.calendar import WEEKDAYS, Calendar, check_day, parse_interval
from shared.engine.durations import DurationError, parse_duration
from shared.events import Channel, Priority, Status
from shared.sla_events import Target

VERSION = 1
TARGETS: tuple[str, ...] = tuple(target.value for target in Target)  # the one list: Target
MATCH_KEYS: tuple[str, ...] = ("priority", "customer_tier", "channel", "group", "tags")
TOP_KEYS: tuple[str, ...] = ("version", "calendars", "pause_statuses", "defaults", "policies")
CALENDAR_KEYS: tuple[str, ...] = (
    "timezone",
    "always_open",
    "hours",
    "holidays",
    "closed_dates",
    "open_dates",
    "open_date_hours",
    "description",
)
HOLIDAY_KEYS: tuple[str, ...] = ("country", "subdiv")
DEFAULT_KEYS: tuple[str, ...] = ("calendar", "warn_at", "escalations", "pause_first_response")
POLICY_KEYS: tuple[str, ...] = (
    "id",
    "description",
    "match",
    "calendar",
    "targets",
    "warn_at",
    "escalations",
    "pause_first_response",
)
PAUSABLE_STATUSES: tuple[str, ...] = ("new", "open", "pending", "on_hold")
DONE_STATUSES: frozenset[str] = frozenset({Status.solved.value, Status.closed.value})
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
    pausable: bool
    # (elapsed ms at which it fires, kind, percent-or-level), ascending.
    thresholds: tuple[tuple[int, int, int], ...]
    breach_index: int


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

    def matches(
        self,
        priority: str | None,
        tier: str | None,
        channel: str | None,
        group: str | None,
        tags: Iterable[str],
    ) -> bool:
        m = self.match
        if not m:
            return True
        if "priority" in m and priority not in m["priority"]:
            return False
        if "customer_tier" in m and tier not in m["customer_tier"]:
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
    ) -> dict[str, Any]:
        """The ticket's values for the keys this policy matched on ({} for a catch-all)."""
        values: dict[str, Any] = {
            "priority": priority,
            "customer_tier": tier,
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
    _by_id: dict[str, Policy] = field(default_factory=dict, repr=False)
    _cache: dict[tuple, Policy] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {p.id: p for p in self.policies}
        _REGISTRY[self.fingerprint] = self

    def policy(self, policy_id: str) -> Policy:
        return self._by_id[policy_id]

    def get(self, policy_id: str) -> Policy | None:
        return self._by_id.get(policy_id)

    def select(
        self,
        priority: str | None,
        tier: str | None,
        channel: str | None,
        group: str | None,
        tags: tuple[str, ...],
    ) -> Policy:
        """The first policy whose match holds; there is always one (the catch-all)."""
        key = (priority, tier, channel, group, tags)
        found = self._cache.get(key)
        if found is None:
            found = next(
                p for p in self.policies if p.matches(priority, tier, channel, group, tags)
            )
            if len(self._cache) < 100_000:
                self._cache[key] = found
        return found


def registered(fingerprint: str) -> PolicySet | None:
    """The policy set with this fingerprint, if one is alive in this process."""
    return _REGISTRY.get(fingerprint)


# ---------------------------------------------------------------------------- loading
def load_policies(source: str | Path, *, text: str | None = None) -> PolicySet:
    """Load and compile a policy file; raises :class:`PolicyError` listing every problem.

    ``source`` is a path; pass ``text`` to compile a string (``source`` then only names it
    in messages).
    """
    name = str(source)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PolicyError(name, [Problem(0, "no such file")]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(name, [Problem(0, f"cannot read the file: {exc}")]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise PolicyError(name, [Problem(line, f"not valid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyError(name, [Problem(0, f"not valid YAML: {exc}")]) from None
    checker = _Checker(name)
    compiled = checker.document(root)
    if checker.problems or compiled is None:
        raise PolicyError(name, checker.problems or [Problem(0, "empty policy file")])
    return compiled


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def _scalar(node: yaml.Node) -> Any:
    """A scalar node's value with the YAML 1.1 core types (bool, int, float, null, str)."""
    return (
        yaml.SafeLoader(" ").construct_object(node, deep=True)
        if isinstance(node, yaml.ScalarNode)
        else None
    )


class _Checker:
    """Walks the composed YAML nodes, collecting problems and building the compiled set."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.declared_calendars: set[str] = set()

    def fail(self, node: yaml.Node | None, message: str) -> None:
        self.problems.append(Problem(_line(node), message))

    # -- generic shapes
    def mapping(
        self, node: yaml.Node | None, what: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if node is None:
            return None
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str):
                self.fail(key_node, f"{what}: keys must be strings, got {key!r}")
                continue
            if key in out:
                self.fail(key_node, f"{what}: duplicate key {key!r}")
                continue
            if allowed and key not in allowed:
                self.fail(
                    key_node,
                    f"unknown key {key!r} in {what} (expected one of: {', '.join(allowed)})",
                )
                continue
            out[key] = (key_node, value_node)
        return out

    def sequence(
        self, node: yaml.Node, what: str, *, allow_scalar: bool = False
    ) -> list[yaml.Node] | None:
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        if allow_scalar and isinstance(node, yaml.ScalarNode) and _scalar(node) is not None:
            return [node]
        self.fail(node, f"{what} must be a list")
        return None

    def string(self, node: yaml.Node, what: str, *, multiline: bool = False) -> str | None:
        value = _scalar(node)
        if isinstance(value, str) and value.strip():
            problem = text_problem(value, multiline=multiline)  # the rule of every contract
            if problem is not None:
                self.fail(node, f"{what} {problem}")
                return None
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.fail(node, f"{what} must be a non-empty string, got {value!r}")
        return None

    def boolean(self, node: yaml.Node, what: str) -> bool | None:
        value = _scalar(node)
        if isinstance(value, bool):
            return value
        self.fail(node, f"{what} must be true or false, got {value!r}")
        return None

    def duration(self, node: yaml.Node, what: str, *, allow_zero: bool) -> int | None:
        value = _scalar(node)
        try:
            seconds = parse_duration(value)  # type: ignore[arg-type]
        except DurationError as exc:
            self.fail(node, f"{what}: {exc}")
            return None
        if seconds == 0 and not allow_zero:
            self.fail(node, f"{what}: must be longer than zero")
            return None
        return seconds

    def interval_list(self, node: yaml.Node, what: str) -> list[tuple[int, int]] | None:
        items = self.sequence(node, what, allow_scalar=True)
        if items is None:
            return None
        out = []
        ok = True
        for item in items:
            value = _scalar(item)
            try:
                out.append(parse_interval(value))  # type: ignore[arg-type]
            except ValueError as exc:
                self.fail(item, f"{what}: {exc}")
                ok = False
        if ok:
            problem = check_day(out)
            if problem:
                self.fail(node, f"{what}: {problem}")
                return None
        return out if ok else None

    def dates(self, node: yaml.Node, what: str) -> list[tuple[date, yaml.Node]]:
        items = self.sequence(node, what)
        out = []
        for item in items or []:
            value = _scalar(item)
            if isinstance(value, date):
                out.append((value, item))
                continue
            try:
                out.append((date.fromisoformat(str(value)), item))
            except ValueError:
                self.fail(item, f"{what}: {value!r} is not a date (YYYY-MM-DD)")
        return out

    # -- the document
    def document(self, root: yaml.Node | None) -> PolicySet | None:
        if root is None:
            self.fail(None, "empty policy file")
            return None
        top = self.mapping(root, "the policy file", TOP_KEYS)
        if top is None:
            return None
        if "version" not in top:
            self.fail(root, "missing key 'version' (use: version: 1)")
        else:
            version = _scalar(top["version"][1])
            if version != VERSION:
                self.fail(
                    top["version"][1],
                    f"unsupported version {version!r} (this slawatch reads version {VERSION})",
                )
        calendars: dict[str, Calendar] = {}
        if "calendars" not in top:
            self.fail(root, "missing key 'calendars'")
        else:
            calendars = self.calendars(top["calendars"][1])
        pause: frozenset[str] = frozenset({"pending", "on_hold"})
        if "pause_statuses" in top:
            pause = self.pause_statuses(top["pause_statuses"][1])
        defaults = self.defaults(top["defaults"][1], calendars) if "defaults" in top else {}
        if "policies" not in top:
            self.fail(root, "missing key 'policies'")
            return None
        policies = self.policies(top["policies"][1], calendars, defaults, top["policies"][0])
        if self.problems:
            return None
        canonical = json.dumps(_plain(root), sort_keys=True, separators=(",", ":"), default=str)
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        return PolicySet(
            policies=tuple(policies),
            calendars=calendars,
            pause_statuses=pause,
            fingerprint=fingerprint,
            source=self.source,
        )

    def calendars(self, node: yaml.Node) -> dict[str, Calendar]:
        entries = self.mapping(node, "calendars", ())
        out: dict[str, Calendar] = {}
        if entries is None:
            return out
        if not entries:
            self.fail(node, "calendars: define at least one calendar")
        self.declared_calendars.update(entries)
        for name, (key_node, value) in entries.items():
            calendar = self.calendar(name, key_node, value)
            if calendar is not None:
                out[name] = calendar
        return out

    def calendar(self, name: str, key_node: yaml.Node, node: yaml.Node) -> Calendar | None:
        what = f"calendar {name!r}"
        fields = self.mapping(node, what, CALENDAR_KEYS)
        if fields is None:
            return None
        before = len(self.problems)
        timezone = "UTC"
        if "timezone" not in fields:
            self.fail(key_node, f"{what}: missing key 'timezone' (e.g. timezone: Asia/Shanghai)")
        else:
            tz_node = fields["timezone"][1]
            timezone = self.string(tz_node, f"{what}: timezone") or "UTC"
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                self.fail(
                    tz_node,
                    f"{what}: unknown time zone {timezone!r} (use an IANA name like Europe/Berlin)",
                )
        always = False
        if "always_open" in fields:
            always = bool(self.boolean(fields["always_open"][1], f"{what}: always_open"))
        hours: dict[str, list[tuple[int, int]]] = {}
        if "hours" in fields:
            if always:
                self.fail(
                    fields["hours"][0],
                    f"{what}: 'hours' and 'always_open: true' contradict each other",
                )
            day_map = self.mapping(fields["hours"][1], f"{what}: hours", WEEKDAYS)
            for day, (_day_key, day_node) in (day_map or {}).items():
                intervals = self.interval_list(day_node, f"{what}: {day}")
                if intervals is not None:
                    hours[day] = intervals
            if day_map is not None and not any(hours.values()) and len(self.problems) == before:
                self.fail(fields["hours"][1], f"{what}: hours has no open interval")
        elif not always:
            self.fail(
                key_node,
                f"{what}: needs 'hours' (weekday -> list of 'HH:MM-HH:MM') or 'always_open: true'",
            )
        country = subdiv = None
        if "holidays" in fields:
            hol = self.mapping(fields["holidays"][1], f"{what}: holidays", HOLIDAY_KEYS)
            if hol is not None:
                if "country" not in hol:
                    self.fail(fields["holidays"][1], f"{what}: holidays needs 'country' (e.g. CN)")
                else:
                    country = self.string(hol["country"][1], f"{what}: holidays country")
                if "subdiv" in hol:
                    subdiv = self.string(hol["subdiv"][1], f"{what}: holidays subdiv")
                if country:
                    try:
                        holidays_lib.country_holidays(country, subdiv=subdiv, years=2026)
                    except (NotImplementedError, KeyError, ValueError) as exc:
                        self.fail(
                            hol["country"][1],
                            f"{what}: holidays for country {country!r}"
                            f"{f' subdiv {subdiv!r}' if subdiv else ''} are not available: {exc}",
                        )
        closed = (
            self.dates(fields["closed_dates"][1], f"{what}: closed_dates")
            if "closed_dates" in fields
            else []
        )
        opened = (
            self.dates(fields["open_dates"][1], f"{what}: open_dates")
            if "open_dates" in fields
            else []
        )
        closed_set = {d for d, _ in closed}
        for both, day_node in opened:
            if both in closed_set:
                self.fail(day_node, f"{what}: {both} is in both closed_dates and open_dates")
        open_hours = None
        if "open_date_hours" in fields:
            open_hours = self.interval_list(
                fields["open_date_hours"][1], f"{what}: open_date_hours"
            )
        if always and (closed or opened or country):
            self.fail(
                node,
                f"{what}: an always_open calendar cannot have holidays, closed_dates or open_dates",
            )
        if len(self.problems) != before:
            return None
        return Calendar(
            name,
            timezone,
            always_open=always,
            hours=hours,
            country=country,
            subdiv=subdiv,
            closed_dates=closed_set,
            open_dates={d for d, _ in opened},
            open_date_hours=open_hours,
        )

    def pause_statuses(self, node: yaml.Node) -> frozenset[str]:
        items = self.sequence(node, "pause_statuses")
        out = set()
        for item in items or []:
            value = _scalar(item)
            if value in DONE_STATUSES:
                self.fail(
                    item,
                    f"pause_statuses: {value!r} cannot pause - solved/closed stop every clock already",
                )
            elif value not in PAUSABLE_STATUSES:
                self.fail(
                    item,
                    f"pause_statuses: unknown status {value!r} (expected some of: {', '.join(PAUSABLE_STATUSES)})",
                )
            else:
                out.add(value)
        return frozenset(out)

    def defaults(self, node: yaml.Node, calendars: Mapping[str, Calendar]) -> dict[str, Any]:
        fields = self.mapping(node, "defaults", DEFAULT_KEYS)
        return self.common(fields or {}, "defaults", calendars, {})

    def common(
        self,
        fields: Mapping[str, tuple[yaml.Node, yaml.Node]],
        what: str,
        calendars: Mapping[str, Calendar],
        inherited: Mapping[str, Any],
    ) -> dict[str, Any]:
        """calendar / warn_at / escalations / pause_first_response, shared by defaults and policies."""
        out = dict(inherited)
        if "calendar" in fields:
            node = fields["calendar"][1]
            name = self.string(node, f"{what}: calendar")
            if name is not None and name not in self.declared_calendars:
                known = ", ".join(sorted(self.declared_calendars)) or "none defined"
                self.fail(node, f"{what}: unknown calendar {name!r} (calendars: {known})")
            elif name is not None and name in calendars:
                out["calendar"] = calendars[name]
            elif name is not None:
                out["calendar_invalid"] = True
        if "warn_at" in fields:
            node = fields["warn_at"][1]
            fractions: list[float] = []
            for item in self.sequence(node, f"{what}: warn_at", allow_scalar=True) or []:
                value = _scalar(item)
                if (
                    isinstance(value, bool)
                    or not isinstance(value, (int, float))
                    or not 0 < value < 1
                ):
                    self.fail(
                        item,
                        f"{what}: warn_at: {value!r} is not a fraction between 0 and 1 (e.g. 0.8)",
                    )
                elif round(value * 100) in {round(f * 100) for f in fractions}:
                    self.fail(
                        item,
                        f"{what}: warn_at: {value!r} repeats a fraction (whole percents must differ)",
                    )
                else:
                    fractions.append(float(value))
            out["warn_at"] = tuple(sorted(fractions))
        if "escalations" in fields:
            node = fields["escalations"][1]
            offsets: list[int] = []
            for item in self.sequence(node, f"{what}: escalations", allow_scalar=True) or []:
                seconds = self.duration(item, f"{what}: escalations", allow_zero=True)
                if seconds is None:
                    continue
                if offsets and seconds <= offsets[-1]:
                    self.fail(
                        item, f"{what}: escalations must increase (level n+1 comes after level n)"
                    )
                    continue
                offsets.append(seconds)
            out["escalations"] = tuple(offsets)
        if "pause_first_response" in fields:
            value = self.boolean(fields["pause_first_response"][1], f"{what}: pause_first_response")
            if value is not None:
                out["pause_first_response"] = value
        return out

    def policies(
        self,
        node: yaml.Node,
        calendars: Mapping[str, Calendar],
        defaults: Mapping[str, Any],
        key_node: yaml.Node | None = None,
    ) -> list[Policy]:
        items = self.sequence(node, "policies")
        if items is None:
            return []
        if not items:
            self.fail(node, "policies: define at least one policy (and a catch-all with match: {})")
            return []
        out: list[Policy] = []
        seen: dict[str, int] = {}
        catch_all: tuple[str, int] | None = None
        for index, item in enumerate(items, start=1):
            fields = self.mapping(item, f"policy #{index}", POLICY_KEYS)
            if fields is None:
                continue
            if "id" not in fields:
                self.fail(item, f"policy #{index}: missing key 'id'")
                pid = f"#{index}"
            else:
                pid = self.string(fields["id"][1], f"policy #{index}: id") or f"#{index}"
                if pid in seen:
                    self.fail(
                        fields["id"][1],
                        f"policy {pid!r}: duplicate id (first used on line {seen[pid]})",
                    )
                seen[pid] = _line(fields["id"][1])
            what = f"policy {pid!r}"
            if catch_all is not None:
                self.fail(
                    item,
                    f"{what} can never apply: it comes after the catch-all policy {catch_all[0]!r} (line {catch_all[1]})",
                )
            match = self.match(fields.get("match", (None, None))[1], what)
            if match is not None and not match:
                catch_all = catch_all or (pid, _line(item))
            options = self.common(fields, what, calendars, defaults)
            if "calendar" not in options and "calendar" not in fields:
                self.fail(item, f"{what}: missing key 'calendar' (or set defaults.calendar)")
            targets_ms: dict[str, int] = {}
            if "targets" not in fields:
                self.fail(item, f"{what}: missing key 'targets'")
            else:
                entries = self.mapping(fields["targets"][1], f"{what}: targets", TARGETS) or {}
                for target, (_k, value_node) in entries.items():
                    seconds = self.duration(
                        value_node, f"{what}: targets: {target}", allow_zero=False
                    )
                    if seconds is not None:
                        targets_ms[target] = seconds * 1000
                if not entries and isinstance(fields["targets"][1], yaml.MappingNode):
                    self.fail(
                        fields["targets"][1],
                        f"{what}: targets: define at least one of {', '.join(TARGETS)}",
                    )
            description = None
            if "description" in fields:
                description = self.string(
                    fields["description"][1], f"{what}: description", multiline=True
                )
            calendar = options.get("calendar")
            if calendar is None or match is None:
                continue
            out.append(
                _compile_policy(pid, match, calendar, targets_ms, options, description, _line(item))
            )
        if catch_all is None:
            self.fail(
                key_node or node,
                "no catch-all policy: add a last policy with 'match: {}' so that every ticket gets an SLA",
            )
        return out

    def match(self, node: yaml.Node | None, what: str) -> dict[str, frozenset[str]] | None:
        if node is None:
            return {}
        if isinstance(node, yaml.ScalarNode) and _scalar(node) is None:
            return {}
        entries = self.mapping(node, f"{what}: match", MATCH_KEYS)
        if entries is None:
            return None
        out: dict[str, frozenset[str]] = {}
        allowed = {"priority": {p.value for p in Priority}, "channel": {c.value for c in Channel}}
        for key, (_key_node, value_node) in entries.items():
            items = self.sequence(value_node, f"{what}: match: {key}", allow_scalar=True)
            if items is None:
                continue
            values = set()
            rejected = False
            for item in items:
                value = self.string(item, f"{what}: match: {key}")
                if value is None:
                    continue
                if key in allowed and value not in allowed[key]:
                    self.fail(
                        item,
                        f"{what}: match: {key}: unknown value {value!r} (expected some of: {', '.join(sorted(allowed[key]))})",
                    )
                    rejected = True
                    continue
                values.add(value)
            if not values and not rejected:
                self.fail(
                    value_node,
                    f"{what}: match: {key} needs at least one value (leave the key out to match any)",
                )
                continue
            out[key] = frozenset(values)
        return out


def _compile_policy(
    pid: str,
    match: dict[str, frozenset[str]],
    calendar: Calendar,
    targets_ms: dict[str, int],
    options: Mapping[str, Any],
    description: str | None,
    line: int,
) -> Policy:
    warn_at: tuple[float, ...] = options.get("warn_at", ())
    escalations_s: tuple[int, ...] = options.get("escalations", ())
    pause_first = bool(options.get("pause_first_response", False))
    specs: dict[Target, TargetSpec] = {}
    for name in TARGETS:
        if name not in targets_ms:
            continue
        ms = targets_ms[name]
        thresholds = [(round(ms * f), WARN, round(f * 100)) for f in warn_at]
        thresholds.append((ms, BREACH, 0))
        thresholds += [
            (ms + s * 1000, ESCALATE, level) for level, s in enumerate(escalations_s, start=1)
        ]
        thresholds.sort(key=lambda t: (t[0], t[1]))
        breach_index = next(i for i, t in enumerate(thresholds) if t[1] == BREACH)
        target = Target(name)
        specs[target] = TargetSpec(
            name=name,
            target=target,
            policy=pid,
            ms=ms,
            calendar=calendar,
            pausable=(name != "first_response") or pause_first,
            thresholds=tuple(thresholds),
            breach_index=breach_index,
        )
    return Policy(
        id=pid,
        match=match,
        calendar=calendar,
        targets=specs,
        warn_at=warn_at,
        escalations=tuple(s * 1000 for s in escalations_s),
        pause_first_response=pause_first,
        description=description,
        line=line,
    )


def _plain(node: yaml.Node) -> Any:
    """Composed nodes back to plain data (for the fingerprint)."""
    if isinstance(node, yaml.MappingNode):
        return {str(_scalar(k)): _plain(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v) for v in node.value]
    return _scalar(node)


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema of the policy file (docs/schemas/policy.schema.json is generated from it).

    Built from the same key lists the loader checks against, so the two cannot drift; the
    loader checks more than a schema can (line numbers, overlaps, a reachable catch-all).
    """
    duration = {
        "type": "string",
        "pattern": r"^(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?$",
        "description": "e.g. 90s, 15m, 4h, 1h30m, 2d (d = 24 h of counted time)",
    }
    interval = {
        "type": "string",
        "pattern": r"^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$",
        "description": "HH:MM-HH:MM; an end before the start runs past midnight (22:00-06:00)",
    }
    intervals = {"type": "array", "items": interval}
    date_list = {"type": "array", "items": {"type": "string", "format": "date"}}
    one_or_many = {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]
    }
    common = {
        "calendar": {"type": "string", "description": "A name from `calendars`."},
        "warn_at": {
            "type": "array",
            "items": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        },
        "escalations": {
            "type": "array",
            "items": duration,
            "description": "Offsets after the breach (business time) of escalation levels 1..n.",
        },
        "pause_first_response": {"type": "boolean", "default": False},
    }
    match_props: dict[str, Any] = {key: one_or_many for key in MATCH_KEYS}
    match_props["priority"] = {
        "oneOf": [
            {"enum": [p.value for p in Priority]},
            {"type": "array", "items": {"enum": [p.value for p in Priority]}, "minItems": 1},
        ]
    }
    match_props["channel"] = {
        "oneOf": [
            {"enum": [c.value for c in Channel]},
            {"type": "array", "items": {"enum": [c.value for c in Channel]}, "minItems": 1},
        ]
    }
    calendar_schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["timezone"],
        "properties": {
            "timezone": {"type": "string", "description": "IANA time zone, e.g. Asia/Shanghai."},
            "always_open": {"type": "boolean"},
            "hours": {
                "type": "object",
                "additionalProperties": False,
                "properties": {day: intervals for day in WEEKDAYS},
            },
            "holidays": {
                "type": "object",
                "additionalProperties": False,
                "required": ["country"],
                "properties": {"country": {"type": "string"}, "subdiv": {"type": "string"}},
            },
            "closed_dates": date_list,
            "open_dates": date_list,
            "open_date_hours": intervals,
            "description": {"type": "string"},
        },
    }
    assert set(calendar_schema["properties"]) == set(CALENDAR_KEYS)
    policy_schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "targets"],
        "properties": {
            "id": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "match": {
                "type": "object",
                "additionalProperties": False,
                "properties": match_props,
                "description": "Each key: any of its values; all keys must hold. {} is the catch-all.",
            },
            "targets": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {t: duration for t in TARGETS},
            },
            **common,
        },
    }
    assert set(policy_schema["properties"]) == set(POLICY_KEYS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "SlawatchPolicies",
        "description": "The SLA policy file (docs/policies.md). `slawatch policy check FILE` checks more than this schema: line-numbered problems, overlapping intervals, a reachable catch-all policy.",
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "calendars", "policies"],
        "properties": {
            "version": {"const": VERSION},
            "calendars": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": calendar_schema,
            },
            "pause_statuses": {
                "type": "array",
                "items": {"enum": list(PAUSABLE_STATUSES)},
                "default": ["pending", "on_hold"],
            },
            "defaults": {"type": "object", "additionalProperties": False, "properties": common},
            "policies": {"type": "array", "minItems": 1, "items": policy_schema},
        },
    }
