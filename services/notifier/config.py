"""The routing file (``SLAWATCH_ROUTES_FILE``): receivers, integrations and ordered routes.

Loading never raises on bad content: every problem is collected with its line, so
``slawatch routes check`` can list them all at once, and the service refuses to start
with the same messages. Values that may be secrets (webhook URLs, signing secrets,
passwords, header values, anything from ``${VAR}``) are wrapped in :class:`Secret` and
never appear in a message, a repr or a log line.

See docs/notifications.md for the format and docs/schemas/routes.schema.json for its
JSON Schema.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.notifier.matchers import MatcherError, Matchers
from services.notifier.providers import (
    COMMON_FIELDS,
    DEFAULT_TIMEOUT_S,
    PROVIDERS,
    Kind,
    RateLimit,
)
from shared.bounds import MAX_DURATION_DAYS, MAX_DURATION_SECONDS, text_problem
from shared.sla_events import SlaEvent
from shared.yamlsource import Issue, Located, describe, load_located

LANGUAGES = ("en", "zh")
GROUP_BY_FIELDS = (
    "kind",
    "target",
    "policy",
    "customer_tier",
    "priority",
    "channel",
    "group",
    "ticket_id",
    "assignee",
)
RECEIVER_DEFAULTS: dict[str, Any] = {
    "language": "en",
    "group_wait": timedelta(seconds=30),
    "group_interval": timedelta(minutes=5),
    "repeat_interval": timedelta(hours=4),
    "repeat_limit": 12,
    "group_by": (),
    "send_resolved": False,
    "timezone": "UTC",
}
RECEIVER_KEYS = (
    "name",
    "integrations",
    "quiet_hours",
    *RECEIVER_DEFAULTS,
)
TOP_KEYS = ("version", "defaults", "receivers", "routes", "default_receiver")
ROUTE_KEYS = ("match", "match_re", "receiver", "continue")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class Secret:
    """A string that refuses to be printed. ``reveal()`` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def reveal(value: Any) -> Any:
    return value.reveal() if isinstance(value, Secret) else value


# --- durations and rate limits ------------------------------------------------------

_DURATION_PART = re.compile(r"(\d{1,12}(?:\.\d{1,9})?)(ms|s|m|h|d)", re.ASCII)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TOO_LONG = f"a duration is at most {MAX_DURATION_DAYS}d"


def _bounded(seconds: float) -> timedelta:
    if not 0 <= seconds <= MAX_DURATION_SECONDS:  # also refuses NaN
        raise ValueError("a duration cannot be negative" if seconds < 0 else _TOO_LONG)
    return timedelta(seconds=seconds)


def parse_duration(value: Any) -> timedelta:
    """``30s``, ``5m``, ``1h30m``, ``250ms``, ``2d``; a bare number means seconds; at most
    MAX_DURATION_DAYS (shared/bounds.py), like every duration in slawatch."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m or 4h")
    if isinstance(value, int | float):
        return _bounded(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration like 30s, 5m or 4h")
    text = value.strip().replace(" ", "")
    if re.fullmatch(r"\d{1,12}(\.\d{1,9})?", text, re.ASCII):
        return _bounded(float(text))
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        shown = repr(value) if len(value) <= 40 else repr(value[:40]) + "..."
        raise ValueError(f"{shown} is not a duration; write e.g. 30s, 5m, 1h30m or 250ms")
    return _bounded(total)


_RATE_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}


def parse_rate_limits(value: Any) -> tuple[RateLimit, ...]:
    """``20/min``, ``5/s``, ``[5/s, 100/min]``, ``20/61s`` or ``none`` (no limit)."""
    if isinstance(value, str) and value.strip().lower() in ("none", "off", "unlimited"):
        return ()
    items = value if isinstance(value, list) else [value]
    limits = []
    for item in items:
        if not isinstance(item, str) or "/" not in item:
            raise ValueError("expected N/s, N/min, N/h, N/<duration>, a list of them, or none")
        count_text, per_text = (part.strip() for part in item.split("/", 1))
        if not count_text.isdigit() or int(count_text) < 1:
            raise ValueError(f"{item!r}: the count must be a whole number >= 1")
        per = _RATE_UNITS.get(per_text.lower())
        if per is None:
            per = parse_duration(per_text).total_seconds()
        if per <= 0:
            raise ValueError(f"{item!r}: the window must be longer than zero")
        limits.append(RateLimit(int(count_text), per))
    return tuple(limits)


# --- the model ------------------------------------------------------------------------


@dataclass(frozen=True)
class IntegrationSpec:
    type: str
    name: str
    options: Mapping[str, Any]  # secrets are Secret instances
    timeout: float = DEFAULT_TIMEOUT_S
    rate_limits: tuple[RateLimit, ...] = ()
    max_events_per_message: int = 20
    line: int | None = None


@dataclass(frozen=True)
class Receiver:
    name: str
    integrations: tuple[IntegrationSpec, ...]
    language: str = "en"
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta | None = timedelta(hours=4)  # None: never repeat
    repeat_limit: int = 12  # reminders per breach at most; 0: no limit
    group_by: tuple[str, ...] = ()
    send_resolved: bool = False
    timezone: str = "UTC"  # how times are shown in its messages
    calendar: str | None = None  # quiet hours: notify only while this calendar is open
    fallback: str | None = None  # ... and send to this receiver meanwhile, if set
    line: int | None = None

    def integration(self, name: str) -> IntegrationSpec:
        for spec in self.integrations:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True)
class Route:
    matchers: Matchers
    receiver: str
    continue_: bool = False
    line: int | None = None


@dataclass(frozen=True)
class RoutingConfig:
    receivers: Mapping[str, Receiver]
    routes: tuple[Route, ...]
    default_receiver: str | None = None
    source: str = "<routes>"
    calendars: frozenset[str] = field(default_factory=frozenset)

    def route(self, event: SlaEvent) -> list[str]:
        """The receivers an event goes to, in route order, each once.

        Routes are tried in order; the first match wins unless it says ``continue: true``,
        in which case later routes are tried too. No match: the default receiver, if any.
        """
        chosen: list[str] = []
        for route in self.routes:
            if route.matchers.matches(event):
                if route.receiver not in chosen:
                    chosen.append(route.receiver)
                if not route.continue_:
                    break
        if not chosen and self.default_receiver:
            chosen.append(self.default_receiver)
        return chosen


class RoutesError(Exception):
    """The routing file has problems; each issue carries its line."""

    def __init__(self, source: str, issues: list[Issue]) -> None:
        self.source = source
        self.issues = sorted(issues, key=lambda i: (i.line or 0, i.message))
        super().__init__("\n".join(issue.render(source) for issue in self.issues))


# --- loading --------------------------------------------------------------------------


def load_routes(
    path: str | Path,
    env: Mapping[str, str] | None = None,
    *,
    calendars: Collection[str] | None = None,
    allow_unset_env: bool = False,
) -> RoutingConfig:
    """Read and validate a routing file; raises :class:`RoutesError` listing every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RoutesError(source, [Issue(None, f"cannot read the file: {reason}")]) from None
    return parse_routes(text, source, env, calendars=calendars, allow_unset_env=allow_unset_env)


def parse_routes(
    text: str,
    source: str = "<routes>",
    env: Mapping[str, str] | None = None,
    *,
    calendars: Collection[str] | None = None,
    allow_unset_env: bool = False,
) -> RoutingConfig:
    doc = load_located(text, os.environ if env is None else env, allow_unset_env=allow_unset_env)
    for path, key, line in doc.duplicate_keys:
        doc.issues.append(Issue(line, f"duplicate key `{key}` in {describe(path)}"))
    for _path, _key, line in doc.bad_keys:
        doc.issues.append(Issue(line, "mapping keys must be plain strings"))
    if doc.issues and doc.data is None:
        raise RoutesError(source, doc.issues)
    config = _Validator(doc, source, calendars).run()
    if doc.issues:
        raise RoutesError(source, doc.issues)
    assert config is not None
    return config


class _Validator:
    def __init__(self, doc: Located, source: str, calendars: Collection[str] | None) -> None:
        self.doc = doc
        self.source = source
        self.calendars = None if calendars is None else frozenset(calendars)

    def issue(self, path: tuple, message: str) -> None:
        self.doc.issue(path, message)

    def unknown_keys(self, data: dict, allowed: Collection[str], path: tuple) -> None:
        for key in data:
            if key not in allowed:
                hint = _closest(key, allowed)
                self.issue(
                    path + (key,),
                    f"unknown key `{key}` in {describe(path)}"
                    + (f" (did you mean `{hint}`?)" if hint else ""),
                )

    def run(self) -> RoutingConfig | None:
        data = self.doc.data
        if not isinstance(data, dict):
            self.issue((), "the routing file must be a mapping with `receivers` and `routes`")
            return None
        self.unknown_keys(data, TOP_KEYS, ())
        self.control_characters(data, ())
        if "version" in data and data["version"] != 1:
            self.issue(("version",), "`version` must be 1")
        defaults = self.receiver_defaults(data.get("defaults"))
        receivers = self.receivers(data.get("receivers"), defaults)
        routes = self.routes(data.get("routes"), receivers)
        default_receiver = data.get("default_receiver")
        if default_receiver is not None and default_receiver not in receivers:
            self.issue(
                ("default_receiver",),
                f"`default_receiver` names unknown receiver {default_receiver!r}",
            )
        self.check_fallbacks(receivers)
        return RoutingConfig(
            receivers=receivers,
            routes=tuple(routes),
            default_receiver=default_receiver if default_receiver in receivers else None,
            source=self.source,
            calendars=frozenset(r.calendar for r in receivers.values() if r.calendar),
        )

    def control_characters(self, data: Any, path: tuple) -> None:
        """The text rule of every slawatch contract (shared/bounds.py), for every key and
        string in the file: values may hold tab and line breaks, keys nothing of the kind."""
        if isinstance(data, dict):
            for key, value in data.items():
                problem = text_problem(key) if isinstance(key, str) else None
                if problem is not None:
                    self.issue(path, f"a key in {describe(path)} {problem}")
                self.control_characters(value, path + (key,))
        elif isinstance(data, list):
            for index, item in enumerate(data):
                self.control_characters(item, path + (index,))
        elif isinstance(data, str):
            problem = text_problem(data, multiline=True)
            if problem is not None:
                self.issue(path, f"{describe(path)} {problem}")

    # -- receivers

    def receiver_defaults(self, raw: Any) -> dict[str, Any]:
        out = dict(RECEIVER_DEFAULTS)
        if raw is None:
            return out
        if not isinstance(raw, dict):
            self.issue(("defaults",), "`defaults` must be a mapping")
            return out
        self.unknown_keys(raw, tuple(RECEIVER_DEFAULTS), ("defaults",))
        out.update(self.receiver_settings(raw, ("defaults",), out))
        return out

    def receiver_settings(self, raw: dict, path: tuple, base: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "language" in raw:
            if raw["language"] in LANGUAGES:
                out["language"] = raw["language"]
            else:
                self.issue(
                    path + ("language",),
                    f"`language` must be one of {', '.join(LANGUAGES)}, not {raw['language']!r}",
                )
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key not in raw:
                continue
            value = raw[key]
            if key == "repeat_interval" and value in (None, "never", "0", 0, False):
                out[key] = None
                continue
            try:
                out[key] = parse_duration(value)
            except ValueError as exc:
                self.issue(path + (key,), f"`{key}`: {exc}")
        if out.get("group_interval") is not None and out["group_interval"] <= timedelta(0):
            self.issue(path + ("group_interval",), "`group_interval` must be longer than zero")
        if "repeat_limit" in raw:
            value = raw["repeat_limit"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.issue(path + ("repeat_limit",), "`repeat_limit` must be a whole number >= 0")
            else:
                out["repeat_limit"] = value
        if "group_by" in raw:
            value = raw["group_by"]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.issue(path + ("group_by",), "`group_by` must be a list of field names")
            else:
                bad = [v for v in value if v not in GROUP_BY_FIELDS]
                if bad:
                    self.issue(
                        path + ("group_by",),
                        f"`group_by` cannot use {', '.join(bad)}; choose from "
                        + ", ".join(GROUP_BY_FIELDS),
                    )
                else:
                    out["group_by"] = tuple(dict.fromkeys(value))
        if "timezone" in raw:
            value = raw["timezone"]
            try:
                if not isinstance(value, str):
                    raise ValueError
                ZoneInfo(value)
                out["timezone"] = value
            except (ValueError, ZoneInfoNotFoundError):
                self.issue(
                    path + ("timezone",),
                    f"`timezone` must be an IANA zone name such as Asia/Shanghai, not {value!r}",
                )
        if "send_resolved" in raw:
            if isinstance(raw["send_resolved"], bool):
                out["send_resolved"] = raw["send_resolved"]
            else:
                self.issue(path + ("send_resolved",), "`send_resolved` must be true or false")
        return out

    def receivers(self, raw: Any, defaults: dict[str, Any]) -> dict[str, Receiver]:
        if raw is None:
            self.issue((), "`receivers` is missing: name at least one receiver")
            return {}
        if not isinstance(raw, list) or not raw:
            self.issue(("receivers",), "`receivers` must be a non-empty list")
            return {}
        out: dict[str, Receiver] = {}
        for i, item in enumerate(raw):
            path = ("receivers", i)
            if not isinstance(item, dict):
                self.issue(
                    path, f"{describe(path)} must be a mapping with `name` and `integrations`"
                )
                continue
            self.unknown_keys(item, RECEIVER_KEYS, path)
            name = item.get("name")
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.issue(
                    path + ("name",),
                    f"{describe(path)}: `name` is required: letters, digits, `_`, `-`, `.` (at most 64)",
                )
                continue
            if name in out:
                self.issue(path + ("name",), f"receiver {name!r} is defined twice")
                continue
            settings = {**defaults, **self.receiver_settings(item, path, defaults)}
            calendar, fallback = self.quiet_hours(item.get("quiet_hours"), path + ("quiet_hours",))
            integrations = self.integrations(item.get("integrations"), path + ("integrations",))
            out[name] = Receiver(
                name=name,
                integrations=tuple(integrations),
                calendar=calendar,
                fallback=fallback,
                line=self.doc.line(path),
                **settings,
            )
        return out

    def quiet_hours(self, raw: Any, path: tuple) -> tuple[str | None, str | None]:
        if raw is None:
            return None, None
        if not isinstance(raw, dict):
            self.issue(path, "`quiet_hours` must be a mapping with `calendar` (and `fallback`)")
            return None, None
        self.unknown_keys(raw, ("calendar", "fallback"), path)
        calendar = raw.get("calendar")
        if not isinstance(calendar, str) or not calendar:
            self.issue(
                path + ("calendar",),
                "`quiet_hours.calendar` must name a calendar of the policy file",
            )
            calendar = None
        elif self.calendars is not None and calendar not in self.calendars:
            known = ", ".join(sorted(self.calendars)) or "none"
            self.issue(
                path + ("calendar",),
                f"`quiet_hours.calendar` names unknown calendar {calendar!r} (the policy file has: {known})",
            )
        fallback = raw.get("fallback")
        if fallback is not None and not isinstance(fallback, str):
            self.issue(path + ("fallback",), "`quiet_hours.fallback` must be a receiver name")
            fallback = None
        return calendar, fallback

    def check_fallbacks(self, receivers: dict[str, Receiver]) -> None:
        for receiver in receivers.values():
            if receiver.fallback is None:
                continue
            if receiver.fallback not in receivers:
                self.issue_at(
                    receiver.line,
                    f"receiver {receiver.name!r}: `quiet_hours.fallback` names unknown receiver "
                    f"{receiver.fallback!r}",
                )
                continue
            seen, current = [receiver.name], receiver.fallback
            while current is not None and current in receivers:
                if current in seen:
                    self.issue_at(
                        receiver.line,
                        f"receiver {receiver.name!r}: fallbacks form a loop: "
                        + " -> ".join(seen + [current]),
                    )
                    break
                seen.append(current)
                current = receivers[current].fallback

    def issue_at(self, line: int | None, message: str) -> None:
        self.doc.issues.append(Issue(line, message))

    def integrations(self, raw: Any, path: tuple) -> list[IntegrationSpec]:
        if not isinstance(raw, list) or not raw:
            self.issue(path, f"{describe(path)} must be a non-empty list (each with a `type`)")
            return []
        out: list[IntegrationSpec] = []
        names: set[str] = set()
        counts: dict[str, int] = {}
        for i, item in enumerate(raw):
            ipath = path + (i,)
            if not isinstance(item, dict):
                self.issue(ipath, f"{describe(ipath)} must be a mapping with a `type`")
                continue
            kind = item.get("type")
            if kind not in PROVIDERS:
                self.issue(
                    ipath + ("type",),
                    f"{describe(ipath)}: `type` must be one of {', '.join(PROVIDERS)}"
                    + (f", not {kind!r}" if isinstance(kind, str) else ""),
                )
                continue
            provider = PROVIDERS[kind]
            self.unknown_keys(item, tuple(COMMON_FIELDS) + tuple(provider.fields), ipath)
            counts[kind] = counts.get(kind, 0) + 1
            name = item.get("name", kind if counts[kind] == 1 else f"{kind}-{counts[kind]}")
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.issue(
                    ipath + ("name",), f"{describe(ipath)}: `name` must be a short identifier"
                )
                continue
            if name in names:
                self.issue(
                    ipath + ("name",),
                    f"{describe(ipath)}: integration name {name!r} is used twice in this receiver; set `name`",
                )
                continue
            names.add(name)
            options = self.options(kind, item, ipath)
            timeout = DEFAULT_TIMEOUT_S
            if "timeout" in item:
                try:
                    timeout = parse_duration(item["timeout"]).total_seconds()
                    if timeout <= 0:
                        raise ValueError("must be longer than zero")
                except ValueError as exc:
                    self.issue(ipath + ("timeout",), f"`timeout`: {exc}")
            limits = provider.rate_limits
            if "rate_limit" in item:
                try:
                    limits = parse_rate_limits(item["rate_limit"])
                except ValueError as exc:
                    self.issue(ipath + ("rate_limit",), f"`rate_limit`: {exc}")
            max_events = provider.max_events_per_message
            if "max_events_per_message" in item:
                value = item["max_events_per_message"]
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                    self.issue(
                        ipath + ("max_events_per_message",),
                        "`max_events_per_message` must be a whole number from 1 to 1000",
                    )
                else:
                    max_events = value
            out.append(
                IntegrationSpec(
                    type=kind,
                    name=name,
                    options=options,
                    timeout=timeout,
                    rate_limits=limits,
                    max_events_per_message=max_events,
                    line=self.doc.line(ipath),
                )
            )
        return out

    def options(self, kind: str, item: dict, path: tuple) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, spec in PROVIDERS[kind].fields.items():
            fpath = path + (key,)
            if key not in item or item[key] is None:
                if spec.required:
                    self.issue(path, f"{describe(path)} ({kind}): `{key}` is required")
                continue
            value = item[key]
            unresolved = fpath in self.doc.unresolved
            if unresolved:  # already reported (or deliberately allowed): no second message
                out[key] = Secret(str(value)) if spec.kind in (Kind.url, Kind.secret) else value
                continue
            if spec.kind is Kind.url:
                if not isinstance(value, str) or not value:
                    self.issue(fpath, f"{describe(fpath)} must be a URL")
                    continue
                parts = urlsplit(value)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    # never echo the value: webhook URLs carry their token
                    self.issue(fpath, f"{describe(fpath)} must be an http:// or https:// URL")
                    continue
                out[key] = Secret(value)
            elif spec.kind is Kind.secret:
                if not isinstance(value, str) or not value:
                    self.issue(fpath, f"{describe(fpath)} must be a non-empty string")
                    continue
                out[key] = Secret(value)
            elif spec.kind is Kind.string:
                if not isinstance(value, str) or not value:
                    self.issue(fpath, f"{describe(fpath)} must be a non-empty string")
                    continue
                out[key] = Secret(value) if fpath in self.doc.from_env else value
            elif spec.kind is Kind.strings:
                items = value if isinstance(value, list) else [value]
                if not items or not all(isinstance(v, str | int) and str(v) for v in items):
                    self.issue(fpath, f"{describe(fpath)} must be a string or a list of strings")
                    continue
                out[key] = tuple(str(v) for v in items)
            elif spec.kind is Kind.boolean:
                if not isinstance(value, bool):
                    self.issue(fpath, f"{describe(fpath)} must be true or false")
                    continue
                out[key] = value
            elif spec.kind is Kind.port:
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                    self.issue(fpath, f"{describe(fpath)} must be a port number (1-65535)")
                    continue
                out[key] = value
            elif spec.kind is Kind.security:
                if value not in ("starttls", "tls", "none"):
                    self.issue(fpath, f"{describe(fpath)} must be starttls, tls or none")
                    continue
                out[key] = value
            elif spec.kind is Kind.headers:
                if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str | int) for k, v in value.items()
                ):
                    self.issue(fpath, f"{describe(fpath)} must map header names to strings")
                    continue
                bad = [k for k in value if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", k)]
                if bad:
                    self.issue(fpath, f"{describe(fpath)}: invalid header name {bad[0]!r}")
                    continue
                out[key] = {k: Secret(str(v)) for k, v in value.items()}
        if kind == "email" and "to" in out:
            bad = [address for address in out["to"] if "@" not in address]
            if bad:
                self.issue(
                    path + ("to",), f"{describe(path + ('to',))}: not an e-mail address: {bad[0]!r}"
                )
        return out

    # -- routes

    def routes(self, raw: Any, receivers: dict[str, Receiver]) -> list[Route]:
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            self.issue(("routes",), "`routes` must be a list")
            return []
        out = []
        for i, item in enumerate(raw):
            path = ("routes", i)
            if not isinstance(item, dict):
                self.issue(path, f"{describe(path)} must be a mapping with `receiver`")
                continue
            self.unknown_keys(item, ROUTE_KEYS, path)
            receiver = item.get("receiver")
            if not isinstance(receiver, str):
                self.issue(path, f"{describe(path)}: `receiver` is required")
                continue
            if receiver not in receivers:
                self.issue(path + ("receiver",), f"{describe(path)}: unknown receiver {receiver!r}")
            cont = item.get("continue", False)
            if not isinstance(cont, bool):
                self.issue(path + ("continue",), "`continue` must be true or false")
                cont = False
            match, match_re = item.get("match"), item.get("match_re")
            bad_shape = False
            for key, value in (("match", match), ("match_re", match_re)):
                if value is not None and not isinstance(value, dict):
                    self.issue(path + (key,), f"`{key}` must be a mapping of field -> value(s)")
                    bad_shape = True
            if bad_shape:
                continue
            try:
                matchers = Matchers.parse(match, match_re)
            except MatcherError as exc:
                where = "match_re" if match_re and exc.field in match_re else "match"
                self.issue(path + (where, exc.field), f"{describe(path)}: {exc.message}")
                continue
            if receiver in receivers:
                out.append(Route(matchers, receiver, cont, self.doc.line(path)))
        return out


def _closest(key: str, allowed: Collection[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.7)
    return found[0] if found else None
