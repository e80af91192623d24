"""The routing file, declared once: pydantic models for its shape and per-value rules
(docs/schemas/routes.schema.json is generated from them; each provider's integration model
is built from the provider table, services/notifier/providers.py), and the cross-field
rules a schema cannot say (receivers named once, known receivers and calendars, fallbacks
that end).

Read through the one config loader (shared/yamlsource.py), so every problem keeps its
line; messages are worded here, the way they always were (keys `like this`, paths like
``receivers[0].integrations[1].url``). Values that may be secrets are wrapped in
:class:`Secret` as they are validated, and never echoed in a message.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from slawatch.services.notifier.matchers import (
    KINDS,
    LEVEL_FIELDS,
    STRING_FIELDS,
    TARGETS,
    MatcherError,
    Matchers,
)
from slawatch.services.notifier.providers import COMMON_FIELDS, PROVIDERS, Kind, RateLimit
from slawatch.services.notifier.secret import Secret
from slawatch.shared.bounds import MAX_DURATION_DAYS, is_time_zone, text_problem
from slawatch.shared.durations import DURATION_SCHEMA, DurationError, parse_duration
from slawatch.shared.yamlsource import Issue, Located, Refusal, Unresolved, describe, fields_at

LANGUAGES = ("en", "zh")
# Scheduled reports (the `reports` section): what the monitor's report API groups by, and when.
REPORT_GROUP_BY = (
    "policy",
    "customer_tier",
    "channel",
    "priority",
    "assignee",
    "group",
    "customer_id",
)
REPORT_PERIODS = ("day", "week")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TIME_OF_DAY_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
GROUP_BY_FIELDS = tuple(name for name in STRING_FIELDS if name != "tags")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
NAME_SCHEMA = {"type": "string", "pattern": NAME_RE.pattern}
NEVER = (None, "never", "0", 0, False)  # repeat_interval values that mean "never repeat"

# Error kinds of this file's rules: how a message is put together (see word()).
_PATH = "routes_path"  # "receivers[0].integrations[1].url must be a URL"
_PATH_COLON = "routes_path_colon"  # "receivers[2].integrations[1].to: not an e-mail address"
_KEY = "routes_key"  # "`language` must be one of en, zh"
_KEY_COLON = "routes_key_colon"  # "`timeout`: must be longer than zero"
_PARENT = "routes_parent"  # "receivers[0]: `name` is required: ..."
_WHOLE = "routes_whole"


def _refuse(kind: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message.replace("{", "{{").replace("}", "}}"), context)


# ---------------------------------------------------------------------------- values
def duration_message(exc: DurationError) -> str:
    """A problem with a duration (the one grammar, shared/durations.py) in this file's words."""
    return {
        "shape": f"{exc.shown} is not a duration; write e.g. 30s, 5m, 1h30m or 250ms",
        "too_long": f"a duration is at most {MAX_DURATION_DAYS}d",
    }.get(exc.kind, "expected a duration like 30s, 5m or 4h")


def _duration(value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise _refuse(_KEY_COLON, duration_message(exc)) from None


def _positive_duration(value: Any) -> timedelta:
    length = _duration(value)
    if length <= timedelta(0):
        raise _refuse(_KEY, "must be longer than zero")
    return length


def _timeout(value: Any) -> float:
    length = _duration(value)
    if length <= timedelta(0):
        raise _refuse(_KEY_COLON, "must be longer than zero")
    return length.total_seconds()


def _repeat_interval(value: Any) -> timedelta | None:
    return None if value in NEVER else _duration(value)


def _choice(allowed: tuple[str, ...], what: str) -> Any:
    def check(value: Any) -> str:
        if value not in allowed:
            raise _refuse(_KEY, f"must be one of {', '.join(allowed)}, not {value!r}")
        return value

    return check


def _whole(lo: int, hi: int | None, message: str) -> Any:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise _refuse(_KEY, message)
        if hi is not None and value > hi:
            raise _refuse(_KEY, message)
        return value

    return check


def _group_by(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _refuse(_KEY, "must be a list of field names")
    bad = [v for v in value if v not in GROUP_BY_FIELDS]
    if bad:
        raise _refuse(
            _KEY, f"cannot use {', '.join(bad)}; choose from " + ", ".join(GROUP_BY_FIELDS)
        )
    return tuple(dict.fromkeys(value))


def _zone(value: Any) -> str:
    if not is_time_zone(value):
        raise _refuse(_KEY, f"must be an IANA zone name such as Asia/Shanghai, not {value!r}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse(_KEY, "must be true or false")
    return value


def _version(value: Any) -> int:
    if value != 1 or isinstance(value, bool):
        raise _refuse(_WHOLE, "`version` must be 1")
    return 1


def _time_of_day(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise _refuse(
            _KEY, 'must be a time of day in quotes, e.g. "09:30" (YAML reads 9:30 as a number)'
        )
    if not isinstance(value, str) or not TIME_OF_DAY_RE.match(value):
        raise _refuse(_KEY, f"must be a time of day HH:MM from 00:00 to 23:59, not {value!r}")
    return value


def _receiver_names(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise _refuse(_KEY, "must be a receiver name or a non-empty list of them")
    return tuple(dict.fromkeys(items))


def _receiver_name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise _refuse(_PARENT, "`name` is required: letters, digits, `_`, `-`, `.` (at most 64)")
    return value


def _integration_name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise _refuse(_PARENT, "`name` must be a short identifier")
    return value


def _route_receiver(value: Any) -> str:
    if not isinstance(value, str):
        raise _refuse(_PARENT, "`receiver` is required", up=True)
    return value


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
            try:
                per = parse_duration(per_text).total_seconds()
            except DurationError as exc:
                raise ValueError(duration_message(exc)) from None
        if per <= 0:
            raise ValueError(f"{item!r}: the window must be longer than zero")
        limits.append(RateLimit(int(count_text), per))
    return tuple(limits)


def _rate_limits(value: Any) -> tuple[RateLimit, ...]:
    try:
        return parse_rate_limits(value)
    except ValueError as exc:
        raise _refuse(_KEY_COLON, str(exc)) from None


def _mapping_of_values(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise _refuse(_KEY, "must be a mapping of field -> value(s)")
    return value


# -- provider options, by kind: what each validator returns is what the integration gets
def _url(value: Any) -> Secret:
    if isinstance(value, Unresolved):
        return Secret(str(value))  # already reported (or deliberately allowed)
    if not isinstance(value, str) or not value:
        raise _refuse(_PATH, "must be a URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(_PATH, "must be an http:// or https:// URL")  # never echo: URLs carry tokens
    return Secret(value)


def _secret(value: Any) -> Secret:
    if isinstance(value, Unresolved):
        return Secret(str(value))
    if not isinstance(value, str) or not value:
        raise _refuse(_PATH, "must be a non-empty string")
    return Secret(value)


def _string(value: Any) -> str:
    if isinstance(value, Unresolved):
        return value
    if not isinstance(value, str) or not value:
        raise _refuse(_PATH, "must be a non-empty string")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str | int) and str(v) for v in items):
        raise _refuse(_PATH, "must be a string or a list of strings")
    return tuple(str(v) for v in items)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse(_PATH, "must be true or false")
    return value


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _refuse(_PATH, "must be a port number (1-65535)")
    return value


def _security(value: Any) -> str:
    if value not in ("starttls", "tls", "none"):
        raise _refuse(_PATH, "must be starttls, tls or none")
    return value


def _headers(value: Any) -> dict[str, Secret]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int) for k, v in value.items()
    ):
        raise _refuse(_PATH, "must map header names to strings")
    bad = [k for k in value if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", k)]
    if bad:
        raise _refuse(_PATH_COLON, f"invalid header name {bad[0]!r}")
    return {k: Secret(str(v)) for k, v in value.items()}


_OPTION_TYPES: dict[Kind, tuple[Any, dict[str, Any]]] = {
    Kind.url: (_url, {"type": "string", "description": "http(s) URL; may contain ${VAR}"}),
    Kind.secret: (_secret, {"type": "string"}),
    Kind.string: (_string, {"type": "string"}),
    Kind.strings: (
        _strings,
        {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    ),
    Kind.boolean: (_boolean, {"type": "boolean"}),
    Kind.port: (_port, {"type": "integer", "minimum": 1, "maximum": 65535}),
    Kind.headers: (_headers, {"type": "object", "additionalProperties": {"type": "string"}}),
    Kind.security: (_security, {"enum": ["starttls", "tls", "none"]}),
}


def _value(check: Any, schema: dict[str, Any]) -> Any:
    return Annotated[Any, BeforeValidator(check), WithJsonSchema(schema)]


# Written out (not built by _value) so that type checkers see them as types.
Duration = Annotated[timedelta, BeforeValidator(_duration), WithJsonSchema(DURATION_SCHEMA)]
PositiveDuration = Annotated[
    timedelta, BeforeValidator(_positive_duration), WithJsonSchema(DURATION_SCHEMA)
]
RepeatInterval = Annotated[
    timedelta | None,
    BeforeValidator(_repeat_interval),
    WithJsonSchema({"oneOf": [DURATION_SCHEMA, {"enum": ["never", None, 0, False]}]}),
]


# ---------------------------------------------------------------------------- the file
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReceiverSettings(_Section):
    """What `defaults` gives every receiver, and a receiver may set for itself."""

    language: Annotated[
        Any,
        BeforeValidator(_choice(LANGUAGES, "language")),
        WithJsonSchema({"enum": list(LANGUAGES)}),
    ] = "en"
    group_wait: Duration = timedelta(seconds=30)
    group_interval: PositiveDuration = timedelta(minutes=5)
    repeat_interval: RepeatInterval = timedelta(hours=4)
    repeat_limit: Annotated[
        Any,
        BeforeValidator(_whole(0, None, "must be a whole number >= 0")),
        WithJsonSchema({"type": "integer", "minimum": 0}),
    ] = 12
    group_by: Annotated[
        Any,
        BeforeValidator(_group_by),
        WithJsonSchema({"type": "array", "items": {"enum": list(GROUP_BY_FIELDS)}}),
    ] = ()
    send_resolved: Annotated[Any, BeforeValidator(_flag), WithJsonSchema({"type": "boolean"})] = (
        False
    )
    timezone: Annotated[
        Any,
        BeforeValidator(_zone),
        WithJsonSchema({"type": "string", "description": "IANA zone, e.g. Asia/Shanghai"}),
    ] = "UTC"


SETTINGS = tuple(ReceiverSettings.model_fields)


class QuietHours(_Section):
    """Notify only while a policy-file calendar is open; meanwhile, the fallback (if set)."""

    calendar: Annotated[Any, BeforeValidator(_string), WithJsonSchema({"type": "string"})]
    fallback: (
        Annotated[Any, BeforeValidator(_string), WithJsonSchema({"type": "string"})] | None
    ) = None


def _integration_model(kind: str, provider: Any) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "type": (Literal[kind], Field(description=COMMON_FIELDS["type"])),
        "name": (
            _value(_integration_name, NAME_SCHEMA) | None,
            Field(None, description=COMMON_FIELDS["name"]),
        ),
        "timeout": (
            _value(_timeout, DURATION_SCHEMA) | None,
            Field(None, description=COMMON_FIELDS["timeout"]),
        ),
        "rate_limit": (
            _value(
                _rate_limits,
                {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            )
            | None,
            Field(None, description=COMMON_FIELDS["rate_limit"]),
        ),
        "max_events_per_message": (
            _value(
                _whole(1, 1000, "must be a whole number from 1 to 1000"),
                {"type": "integer", "minimum": 1, "maximum": 1000},
            )
            | None,
            Field(None, description=COMMON_FIELDS["max_events_per_message"]),
        ),
    }
    assert set(fields) == set(COMMON_FIELDS)
    for name, spec in provider.fields.items():
        check, schema = _OPTION_TYPES[spec.kind]
        default = ... if spec.required else None
        fields[f"option_{name}"] = (
            _value(check, schema) | None if not spec.required else _value(check, schema),
            Field(default, alias=name, description=spec.help),
        )
    return create_model(
        f"{kind.capitalize()}Integration",
        __base__=_EmailChecks if kind == "email" else _Section,
        __doc__=provider.doc,
        **fields,
    )


class _EmailChecks(_Section):
    @model_validator(mode="after")
    def _addresses(self) -> _EmailChecks:
        bad = [address for address in getattr(self, "option_to", ()) if "@" not in address]
        if bad:
            raise _refuse(
                _PATH_COLON, f"not an e-mail address: {bad[0]!r}", under=("to",), at=("to",)
            )
        return self


INTEGRATIONS: dict[str, type[BaseModel]] = {
    kind: _integration_model(kind, provider) for kind, provider in PROVIDERS.items()
}
_models = list(INTEGRATIONS.values())
_any_integration: Any = _models[0]
for _model in _models[1:]:
    _any_integration = _any_integration | _model
Integration = Annotated[_any_integration, Discriminator("type")]


def options_of(integration: BaseModel) -> dict[str, Any]:
    """An integration's provider options as the runtime gets them (None: not given)."""
    return {
        name.removeprefix("option_"): value
        for name, value in integration
        if name.startswith("option_") and value is not None
    }


class Receiver(ReceiverSettings):
    """Who gets notified, how (integrations), and how often."""

    name: Annotated[Any, BeforeValidator(_receiver_name), WithJsonSchema(NAME_SCHEMA)]
    integrations: Annotated[list[Integration], Field(min_length=1)]
    quiet_hours: QuietHours | None = None


class Route(_Section):
    """Tried in order: the first that matches wins unless it says `continue: true`."""

    match: Annotated[
        Any,
        BeforeValidator(_mapping_of_values),
        WithJsonSchema({"type": "object", "properties": {}, "additionalProperties": False}),
    ] = None
    match_re: Annotated[
        Any,
        BeforeValidator(_mapping_of_values),
        WithJsonSchema({"type": "object", "properties": {}, "additionalProperties": False}),
    ] = None
    receiver: Annotated[Any, BeforeValidator(_route_receiver), WithJsonSchema({"type": "string"})]
    continue_: Annotated[Any, BeforeValidator(_flag), WithJsonSchema({"type": "boolean"})] = Field(
        False, alias="continue"
    )
    _matchers: Matchers = PrivateAttr(default_factory=Matchers)

    @model_validator(mode="after")
    def _parse_matchers(self) -> Route:
        try:
            self._matchers = Matchers.parse(self.match, self.match_re)
        except MatcherError as exc:
            where = "match_re" if self.match_re and exc.field in self.match_re else "match"
            raise _refuse(_PATH_COLON, exc.message, at=(where, exc.field)) from None
        return self

    @property
    def matchers(self) -> Matchers:
        return self._matchers


class ScheduledReport(_Section):
    """A compliance report sent on a schedule: the monitor's report API for the last full
    day or week, as an e-mail with tables and a CSV file, and as a short summary to chat.
    Sent at `at` in each receiver's own `timezone`, once per period (docs/notifications.md)."""

    name: Annotated[Any, BeforeValidator(_receiver_name), WithJsonSchema(NAME_SCHEMA)]
    receivers: Annotated[
        Any,
        BeforeValidator(_receiver_names),
        WithJsonSchema(
            {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "minItems": 1, "items": {"type": "string"}},
                ]
            }
        ),
    ]
    every: Annotated[
        Any,
        BeforeValidator(_choice(REPORT_PERIODS, "every")),
        WithJsonSchema({"enum": list(REPORT_PERIODS)}),
    ]
    weekday: (
        Annotated[
            Any,
            BeforeValidator(_choice(WEEKDAYS, "weekday")),
            WithJsonSchema({"enum": list(WEEKDAYS)}),
        ]
        | None
    ) = None
    at: Annotated[
        Any,
        BeforeValidator(_time_of_day),
        WithJsonSchema({"type": "string", "pattern": TIME_OF_DAY_RE.pattern}),
    ] = "08:00"
    group_by: Annotated[
        Any,
        BeforeValidator(_choice(REPORT_GROUP_BY, "group_by")),
        WithJsonSchema({"enum": list(REPORT_GROUP_BY)}),
    ] = "policy"

    @model_validator(mode="after")
    def _weekday_for_weeks(self) -> ScheduledReport:
        if self.weekday is not None and self.every != "week":
            raise _refuse(_KEY, "only applies with `every: week`", at=("weekday",), key="weekday")
        return self


class RoutesFile(_Section):
    """slawatch routing file (SLAWATCH_ROUTES_FILE); see docs/notifications.md.
    `slawatch routes check FILE` checks more: ${VAR}, fallbacks, calendars, the line."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="slawatch routing file")

    version: Annotated[Any, BeforeValidator(_version), WithJsonSchema({"const": 1})] = 1
    defaults: ReceiverSettings = ReceiverSettings()
    receivers: Annotated[list[Receiver], Field(min_length=1)]
    routes: list[Route] = []
    default_receiver: (
        Annotated[Any, BeforeValidator(_string), WithJsonSchema({"type": "string"})] | None
    ) = None
    reports: list[ScheduledReport] = []


def json_schema() -> dict[str, Any]:
    """The routing file's JSON Schema, generated from the models; matchers filled in from
    the matcher table (services/notifier/matchers.py)."""
    schema = RoutesFile.model_json_schema(by_alias=True)
    kinds = sorted(KINDS | {k.removeprefix("sla.") for k in KINDS})

    def values(allowed: list[str] | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {"enum": allowed} if allowed else {"type": "string"}
        return {"oneOf": [item, {"type": "array", "minItems": 1, "items": item}]}

    equal: dict[str, Any] = {name: values() for name in STRING_FIELDS}
    equal["kind"] = values(kinds)
    equal["target"] = values(sorted(TARGETS))
    for name in LEVEL_FIELDS:
        equal[name] = {"type": "integer", "minimum": 0}
    route = schema["$defs"]["Route"]["properties"]
    route["match"]["properties"] = equal
    route["match_re"]["properties"] = {
        name: {"type": "string", "format": "regex"} for name in STRING_FIELDS
    }
    return schema


# ---------------------------------------------------------------------------- wording
def _provider_path(path: tuple) -> tuple[tuple, str | None]:
    """pydantic puts the provider's tag in the path of an integration's problems: drop it."""
    if len(path) >= 5 and path[0] == "receivers" and path[2] == "integrations":
        if path[4] in INTEGRATIONS:
            return path[:4] + path[5:], str(path[4])
    return path, None


def _allowed(path: tuple, kind: str | None) -> tuple[str, ...]:
    if kind is not None:
        return (*COMMON_FIELDS, *PROVIDERS[kind].fields)
    return fields_at(RoutesFile, path) or ()


_MAPPING = {
    (): "the routing file must be a mapping with `receivers` and `routes`",
    ("defaults",): "`defaults` must be a mapping",
}


def word(doc: Located, refusal: Refusal) -> Issue | None:
    """A pydantic problem in this file's words, on its line."""
    path, provider = _provider_path(refusal.path)
    kind = refusal.kind
    line = doc.line(
        path[:-1] if refusal.context.get("up") else path + tuple(refusal.context.get("at", ()))
    )
    shape = [0 if isinstance(p, int) else "*" for p in path]
    if kind == "extra_forbidden":
        key, parent = str(path[-1]), path[:-1]
        hint = difflib.get_close_matches(key, list(_allowed(parent, provider)), n=1, cutoff=0.7)
        return Issue(
            line,
            f"unknown key `{key}` in {describe(parent)}"
            + (f" (did you mean `{hint[0]}`?)" if hint else ""),
        )
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = refusal.context.get("tag")
        return Issue(
            doc.line(path + ("type",)),
            f"{describe(path)}: `type` must be one of {', '.join(PROVIDERS)}"
            + (f", not {tag!r}" if isinstance(tag, str) and kind == "union_tag_invalid" else ""),
        )
    if kind == "missing":
        key, parent = path[-1], path[:-1]
        if parent[:1] == ("reports",):
            return Issue(line, f"{describe(parent)}: `{key}` is required")
        if parent == ():
            return Issue(line, "`receivers` is missing: name at least one receiver")
        if key == "name":
            return Issue(
                line,
                f"{describe(parent)}: `name` is required: letters, digits, `_`, `-`, `.` (at most 64)",
            )
        if key == "integrations":
            return Issue(line, f"{describe(path)} must be a non-empty list (each with a `type`)")
        if key == "calendar":
            return Issue(line, "`quiet_hours.calendar` must name a calendar of the policy file")
        if key == "receiver":
            return Issue(line, f"{describe(parent)}: `receiver` is required")
        return Issue(line, f"{describe(parent)} ({provider}): `{key}` is required")
    if kind in ("model_type", "model_attributes_type", "dict_type", "list_type", "too_short"):
        if path in _MAPPING:
            return Issue(line, _MAPPING[path])
        if path == ("receivers",):
            return Issue(line, "`receivers` must be a non-empty list")
        if path == ("routes",):
            return Issue(line, "`routes` must be a list")
        if path == ("reports",):
            return Issue(line, "`reports` must be a list")
        if shape == ["*", 0] and path[0] == "reports":
            return Issue(
                line, f"{describe(path)} must be a mapping with `name`, `receivers` and `every`"
            )
        if shape == ["*", 0] and path[0] == "receivers":
            return Issue(line, f"{describe(path)} must be a mapping with `name` and `integrations`")
        if shape == ["*", 0, "*"] and path[2] == "integrations":
            return Issue(line, f"{describe(path)} must be a non-empty list (each with a `type`)")
        if shape == ["*", 0, "*", 0]:
            return Issue(line, f"{describe(path)} must be a mapping with a `type`")
        if shape == ["*", 0, "*"] and path[2] == "quiet_hours":
            return Issue(line, "`quiet_hours` must be a mapping with `calendar` (and `fallback`)")
        if shape == ["*", 0] and path[0] == "routes":
            return Issue(line, f"{describe(path)} must be a mapping with `receiver`")
    key = str(refusal.context.get("key") or "") or next(
        (str(p) for p in reversed(path) if isinstance(p, str)), ""
    )
    if path[-2:] == ("quiet_hours", "calendar"):
        return Issue(line, "`quiet_hours.calendar` must name a calendar of the policy file")
    if path[-2:] == ("quiet_hours", "fallback"):
        return Issue(line, "`quiet_hours.fallback` must be a receiver name")
    if path == ("default_receiver",):
        return Issue(line, "`default_receiver` must be a receiver name")
    message = refusal.message
    if kind == _PATH:
        return Issue(line, f"{describe(path)} {message}")
    if kind == _PATH_COLON:
        return Issue(line, f"{describe(path + tuple(refusal.context.get('under', ())))}: {message}")
    if kind == _KEY:
        return Issue(line, f"`{key}` {message}")
    if kind == _KEY_COLON:
        return Issue(line, f"`{key}`: {message}")
    if kind == _PARENT:
        return Issue(line, f"{describe(path[:-1])}: {message}")
    if kind == _WHOLE:
        return Issue(line, message)
    return Issue(line, f"{describe(path)}: {message}")


def text_rule(doc: Located) -> None:
    """The text rule of every slawatch contract (shared/bounds.py), for every key and
    string in the file: values may hold tab and line breaks, keys nothing of the kind."""

    def walk(data: Any, path: tuple) -> None:
        if isinstance(data, dict):
            for key, value in data.items():
                problem = text_problem(key) if isinstance(key, str) else None
                if problem is not None:
                    doc.issue(path, f"a key in {describe(path)} {problem}")
                walk(value, path + (key,))
        elif isinstance(data, list):
            for index, item in enumerate(data):
                walk(item, path + (index,))
        elif isinstance(data, str):
            problem = text_problem(data, multiline=True)
            if problem is not None:
                doc.issue(path, f"{describe(path)} {problem}")

    walk(doc.data, ())


# ---------------------------------------------------------------------------- cross-field rules
def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def cross_check(doc: Located, calendars: Collection[str] | None) -> None:
    """What no single value says, checked on what the file holds even where values are
    wrong (so that one run lists every problem): receivers named once, integration names
    unique in a receiver, known calendars, fallbacks that exist and end, routes and the
    default receiver naming receivers that exist."""
    data = doc.data if isinstance(doc.data, dict) else {}
    raw_receivers = _list(data.get("receivers"))
    receivers: dict[str, tuple[int, str | None]] = {}  # name -> (index, fallback)
    for index, item in enumerate(raw_receivers):
        path = ("receivers", index)
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = item["name"]
        if not NAME_RE.match(name):
            continue
        if name in receivers:
            doc.issue(path + ("name",), f"receiver {name!r} is defined twice")
            continue
        quiet = _mapping(item.get("quiet_hours"))
        calendar = quiet.get("calendar")
        if (
            isinstance(calendar, str)
            and calendar
            and calendars is not None
            and calendar not in calendars
        ):
            known = ", ".join(sorted(calendars)) or "none"
            doc.issue(
                path + ("quiet_hours", "calendar"),
                f"`quiet_hours.calendar` names unknown calendar {calendar!r} (the policy file has: {known})",
            )
        fallback = quiet.get("fallback")
        receivers[name] = (index, fallback if isinstance(fallback, str) else None)
        _integration_names(doc, item.get("integrations"), path + ("integrations",))
    for name, (index, fallback) in receivers.items():
        line = doc.line(("receivers", index))
        if fallback is None:
            continue
        if fallback not in receivers:
            doc.issues.append(
                Issue(
                    line,
                    f"receiver {name!r}: `quiet_hours.fallback` names unknown receiver {fallback!r}",
                )
            )
            continue
        seen: list[str] = [name]
        current: str | None = fallback
        while current is not None and current in receivers:
            if current in seen:
                doc.issues.append(
                    Issue(
                        line,
                        f"receiver {name!r}: fallbacks form a loop: "
                        + " -> ".join([*seen, current]),
                    )
                )
                break
            seen.append(current)
            current = receivers[current][1]
    raw_routes = _list(data.get("routes"))
    for index, item in enumerate(raw_routes):
        receiver = item.get("receiver") if isinstance(item, dict) else None
        if isinstance(receiver, str) and receiver not in receivers:
            path = ("routes", index)
            doc.issue(path + ("receiver",), f"{describe(path)}: unknown receiver {receiver!r}")
    default = data.get("default_receiver")
    if isinstance(default, str) and default not in receivers:
        doc.issue(("default_receiver",), f"`default_receiver` names unknown receiver {default!r}")
    _report_names(doc, data.get("reports"), receivers)


def _report_names(doc: Located, raw: Any, receivers: Collection[str]) -> None:
    """Reports named once, sent to receivers that exist."""
    if not isinstance(raw, list):
        return
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        path = ("reports", index)
        name = item.get("name")
        if isinstance(name, str) and NAME_RE.match(name):
            if name in seen:
                doc.issue(path + ("name",), f"report {name!r} is defined twice")
            seen.add(name)
        names = item.get("receivers")
        listed = [names] if isinstance(names, str) else names if isinstance(names, list) else []
        for position, receiver in enumerate(listed):
            if isinstance(receiver, str) and receiver not in receivers:
                where = path + ("receivers",) + (() if isinstance(names, str) else (position,))
                doc.issue(where, f"{describe(path)}: unknown receiver {receiver!r}")


def integration_names(integrations: list[Any]) -> list[str | None]:
    """Each integration's name: its own, or its type (type-2, type-3 for repeats)."""
    counts: dict[str, int] = {}
    names: list[str | None] = []
    for item in integrations:
        kind = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
        if kind not in PROVIDERS:
            names.append(None)
            continue
        counts[kind] = counts.get(kind, 0) + 1
        given = item.get("name") if isinstance(item, dict) else item.name
        names.append(
            given if given is not None else kind if counts[kind] == 1 else f"{kind}-{counts[kind]}"
        )
    return names


def _integration_names(doc: Located, raw: Any, path: tuple) -> None:
    if not isinstance(raw, list):
        return
    seen: set[str] = set()
    for index, name in enumerate(integration_names(raw)):
        if not isinstance(name, str) or not NAME_RE.match(name):
            continue
        if name in seen:
            ipath = path + (index,)
            doc.issue(
                ipath + ("name",),
                f"{describe(ipath)}: integration name {name!r} is used twice in this receiver; set `name`",
            )
        seen.add(name)
