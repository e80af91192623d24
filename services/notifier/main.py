"""`slawatch notifier`: run the notifier alone, configured by SLAWATCH_* variables."""

from __future__ import annotations

import logging
import os
import sys

from slawatch.services.notifier.app import create_app
from slawatch.services.notifier.calendars import CalendarsUnavailable, load_calendars
from slawatch.services.notifier.clock import Clock
from slawatch.services.notifier.config import RoutesError, load_routes
from slawatch.services.notifier.settings import NotifierSettings
from slawatch.shared.auth import PEOPLE_ROLES, api_keys_setting
from slawatch.shared.logs import configure_logging
from slawatch.shared.settings import bad_setting, load_settings, require
from slawatch.shared.tasks import run_service

log = logging.getLogger("slawatch.notifier")


def run(clock: Clock | None = None) -> None:
    """``clock``: what the report schedule runs on (tests of whole processes set it)."""
    settings = load_settings(NotifierSettings)
    configure_logging(settings)
    require(settings, "kafka_bootstrap", "database_url")
    calendars = {}
    try:
        config = load_routes(settings.routes_file, os.environ)
    except RoutesError as exc:
        for issue in exc.issues:
            print(issue.render(exc.source), file=sys.stderr)
        raise bad_setting(
            "SLAWATCH_ROUTES_FILE", f"{len(exc.issues)} problem(s) in {exc.source}"
        ) from None
    if config.reports and not settings.notifier_monitor_token and not settings.is_dev:
        raise bad_setting(
            "SLAWATCH_NOTIFIER_MONITOR_TOKEN",
            "the routing file has `reports`: give a viewer key of the monitor's report API",
        )
    if config.calendars:  # quiet hours use the SLA policy file's business calendars
        try:
            calendars = load_calendars(settings.policy_file)
        except CalendarsUnavailable as exc:
            raise bad_setting("SLAWATCH_POLICY_FILE", f"needed for quiet hours: {exc}") from None
        missing = sorted(config.calendars - set(calendars))
        if missing:
            raise bad_setting(
                "SLAWATCH_ROUTES_FILE",
                f"calendar(s) {', '.join(missing)} not in the policy file {settings.policy_file}",
            )
    # `name:sha256hex` here (as before roles) means an operator: these keys make silences.
    keys = api_keys_setting(
        settings.notifier_api_keys,
        "SLAWATCH_NOTIFIER_API_KEYS",
        dev=False,
        default_role="operator",
        allowed=PEOPLE_ROLES,
    )
    app = create_app(settings, config, calendars, keys, clock=clock)
    integrations = sum(len(r.integrations) for r in config.receivers.values())
    log.info(
        "notifier on http://%s:%d: %d receivers, %d integrations, %d routes",
        settings.notifier_host,
        settings.notifier_port,
        len(config.receivers),
        integrations,
        len(config.routes),
    )
    run_service(app, settings.notifier_host, settings.notifier_port, settings.shutdown_timeout_s)
