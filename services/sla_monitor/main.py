"""`slawatch monitor`: run the SLA monitor alone, configured by SLAWATCH_* variables."""

from __future__ import annotations

import logging

from slawatch.services.sla_monitor import engine_port
from slawatch.services.sla_monitor.app import create_app
from slawatch.services.sla_monitor.settings import MonitorSettings
from slawatch.shared.logs import configure_logging
from slawatch.shared.settings import bad_setting, load_settings, require
from slawatch.shared.tasks import run_service

log = logging.getLogger("slawatch.monitor")


def run() -> None:
    settings = load_settings(MonitorSettings)
    configure_logging(settings)
    require(settings, "kafka_bootstrap", "database_url")
    try:
        policies = engine_port.load_policies(settings.policy_file)
    except engine_port.PolicyError as exc:
        raise bad_setting("SLAWATCH_POLICY_FILE", str(exc)) from None
    app = create_app(settings, policies)
    log.info(
        "monitor read API on http://%s:%d; SLA engine %s",
        settings.monitor_host,
        settings.monitor_port,
        "compiled (mypyc)" if engine_port.NATIVE else "pure Python",
    )
    run_service(app, settings.monitor_host, settings.monitor_port, settings.shutdown_timeout_s)
