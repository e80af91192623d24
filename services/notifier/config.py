"""The routing file (``SLAWATCH_ROUTES_FILE``): receivers, integrations and ordered routes.

Loading never raises on bad content: every problem is collected with its line, so
``slawatch routes check`` can list them all at once, and the service refuses to start
with the same messages. The file's rules are the models of services/notifier/routes_file.py,
read through the one config loader (shared/yamlsource.py); this module holds what the
notifier runs with. Values that may be secrets (webhook URLs, signing secrets, passwords,
header values, anything from ``${VAR}``) are :class:`Secret` and never appear in a
message, a repr or a log line.

See docs/notifications.md for the format and docs/schemas/routes.schema.json for its
JSON Schema.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from slawatch.services.notifier import routes_file
from slawatch.services.notifier.matchers import Matchers
from slawatch.services.notifier.providers import DEFAULT_TIMEOUT_S, PROVIDERS, Kind, RateLimit
from slawatch.services.notifier.routes_file import parse_rate_limits as parse_rate_limits
from slawatch.services.notifier.secret import Secret
from slawatch.services.notifier.secret import reveal as reveal
from slawatch.shared.sla_events import SlaEvent
from slawatch.shared.yamlsource import Issue, Located, describe, load_located, validate

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
class ReportSchedule:
    """A scheduled compliance report (the `reports` section; services/notifier/reports.py)."""

    name: str
    receivers: tuple[str, ...]
    every: str  # day | week
    weekday: int  # 0 = Monday; the day a weekly report goes out
    at: time  # in each receiver's own time zone
    group_by: str = "policy"
    line: int | None = None


@dataclass(frozen=True)
class RoutingConfig:
    receivers: Mapping[str, Receiver]
    routes: tuple[Route, ...]
    default_receiver: str | None = None
    source: str = "<routes>"
    calendars: frozenset[str] = field(default_factory=frozenset)
    reports: tuple[ReportSchedule, ...] = ()

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
    if doc.issues and doc.data is None:
        raise RoutesError(source, doc.issues)
    for path, key, line in doc.duplicate_keys:
        doc.issues.append(Issue(line, f"duplicate key `{key}` in {describe(path)}"))
    for _path, _key, line in doc.bad_keys:
        doc.issues.append(Issue(line, "mapping keys must be plain strings"))
    routes_file.text_rule(doc)
    file = validate(doc, routes_file.RoutesFile, lambda refusal: routes_file.word(doc, refusal))
    routes_file.cross_check(doc, None if calendars is None else frozenset(calendars))
    if doc.issues or file is None:
        raise RoutesError(source, doc.issues)
    return _build(file, doc, source)


def _build(file: routes_file.RoutesFile, doc: Located, source: str) -> RoutingConfig:
    """A valid file as what the notifier runs with: defaults applied, secrets wrapped."""
    receivers: dict[str, Receiver] = {}
    for index, spec in enumerate(file.receivers):
        path = ("receivers", index)
        settings = {
            key: getattr(spec if key in spec.model_fields_set else file.defaults, key)
            for key in routes_file.SETTINGS
        }
        names = routes_file.integration_names(spec.integrations)
        integrations = []
        for position, (integration, name) in enumerate(zip(spec.integrations, names, strict=True)):
            ipath = path + ("integrations", position)
            provider = PROVIDERS[integration.type]
            assert name is not None  # only an unknown type has no name, and this file is valid
            options = {
                key: Secret(value)
                if provider.fields[key].kind is Kind.string
                and ipath + (key,) in doc.from_env
                and isinstance(value, str)
                else value
                for key, value in routes_file.options_of(integration).items()
            }
            integrations.append(
                IntegrationSpec(
                    type=integration.type,
                    name=name,
                    options=options,
                    timeout=integration.timeout
                    if integration.timeout is not None
                    else DEFAULT_TIMEOUT_S,
                    rate_limits=integration.rate_limit
                    if integration.rate_limit is not None
                    else provider.rate_limits,
                    max_events_per_message=integration.max_events_per_message
                    or provider.max_events_per_message,
                    line=doc.line(ipath),
                )
            )
        quiet = spec.quiet_hours
        receivers[spec.name] = Receiver(
            name=spec.name,
            integrations=tuple(integrations),
            calendar=quiet.calendar if quiet else None,
            fallback=quiet.fallback if quiet else None,
            line=doc.line(path),
            **settings,
        )
    routes = tuple(
        Route(route.matchers, route.receiver, route.continue_, doc.line(("routes", index)))
        for index, route in enumerate(file.routes)
    )
    reports = tuple(
        ReportSchedule(
            name=report.name,
            receivers=report.receivers,
            every=report.every,
            weekday=routes_file.WEEKDAYS.index(report.weekday or "monday"),
            at=time.fromisoformat(report.at),
            group_by=report.group_by,
            line=doc.line(("reports", index)),
        )
        for index, report in enumerate(file.reports)
    )
    return RoutingConfig(
        receivers=receivers,
        routes=routes,
        default_receiver=file.default_receiver,
        source=source,
        calendars=frozenset(r.calendar for r in receivers.values() if r.calendar),
        reports=reports,
    )
