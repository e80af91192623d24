"""`slawatch console`: run the supervisor console, configured by SLAWATCH_* variables."""

from __future__ import annotations

import logging

from slawatch.services.console.app import create_app
from slawatch.services.console.settings import ConsoleSettings
from slawatch.shared.logs import configure_logging
from slawatch.shared.settings import bad_setting, load_settings, require
from slawatch.shared.tasks import run_service

log = logging.getLogger("slawatch.console")


def run() -> None:
    settings = load_settings(ConsoleSettings)
    configure_logging(settings)
    require(settings, "kafka_bootstrap")
    if not settings.is_dev:
        if not settings.console_session_secret:
            raise bad_setting(
                "SLAWATCH_CONSOLE_SESSION_SECRET",
                "required unless SLAWATCH_ENV=dev (32+ characters)",
            )
        if not settings.console_service_token:
            raise bad_setting(
                "SLAWATCH_CONSOLE_SERVICE_TOKEN",
                "required unless SLAWATCH_ENV=dev (a token of an operator key of the monitor and notifier)",
            )
        if not settings.api_keys:
            raise bad_setting("SLAWATCH_API_KEYS", "required: the keys people log in with")
    app = create_app(settings)
    log.info("console on http://%s:%d", settings.console_host, settings.console_port)
    # SIGTERM/SIGINT: stop accepting, close the live boards' streams and open requests
    # within the shutdown budget (SLAWATCH_SHUTDOWN_TIMEOUT_S), exit 0 (shared/tasks.py).
    run_service(app, settings.console_host, settings.console_port, settings.shutdown_timeout_s)
