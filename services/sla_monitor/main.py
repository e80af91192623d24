"""`slawatch monitor`: run the SLA monitor alone, configured by SLAWATCH_* variables."""

from __future__ import annotations

import logging
import sys

import uvicorn

from services.sla_monitor import engine_port
from services.sla_monitor.app import create_app
from services.sla_monitor.settings import MonitorSettings
from shared.logs import configure_logging
from shared.settings import SettingsError, load_settings

log = logging.getLogger("slawatch.monitor")


def run() -> None:
    settings = load_settings(MonitorSettings)
    configure_logging(settings)
    for name, value in (
        ("SLAWATCH_KAFKA_BOOTSTRAP", settings.kafka_bootstrap),
        ("SLAWATCH_DATABASE_URL", settings.database_url),
    ):
        if not value:
            print(
                f"slawatch: bad setting {name}: required (or use `slawatch dev`)", file=sys.stderr
            )
            raise SettingsError(2)
    try:
        policies = engine_port.load_policies(settings.policy_file)
    except engine_port.PolicyError as exc:
        print(f"slawatch: bad setting SLAWATCH_POLICY_FILE: {exc}", file=sys.stderr)
        raise SettingsError(2) from None
    app = create_app(settings, policies)
    log.info("monitor read API on http://%s:%d", settings.monitor_host, settings.monitor_port)
    uvicorn.run(
        app,
        host=settings.monitor_host,
        port=settings.monitor_port,
        log_config=None,
        access_log=False,
    )
