"""Matchers: the one language routes and silences use to pick SLA events.

``match`` tests equality against one value or any of a list; ``match_re`` tests a full
regular-expression match; ``level``/``level_gte``/``level_lte`` test the escalation level
(a breach is level 0, an escalation its level; other kinds have no level, so a level
matcher never matches them). ``tags`` matches when the ticket has any of the tags. All
tests must hold (AND); an empty matcher matches everything, as Alertmanager's root route.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slawatch.services.notifier.model import escalation_level
from slawatch.shared.bounds import text_problem
from slawatch.shared.sla_events import SlaEvent, SlaKind, Target

# Attribute name -> how to read it from an event. `receiver` exists only for silences.
STRING_FIELDS = (
    "kind",
    "target",
    "policy",
    "customer_tier",
    "priority",
    "channel",
    "group",
    "ticket_id",
    "assignee",
    "tags",
)
LEVEL_FIELDS = ("level", "level_gte", "level_lte")
KINDS = {k.value for k in SlaKind}
TARGETS = {t.value for t in Target}
# Bounds (docs/configuration.md, "Input limits"): matcher values are the event's strings.
MAX_VALUE_LENGTH = 256
MAX_VALUES = 100
MAX_PATTERN_LENGTH = 1024
MAX_LEVEL = 1000


class MatcherError(ValueError):
    """A matcher that cannot be built; ``field`` names the offending key."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


def normalise_kind(value: str) -> str:
    """`breached` and `sla.breached` mean the same; stored in the event's spelling."""
    full = value if value.startswith("sla.") else f"sla.{value}"
    if full not in KINDS:
        raise MatcherError(
            "kind",
            f"unknown kind {value!r}; expected one of "
            + ", ".join(sorted(k.removeprefix("sla.") for k in KINDS)),
        )
    return full


def _values(name: str, raw: Any) -> frozenset[str]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise MatcherError(name, f"`{name}` needs at least one value")
    if len(items) > MAX_VALUES:
        raise MatcherError(name, f"`{name}` has more than {MAX_VALUES} values")
    out = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise MatcherError(name, f"`{name}` values must be strings")
        if isinstance(item, int) and abs(item) >= 10**MAX_VALUE_LENGTH:
            raise MatcherError(name, f"`{name}` values are at most {MAX_VALUE_LENGTH} characters")
        text = str(item)
        if len(text) > MAX_VALUE_LENGTH:
            raise MatcherError(name, f"`{name}` values are at most {MAX_VALUE_LENGTH} characters")
        problem = text_problem(text)
        if problem is not None:
            raise MatcherError(name, f"`{name}` values {problem}")
        if name == "kind":
            text = normalise_kind(text)
        elif name == "target" and text not in TARGETS:
            raise MatcherError(
                name, f"unknown target {text!r}; expected one of {', '.join(sorted(TARGETS))}"
            )
        out.add(text)
    return frozenset(out)


def _shown(name: Any) -> str:
    """An unknown key as it may be shown back: escaped and cut (it came from anyone)."""
    text = str(name)
    if len(text) <= 64 and text_problem(text) is None:
        return text
    return repr(text[:64])


def _level(name: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_LEVEL:
        raise MatcherError(name, f"`{name}` must be a whole number >= 0 (at most {MAX_LEVEL})")
    return raw


@dataclass(frozen=True)
class Matchers:
    equal: Mapping[str, frozenset[str]] = field(default_factory=dict)
    regex: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    level_eq: int | None = None
    level_gte: int | None = None
    level_lte: int | None = None

    @classmethod
    def parse(
        cls,
        match: Mapping[str, Any] | None,
        match_re: Mapping[str, Any] | None = None,
        *,
        extra_fields: tuple[str, ...] = (),
    ) -> Matchers:
        """Build from the routing file's / silence API's shape; raises MatcherError."""
        allowed = STRING_FIELDS + extra_fields
        equal: dict[str, frozenset[str]] = {}
        levels: dict[str, int] = {}
        for name, raw in (match or {}).items():
            if name in LEVEL_FIELDS:
                levels[name] = _level(name, raw)
            elif name in allowed:
                equal[name] = _values(name, raw)
            else:
                raise MatcherError(
                    _shown(name),
                    f"unknown matcher `{_shown(name)}`; expected one of "
                    + ", ".join(allowed + LEVEL_FIELDS),
                )
        regex: dict[str, re.Pattern[str]] = {}
        for name, raw in (match_re or {}).items():
            if name not in allowed:
                raise MatcherError(
                    _shown(name),
                    f"unknown matcher `{_shown(name)}`; expected one of {', '.join(allowed)}",
                )
            if not isinstance(raw, str):
                raise MatcherError(name, f"`{name}` must be a regular expression string")
            if len(raw) > MAX_PATTERN_LENGTH:
                raise MatcherError(name, f"`{name}` is longer than {MAX_PATTERN_LENGTH} characters")
            problem = text_problem(raw)
            if problem is not None:
                raise MatcherError(name, f"`{name}` {problem}")
            try:
                regex[name] = re.compile(raw)
            except (re.error, OverflowError, RecursionError) as exc:
                raise MatcherError(
                    name, f"`{name}` is not a valid regular expression: {exc}"
                ) from None
        lo, hi = levels.get("level_gte"), levels.get("level_lte")
        if lo is not None and hi is not None and lo > hi:
            raise MatcherError(
                "level_gte", "`level_gte` is greater than `level_lte`: nothing can match"
            )
        return cls(equal, regex, levels.get("level"), lo, hi)

    @property
    def empty(self) -> bool:
        return (
            not (self.equal or self.regex)
            and self.level_eq is self.level_gte is self.level_lte is None
        )

    def matches(self, event: SlaEvent, receiver: str | None = None) -> bool:
        for name, wanted in self.equal.items():
            if name == "tags":
                if wanted.isdisjoint(event.tags):
                    return False
            elif _attribute(event, name, receiver) not in wanted:
                return False
        for name, pattern in self.regex.items():
            if name == "tags":
                if not any(pattern.fullmatch(tag) for tag in event.tags):
                    return False
                continue
            value = _attribute(event, name, receiver)
            if value is None or not pattern.fullmatch(value):
                return False
        if self.level_eq is not None or self.level_gte is not None or self.level_lte is not None:
            level = escalation_level(event)
            if level is None:
                return False
            if self.level_eq is not None and level != self.level_eq:
                return False
            if self.level_gte is not None and level < self.level_gte:
                return False
            if self.level_lte is not None and level > self.level_lte:
                return False
        return True

    def describe(self) -> dict[str, Any]:
        """The JSON shape (for the silences API): the inverse of :meth:`parse`."""
        out: dict[str, Any] = {"match": {}, "match_re": {}}
        for name, values in self.equal.items():
            out["match"][name] = sorted(values)
        for name, level in (
            ("level", self.level_eq),
            ("level_gte", self.level_gte),
            ("level_lte", self.level_lte),
        ):
            if level is not None:
                out["match"][name] = level
        for name, pattern in self.regex.items():
            out["match_re"][name] = pattern.pattern
        return out


def _attribute(event: SlaEvent, name: str, receiver: str | None) -> str | None:
    if name == "receiver":
        return receiver
    value = getattr(event, name)
    if value is None:
        return None
    return value.value if isinstance(value, SlaKind | Target) else str(value)
