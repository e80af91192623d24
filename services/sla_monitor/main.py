"""`slawatch monitor`: run the SLA monitor alone, configured by SLAWATCH_* variables."""

from __future__ import annotations

import gc
import logging

from slawatch.services.sla_monitor import engine_port
from slawatch.services.sla_monitor.app import create_app
from slawatch.services.sla_monitor.settings import MonitorSettings
from slawatch.shared.logs import configure_logging
from slawatch.shared.settings import bad_setting, load_settings, require
from slawatch.shared.tasks import run_service

log = logging.getLogger("slawatch.monitor")

# Objects allocated between two young-generation collections (CPython's default is 700).
# A round allocates a few hundred thousand short-lived objects (states, records, rows), so
# at the default the collector ran thousands of times a round and its older generations
# walked everything that survived: measured in bench/monitor.py's spread order, 50,000
# took 17 % less CPU per event (4,101 -> 5,046 events/s). Memory: at most ~50,000 young
# objects wait for a collection, a few MB.
GC_YOUNG_THRESHOLD = 50_000


def run() -> None:
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)
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
