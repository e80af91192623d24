"""Console metrics. One registry per instance so tests can run several in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class ConsoleMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.live_clients = Gauge(
            "slawatch_console_live_clients",
            "Browsers connected to the live board (Server-Sent Events).",
            registry=r,
        )
        self.sla_events = Counter(
            "slawatch_console_sla_events",
            "SLA events read from the SLA topic and pushed to the live boards.",
            registry=r,
        )
        self.state_changes = Counter(
            "slawatch_console_state_changes",
            "Silences, expiries and acknowledgements made in the console.",
            ["action", "outcome"],
            registry=r,
        )
        self.logins = Counter(
            "slawatch_console_logins", "Logins (ok, refused, throttled).", ["outcome"], registry=r
        )
        self.backend_errors = Counter(
            "slawatch_console_backend_errors",
            "Calls to the monitor or notifier that failed or were refused.",
            ["service"],
            registry=r,
        )
