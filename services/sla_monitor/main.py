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

# The collector's thresholds: objects allocated between two young-generation collections
# (CPython's default 700), and young (then middle) collections between two of the next
# generation's (default 10, 10). A round allocates a few hundred thousand short-lived
# objects (states, records, rows), so at the default the collector ran thousands of times
# a round, and its older generations walked everything that survived. Measured in
# bench/monitor.py's spread order: 700 -> 50,000 took 17 % less CPU per event (4,101 ->
# 5,046 events/s); then, in one sitting of the same 248,905 events, (50,000, 20, 100) ->
# (200,000, 50, 100) 6-7 % less CPU again (the middle generation collected 2.5x less
# often), about as much as switching the collector off. Memory: at most ~200,000 young
# objects wait for a collection, and only those in reference cycles are garbage by then
# (the rest are freed by reference counting as they go): a few MB at worst.
GC_THRESHOLDS = (200_000, 50, 100)


def run() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
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
