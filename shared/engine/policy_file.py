"""The SLA policy file, declared once: pydantic models for its shape and per-value rules
(docs/schemas/policy.schema.json is generated from them), and the cross-field rules a
schema cannot say (a calendar that exists, a reachable catch-all, unique ids).

Read through the one config loader (shared/yamlsource.py), so every problem keeps its
line; messages are worded here, ``FILE:LINE: what: problem``, the way they always were.
shared/engine/policy.py compiles a valid file into the engine's :class:`PolicySet`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

import holidays as holidays_lib
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from slawatch.shared.bounds import is_time_zone, text_problem
from slawatch.shared.durations import Duration, PositiveDuration
from slawatch.shared.engine.calendar import WEEKDAYS, check_day, parse_interval
from slawatch.shared.events import Channel, Priority, Status
from slawatch.shared.sla_events import GROUP_TARGETS, TICKET_TARGETS
from slawatch.shared.yamlsource import Issue, Located, Refusal, fields_at

VERSION = 1
PAUSABLE_STATUSES: tuple[str, ...] = ("new", "open", "pending", "on_hold")
DONE_STATUSES: frozenset[str] = frozenset({Status.solved.value, Status.closed.value})

# Error kinds of this file's own rules: how the problem joins what it is about.
_AFTER_COLON = "policy"  # "policy 'vip': targets: bad ..."
_AFTER_SPACE = "policy_tail"  # "policy 'vip': id must be a non-empty string"
_WHOLE = "policy_whole"  # the message says everything


def _refuse(kind: str, message: str, **context: Any) -> PydanticCustomError:
    # Braces in values people wrote must not be read as template fields.
    return PydanticCustomError(kind, message.replace("{", "{{").replace("}", "}}"), context)


# ---------------------------------------------------------------------------- values
def _one_or_many(value: Any) -> Any:
    """A scalar where a list is expected is a list of one (``warn_at: 0.8``)."""
    return [value] if value is not None and not isinstance(value, list | dict) else value


def _name(multiline: bool) -> Any:
    def check(value: Any) -> str:
        if isinstance(value, str) and value.strip():
            problem = text_problem(value, multiline=multiline)  # the rule of every contract
            if problem is not None:
                raise _refuse(_AFTER_SPACE, problem)
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _refuse(_AFTER_SPACE, f"must be a non-empty string, got {value!r}")

    return check


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _refuse(_AFTER_SPACE, f"must be true or false, got {value!r}")


def _interval(value: Any) -> tuple[int, int]:
    try:
        return parse_interval(value)
    except (ValueError, TypeError) as exc:
        raise _refuse(_AFTER_COLON, str(exc)) from None


def _day(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    problem = check_day(intervals)
    if problem:
        raise _refuse(_AFTER_COLON, problem)
    return intervals


def _date(value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _refuse(_AFTER_COLON, f"{value!r} is not a date (YYYY-MM-DD)") from None


# Contract windows: a date (a whole local day of the policy's calendar) or an instant with an
# offset, within the years ticket events are held to.
_CONTRACT_YEARS = (1971, 2099)


def _moment(value: Any) -> date | datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise _refuse(
                _AFTER_COLON,
                f"{value!r} is neither a date (YYYY-MM-DD) nor an instant with an offset"
                " (2026-07-01T00:00:00+08:00)",
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _refuse(
                _AFTER_COLON,
                f"{value.isoformat()} has no offset (write it as 2026-07-01T00:00:00+08:00,"
                " or give a date)",
            )
    elif not isinstance(value, date):
        raise _refuse(_AFTER_COLON, f"{value!r} is not a date (YYYY-MM-DD) or an instant")
    if not _CONTRACT_YEARS[0] <= value.year <= _CONTRACT_YEARS[1]:
        raise _refuse(
            _AFTER_COLON,
            f"{value.isoformat()} is outside {_CONTRACT_YEARS[0]}..{_CONTRACT_YEARS[1]}",
        )
    return value


def _zone(value: str) -> str:
    if not is_time_zone(value):
        raise _refuse(
            _AFTER_COLON, f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
        )
    return value


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise _refuse(_AFTER_COLON, f"{value!r} is not a fraction between 0 and 1 (e.g. 0.8)")
    return float(value)


def _distinct_percents(fractions: list[float]) -> list[float]:
    seen: set[int] = set()
    for index, value in enumerate(fractions):
        if round(value * 100) in seen:
            raise _refuse(
                _AFTER_COLON,
                f"{value!r} repeats a fraction (whole percents must differ)",
                at=(index,),
            )
        seen.add(round(value * 100))
    return sorted(fractions)


def _increasing(offsets: list[timedelta]) -> list[timedelta]:
    for index in range(1, len(offsets)):
        if offsets[index] <= offsets[index - 1]:
            raise _refuse(
                _AFTER_SPACE, "must increase (level n+1 comes after level n)", at=(index,)
            )
    return offsets


def _choice(allowed: tuple[str, ...], what: str) -> Any:
    def check(value: Any) -> str:
        if value not in allowed:
            raise _refuse(
                _AFTER_COLON,
                f"unknown {what} {value!r} (expected some of: {', '.join(sorted(allowed))})",
            )
        return value

    return check


def _pause_status(value: Any) -> str:
    if value in DONE_STATUSES:
        raise _refuse(
            _AFTER_COLON, f"{value!r} cannot pause - solved/closed stop every clock already"
        )
    if value not in PAUSABLE_STATUSES:
        raise _refuse(
            _AFTER_COLON,
            f"unknown status {value!r} (expected some of: {', '.join(PAUSABLE_STATUSES)})",
        )
    return value


def _version(value: Any) -> int:
    if value != VERSION or isinstance(value, bool):
        raise _refuse(
            _WHOLE, f"unsupported version {value!r} (this slawatch reads version {VERSION})"
        )
    return VERSION


Name = Annotated[str, BeforeValidator(_name(False)), Field(min_length=1)]
Description = Annotated[str, BeforeValidator(_name(True))]
Flag = Annotated[bool, BeforeValidator(_flag)]
_INTERVAL_SCHEMA = {
    "type": "string",
    "pattern": r"^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$",
    "description": "HH:MM-HH:MM; an end before the start runs past midnight (22:00-06:00)",
}
Interval = Annotated[tuple[int, int], BeforeValidator(_interval), WithJsonSchema(_INTERVAL_SCHEMA)]
Intervals = Annotated[list[Interval], BeforeValidator(_one_or_many), AfterValidator(_day)]
Day = Annotated[date, BeforeValidator(_date)]
Moment = Annotated[
    date | datetime,
    BeforeValidator(_moment),
    WithJsonSchema(
        {
            "type": "string",
            "anyOf": [{"format": "date"}, {"format": "date-time"}],
            "description": "A date (the whole local day in the policy's calendar) or an"
            " RFC 3339 instant with an offset.",
        }
    ),
]
Fraction = Annotated[
    float,
    BeforeValidator(_fraction),
    Field(json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 1}),
]
PriorityName = Annotated[
    str,
    BeforeValidator(_choice(tuple(p.value for p in Priority), "value")),
    WithJsonSchema({"enum": [p.value for p in Priority]}),
]
ChannelName = Annotated[
    str,
    BeforeValidator(_choice(tuple(c.value for c in Channel), "value")),
    WithJsonSchema({"enum": [c.value for c in Channel]}),
]
# A match key's values: one or many, at least one.
PriorityValues = Annotated[list[PriorityName], BeforeValidator(_one_or_many), Field(min_length=1)]
ChannelValues = Annotated[list[ChannelName], BeforeValidator(_one_or_many), Field(min_length=1)]
NameValues = Annotated[list[Name], BeforeValidator(_one_or_many), Field(min_length=1)]
PauseStatus = Annotated[
    str, BeforeValidator(_pause_status), WithJsonSchema({"enum": list(PAUSABLE_STATUSES)})
]
# What can pause a clock: the ticket's status is one of pause_statuses, or the ticket has
# one of pause_tags. A target's ``pause`` entry names which of them pause it.
PAUSE_CONDITIONS: tuple[str, ...] = ("statuses", "tags")
PauseCondition = Annotated[
    str,
    BeforeValidator(_choice(PAUSE_CONDITIONS, "pause condition")),
    WithJsonSchema({"enum": list(PAUSE_CONDITIONS)}),
]


def _distinct(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise _refuse(_AFTER_COLON, f"{value!r} is listed twice", at=(index,))
        seen.add(value)
    return values


PauseOn = Annotated[
    list[PauseCondition],
    BeforeValidator(_one_or_many),
    AfterValidator(_distinct),
    Field(description="Which conditions pause this target: statuses, tags; [] never pauses it."),
]
PauseStatuses = Annotated[list[PauseStatus], AfterValidator(_distinct)]
PauseTags = Annotated[list[Name], BeforeValidator(_one_or_many), AfterValidator(_distinct)]


# ---------------------------------------------------------------------------- the file
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Holidays(_Section):
    """Public holidays of a country (and subdivision), from the `holidays` package."""

    country: Name = Field(description="ISO country code, e.g. CN.")
    subdiv: Name | None = None
    official_through: Day | None = Field(
        default=None,
        description="The last day for which you added the official dates by hand"
        " (closed_dates / open_dates) where the package only estimates: the coverage guard"
        " counts the calendar official through it.",
    )

    @model_validator(mode="after")
    def _available(self) -> Holidays:
        try:
            holidays_lib.country_holidays(self.country, subdiv=self.subdiv, years=2026)
        except (NotImplementedError, KeyError, ValueError) as exc:
            subdiv = f" subdiv {self.subdiv!r}" if self.subdiv else ""
            raise _refuse(
                _AFTER_SPACE,
                f"for country {self.country!r}{subdiv} are not available: {exc}",
                at=("country",),
            ) from None
        return self


class WeekHours(_Section):
    """Open intervals per weekday; a day left out is closed."""

    mon: Intervals | None = None
    tue: Intervals | None = None
    wed: Intervals | None = None
    thu: Intervals | None = None
    fri: Intervals | None = None
    sat: Intervals | None = None
    sun: Intervals | None = None

    def by_day(self) -> dict[str, list[tuple[int, int]]]:
        return {day: list(getattr(self, day)) for day in WEEKDAYS if getattr(self, day) is not None}


assert tuple(WeekHours.model_fields) == tuple(WEEKDAYS)


class CalendarFile(_Section):
    """A business calendar: when SLA time counts."""

    timezone: Annotated[Name, AfterValidator(_zone)] = Field(
        description="IANA time zone, e.g. Asia/Shanghai."
    )
    always_open: Flag = False
    hours: WeekHours | None = None
    holidays: Holidays | None = None
    closed_dates: list[Day] = []
    open_dates: list[Day] = []
    open_date_hours: Intervals | None = None
    description: Description | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CalendarFile:
        if self.hours is not None and self.always_open:
            raise _refuse(
                _AFTER_COLON,
                "'hours' and 'always_open: true' contradict each other",
                at=("hours",),
            )
        if self.hours is None and not self.always_open:
            raise _refuse(
                _AFTER_COLON,
                "needs 'hours' (weekday -> list of 'HH:MM-HH:MM') or 'always_open: true'",
            )
        if self.hours is not None and not any(self.hours.by_day().values()):
            raise _refuse(_AFTER_COLON, "hours has no open interval", at=("hours",))
        closed = set(self.closed_dates)
        for index, day in enumerate(self.open_dates):
            if day in closed:
                raise _refuse(
                    _AFTER_COLON,
                    f"{day} is in both closed_dates and open_dates",
                    at=("open_dates", index),
                )
        if self.always_open and (self.closed_dates or self.open_dates or self.holidays):
            raise _refuse(
                _AFTER_COLON,
                "an always_open calendar cannot have holidays, closed_dates or open_dates",
            )
        return self


class IdFile(_Section):
    """Customer ids kept in a file: one id a line; blank lines and ``#`` comments ignored."""

    file: Name = Field(description="Path of the file, relative to the policy file's folder.")


CustomerIds = Annotated[
    NameValues | IdFile,
    Field(description="Customer ids (a list), or {file: PATH} naming a file of ids."),
]


class Match(_Section):
    """Each key: any of its values; all keys must hold. ``{}`` is the catch-all."""

    priority: PriorityValues | None = None
    customer_tier: NameValues | None = None
    customer_id: CustomerIds | None = None
    channel: ChannelValues | None = None
    group: NameValues | None = None
    tags: NameValues | None = None

    def sets(self, customer_ids: frozenset[str] | None = None) -> dict[str, frozenset[str]]:
        """The match as sets of values; ``customer_ids`` are the ids read from an IdFile."""
        out = {}
        for key, values in self:
            if values is None:
                continue
            if isinstance(values, IdFile):
                out[key] = customer_ids if customer_ids is not None else frozenset()
            else:
                out[key] = frozenset(values)
        return out


class Targets(_Section):
    """How much counted time each target has; at least one."""

    first_response: PositiveDuration | None = None
    next_response: PositiveDuration | None = None
    periodic_update: PositiveDuration | None = None
    resolution: PositiveDuration | None = None

    @model_validator(mode="after")
    def _some(self) -> Targets:
        if not self.model_fields_set:
            raise _refuse(_AFTER_COLON, f"define at least one of {', '.join(TARGETS)}")
        return self

    def ms(self) -> dict[str, int]:
        return {
            name: length // timedelta(milliseconds=1) for name, length in self if length is not None
        }


TARGETS: tuple[str, ...] = tuple(Targets.model_fields)
assert TARGETS == tuple(t.value for t in TICKET_TARGETS), "the policy file's targets are Target's"


class PauseTargets(_Section):
    """Per target, which conditions pause it (JSM-style); a target left out takes its default:
    both, except first_response (none, unless pause_first_response: true)."""

    first_response: PauseOn | None = None
    next_response: PauseOn | None = None
    periodic_update: PauseOn | None = None
    resolution: PauseOn | None = None


assert tuple(PauseTargets.model_fields) == TARGETS


class OlaTargets(_Section):
    """A group's targets: ``ownership`` (counted time assigned to the group, until handed on
    or solved) and ``group_response`` (from the assignment to the first public agent reply)."""

    ownership: PositiveDuration | None = None
    group_response: PositiveDuration | None = None

    @model_validator(mode="after")
    def _some(self) -> OlaTargets:
        if not self.model_fields_set:
            raise _refuse(_AFTER_COLON, f"define at least one of {', '.join(OLA_TARGETS)}")
        return self

    def ms(self) -> dict[str, int]:
        return {
            name: length // timedelta(milliseconds=1) for name, length in self if length is not None
        }


class OlaPauseTargets(_Section):
    """Per OLA target, which conditions pause it; a target left out pauses on both."""

    ownership: PauseOn | None = None
    group_response: PauseOn | None = None


OLA_TARGETS: tuple[str, ...] = tuple(OlaTargets.model_fields)
# The OLA file key -> the SLA events' target.
OLA_TARGET_NAMES: dict[str, str] = dict(
    zip(OLA_TARGETS, (t.value for t in GROUP_TARGETS), strict=True)
)
assert tuple(OlaPauseTargets.model_fields) == OLA_TARGETS


CalendarName = Annotated[Name, Field(description="A name from `calendars`.")]
WarnAt = Annotated[
    list[Fraction], BeforeValidator(_one_or_many), AfterValidator(_distinct_percents)
]
Escalations = Annotated[
    list[Duration],
    BeforeValidator(_one_or_many),
    AfterValidator(_increasing),
    Field(description="Offsets after the breach (business time) of escalation levels 1..n."),
]


class Common(_Section):
    """What defaults give every policy, and a policy may set for itself."""

    calendar: CalendarName | None = None
    warn_at: WarnAt = []
    escalations: Escalations = []
    pause_first_response: Flag = False


class Defaults(Common):
    pass


class PolicyEntry(_Section):
    """One policy: the first whose match holds applies to a ticket."""

    id: Name
    description: Description | None = None
    match: Match | None = None
    calendar: CalendarName | None = None
    targets: Targets
    warn_at: WarnAt = []
    escalations: Escalations = []
    pause_first_response: Flag = False
    valid_from: Moment | None = Field(
        default=None,
        description="A contract's start: tickets created from then on may take this policy.",
    )
    valid_until: Moment | None = Field(
        default=None,
        description="A contract's end: tickets created after it no longer take this policy"
        " (a date is its whole day); a ticket created before keeps it.",
    )
    pause_statuses: PauseStatuses | None = Field(
        default=None,
        description="This policy's pause statuses; default: the file's pause_statuses.",
    )
    pause_tags: PauseTags | None = Field(
        default=None, description="Tags that pause the clocks; default: the file's pause_tags."
    )
    pause: PauseTargets | None = None

    def windowed(self) -> bool:
        return self.valid_from is not None or self.valid_until is not None


class OlaEntry(_Section):
    """A team OLA: targets for each group it names; each assignment to a group is a cycle."""

    id: Name
    description: Description | None = None
    group: NameValues = Field(description="The group (or groups) this OLA applies to.")
    calendar: CalendarName | None = Field(
        default=None, description="The group's calendar; default: defaults.calendar."
    )
    targets: OlaTargets
    warn_at: WarnAt | None = None
    escalations: Escalations | None = None
    pause_statuses: PauseStatuses | None = None
    pause_tags: PauseTags | None = None
    pause: OlaPauseTargets | None = None


class PolicyFile(_Section):
    """The SLA policy file (docs/policies.md). `slawatch policy check FILE` checks more than
    this schema: line-numbered problems, overlapping intervals, a reachable catch-all policy."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="SlawatchPolicies")

    version: Annotated[int, BeforeValidator(_version), WithJsonSchema({"const": VERSION})]
    calendars: Annotated[dict[Name, CalendarFile], Field(min_length=1)]
    pause_statuses: PauseStatuses = Field(default_factory=lambda: ["pending", "on_hold"])
    pause_tags: PauseTags = Field(
        default_factory=list, description="Tags that pause the clocks of every policy by default."
    )
    defaults: Defaults = Defaults()
    policies: Annotated[list[PolicyEntry], Field(min_length=1)]
    olas: list[OlaEntry] = Field(default_factory=list, description="Team OLAs (group SLAs).")


COMMON_KEYS = tuple(Common.model_fields)
assert set(COMMON_KEYS) <= set(PolicyEntry.model_fields)


# ---------------------------------------------------------------------------- wording
_MISSING = {
    "version": "missing key 'version' (use: version: 1)",
    "calendars": "missing key 'calendars'",
    "policies": "missing key 'policies'",
}


def where(doc: Located, path: tuple, kind: str = "") -> str:
    """What a path is about, in the words of the messages: "policy 'vip': targets"."""
    if not path:
        return "the policy file"
    head, rest = path[0], [p for p in path[1:] if isinstance(p, str)]
    if head == "calendars" and len(path) > 1:
        what = f"calendar {path[1]!r}"
        rest = [p for p in path[2:] if isinstance(p, str)]
        if rest[:1] == ["hours"] and len(rest) > 1:
            rest = rest[1:]  # "calendar 'office': mon"
        if rest == ["holidays", "country"] or rest == ["holidays", "subdiv"]:
            return f"{what}: holidays {rest[1]}"
    elif head == "policies" and len(path) > 1 and isinstance(path[1], int):
        index = path[1]
        entry = doc.data["policies"][index] if _is_list_at(doc.data, index) else None
        pid = entry.get("id") if isinstance(entry, dict) else None
        usable = (
            isinstance(pid, str | int | float) and not isinstance(pid, bool) and str(pid).strip()
        )
        if (kind == "extra_forbidden" and not rest) or rest == ["id"] or not usable:
            what = f"policy #{index + 1}"
        else:
            what = f"policy {str(pid)!r}"
    elif head == "olas" and len(path) > 1 and isinstance(path[1], int):
        items = doc.data.get("olas") if isinstance(doc.data, dict) else None
        entry = items[path[1]] if isinstance(items, list) and path[1] < len(items) else None
        oid = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(oid, str) and oid.strip() and rest != ["id"]:
            what = f"ola {oid!r}"
        else:
            what = f"ola #{path[1] + 1}"
    else:
        what, rest = str(head), rest
    return ": ".join([what, *rest])


def _is_list_at(data: Any, index: int) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("policies"), list)
        and index < len(data["policies"])
    )


def word(doc: Located, refusal: Refusal) -> Issue:
    """A pydantic problem in this file's words, on its line."""
    line = doc.line(refusal.line_path) or 0
    path, kind = refusal.path, refusal.kind
    if kind == "extra_forbidden":
        allowed = fields_at(PolicyFile, path[:-1]) or ()
        return Issue(
            line,
            f"unknown key {path[-1]!r} in {where(doc, path[:-1], kind)} (expected one of: {', '.join(allowed)})",
        )
    if kind == "missing":
        key, parent = path[-1], path[:-1]
        if not parent:
            return Issue(line, _MISSING.get(str(key), f"missing key {key!r}"))
        if key == "country":
            return Issue(line, f"{where(doc, parent)} needs 'country' (e.g. CN)")
        hint = " (e.g. timezone: Asia/Shanghai)" if key == "timezone" else ""
        return Issue(line, f"{where(doc, parent, kind)}: missing key {key!r}{hint}")
    what = where(doc, path)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return Issue(line, f"{what} must be a mapping")
    if kind == "list_type":
        return Issue(line, f"{what} must be a list")
    if kind == "too_short" and path == ("calendars",):
        return Issue(line, "calendars: define at least one calendar")
    if kind == "too_short" and path == ("policies",):
        return Issue(line, "policies: define at least one policy (and a catch-all with match: {})")
    if kind == "too_short":
        return Issue(line, f"{what} needs at least one value (leave the key out to match any)")
    if kind == _WHOLE:
        return Issue(line, refusal.message)
    if kind == _AFTER_SPACE:
        return Issue(line, f"{what} {refusal.message}")
    return Issue(line, f"{what}: {refusal.message}")


# ---------------------------------------------------------------------------- cross-field rules
def cross_check(doc: Located, file: PolicyFile) -> list[Issue]:
    """What no single value says: calendars that exist, unique ids, a reachable catch-all."""
    issues: list[Issue] = []
    declared = sorted(file.calendars)

    def known_calendar(name: str | None, path: tuple, what: str) -> None:
        if name is not None and name not in file.calendars:
            known = ", ".join(declared) or "none defined"
            issues.append(
                Issue(
                    doc.line(path) or 0, f"{what}: unknown calendar {name!r} (calendars: {known})"
                )
            )

    known_calendar(file.defaults.calendar, ("defaults", "calendar"), "defaults")
    seen: dict[str, int] = {}
    catch_all: tuple[str, int] | None = None
    for index, entry in enumerate(file.policies):
        item = ("policies", index)
        what = f"policy {entry.id!r}"
        if entry.id in seen:
            issues.append(
                Issue(
                    doc.line(item + ("id",)) or 0,
                    f"{what}: duplicate id (first used on line {seen[entry.id]})",
                )
            )
        seen.setdefault(entry.id, doc.line(item + ("id",)) or 0)
        if catch_all is not None:
            issues.append(
                Issue(
                    doc.line(item) or 0,
                    f"{what} can never apply: it comes after the catch-all policy {catch_all[0]!r} (line {catch_all[1]})",
                )
            )
        elif (entry.match is None or not entry.match.sets()) and not entry.windowed():
            catch_all = (entry.id, doc.line(item) or 0)
        known_calendar(entry.calendar, item + ("calendar",), what)
        if entry.calendar is None and file.defaults.calendar is None:
            issues.append(
                Issue(
                    doc.line(item) or 0,
                    f"{what}: missing key 'calendar' (or set defaults.calendar)",
                )
            )
        issues.extend(_pause_contradictions(doc, file, entry, item, what))
    issues.extend(_ola_problems(doc, file, known_calendar))
    if catch_all is None:
        issues.append(
            Issue(
                doc.line(("policies",)) or 0,
                "no catch-all policy: add a last policy with 'match: {}' so that every ticket gets an SLA",
            )
        )
    return issues


def pause_plan(
    file: PolicyFile, entry: PolicyEntry | OlaEntry
) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Per target (the file's key), what pauses it: (statuses, tags). The precedence
    (docs/policies.md, "Pausing"): the target's own ``pause`` entry picks the conditions;
    the entry's ``pause_statuses`` / ``pause_tags`` give them, else the file's; a target
    with no ``pause`` entry pauses on both, except first_response, which pauses on both
    only with ``pause_first_response: true`` (on none otherwise)."""
    statuses = frozenset(
        entry.pause_statuses if entry.pause_statuses is not None else file.pause_statuses
    )
    tags = frozenset(entry.pause_tags if entry.pause_tags is not None else file.pause_tags)
    plan: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    if isinstance(entry, OlaEntry):
        names: tuple[str, ...] = OLA_TARGETS
        given: dict[str, Any] = dict(entry.pause) if entry.pause is not None else {}
        pause_first = False
    else:
        names = TARGETS
        given = dict(entry.pause) if entry.pause is not None else {}
        pause_first = bool(options(file, entry)["pause_first_response"])
    for name in names:
        conditions = given.get(name)
        if conditions is None:
            conditions = () if name == "first_response" and not pause_first else PAUSE_CONDITIONS
        plan[name] = (
            statuses if "statuses" in conditions else frozenset(),
            tags if "tags" in conditions else frozenset(),
        )
    return plan


def _pause_contradictions(
    doc: Located, file: PolicyFile, entry: PolicyEntry | OlaEntry, item: tuple, what: str
) -> list[Issue]:
    """What `slawatch policy check` refuses about pausing: settings that say opposite things,
    or that can never hold (a clock that would never run)."""
    issues: list[Issue] = []

    def refuse(path: tuple, message: str) -> None:
        issues.append(Issue(doc.line(item + path) or doc.line(item) or 0, f"{what}: {message}"))

    given = dict(entry.pause) if entry.pause is not None else {}
    given = {k: v for k, v in given.items() if v is not None}
    defined = entry.targets.ms()
    for name in given:
        if name not in defined:
            refuse(("pause", name), f"pause.{name}: the target {name!r} is not in its targets")
    if isinstance(entry, PolicyEntry) and "first_response" in given:
        explicit = "pause_first_response" in entry.model_fields_set
        pause_first = bool(options(file, entry)["pause_first_response"])
        if (pause_first and not given["first_response"]) or (
            explicit and not pause_first and given["first_response"]
        ):
            refuse(
                ("pause", "first_response"),
                f"pause.first_response {list(given['first_response'])} contradicts "
                f"pause_first_response: {str(pause_first).lower()} (say it once, in pause)",
            )
    statuses = entry.pause_statuses if entry.pause_statuses is not None else file.pause_statuses
    tags = entry.pause_tags if entry.pause_tags is not None else file.pause_tags
    for name, conditions in given.items():
        if "statuses" in conditions and not statuses:
            refuse(("pause", name), f"pause.{name} pauses on statuses, but pause_statuses is empty")
        if "tags" in conditions and not tags:
            refuse(("pause", name), f"pause.{name} pauses on tags, but pause_tags is empty")
    plan = pause_plan(file, entry)
    running = [n for n in defined if plan[n][0] or plan[n][1]]
    if running and set(PAUSABLE_STATUSES) <= set(statuses):
        if any(plan[n][0] for n in running):
            refuse(
                ("pause_statuses",),
                "pause_statuses lists every open status: its clocks could never run",
            )
    match_tags = entry.match.tags if isinstance(entry, PolicyEntry) and entry.match else None
    if match_tags and set(match_tags) <= set(tags) and any(plan[n][1] for n in running):
        refuse(
            ("pause_tags",),
            f"it matches tickets by tags {sorted(match_tags)} and pauses on them: "
            "its clocks could never run",
        )
    return issues


def _ola_problems(doc: Located, file: PolicyFile, known_calendar: Any) -> list[Issue]:
    """OLAs: a calendar that exists, unique ids, each group under one OLA."""
    issues: list[Issue] = []
    ids: dict[str, int] = {}
    groups: dict[str, str] = {}
    for index, entry in enumerate(file.olas):
        item = ("olas", index)
        what = f"ola {entry.id!r}"
        line = doc.line(item) or 0
        if entry.id in ids:
            issues.append(Issue(line, f"{what}: duplicate id (first used on line {ids[entry.id]})"))
        ids.setdefault(entry.id, line)
        for group in entry.group:
            if group in groups:
                issues.append(
                    Issue(
                        doc.line(item + ("group",)) or line,
                        f"{what}: group {group!r} already has ola {groups[group]!r}",
                    )
                )
            groups.setdefault(group, entry.id)
        known_calendar(entry.calendar, item + ("calendar",), what)
        if entry.calendar is None and file.defaults.calendar is None:
            issues.append(Issue(line, f"{what}: missing key 'calendar' (or set defaults.calendar)"))
        issues.extend(_pause_contradictions(doc, file, entry, item, what))
    return issues


def options(file: PolicyFile, entry: PolicyEntry) -> dict[str, Any]:
    """A policy's calendar, warn_at, escalations and pause_first_response: its own where it
    sets them, else the defaults'."""
    out = {}
    for key in COMMON_KEYS:
        source = entry if key in entry.model_fields_set else file.defaults
        out[key] = getattr(source, key)
    return out


def json_schema() -> dict[str, Any]:
    """The policy file's JSON Schema, generated from the models."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **PolicyFile.model_json_schema(),
    }
