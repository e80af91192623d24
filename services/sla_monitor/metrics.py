"""Monitor metrics: one registry per instance (tests run several in one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Business seconds: 1 min .. 30 days.
BUSINESS_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 432000, 2592000)

# (report figure, gauge name after slawatch_team_, help): the team gauges.
TEAM_KPIS = (
    ("tickets", "tickets", "Tickets created"),
    ("sla_met_pct", "sla_met_percent", "Finished targets met in time, percent"),
    ("first_response_p90_s", "first_response_p90_seconds", "First response p90, business s"),
    ("fcr_pct", "first_contact_resolution_percent", "Solved with one public agent reply, %"),
    ("csat_avg", "csat_average", "Mean CSAT (1-5)"),
    ("aht_mean_s", "handle_time_mean_seconds", "Mean handle time per solved ticket, s"),
    ("retention_pct", "customer_retention_percent", "Customers with tickets not churned, %"),
)


@dataclass
class MonitorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events_applied = Counter(
            "slawatch_monitor_events_applied", "Ticket events applied and committed.", registry=r
        )
        self.events_dead_lettered = Counter(
            "slawatch_monitor_events_dead_lettered",
            "Ticket events sent to the dead-letter topic, by reason "
            "(invalid, undecodable, engine, store, other).",
            ["reason"],
            registry=r,
        )
        self.sla_events = Counter(
            "slawatch_sla_events",
            "SLA events emitted, by kind, target, policy and customer tier.",
            ["kind", "target", "policy", "customer_tier"],
            registry=r,
        )
        self.sla_published = Counter(
            "slawatch_monitor_sla_events_published", "Outbox rows acked by the broker.", registry=r
        )
        self.open_tickets = Gauge(
            "slawatch_monitor_open_tickets", "Open tickets owned by this process.", registry=r
        )
        self.timers = Gauge(
            "slawatch_monitor_timers",
            "Tickets with an upcoming deadline in the timer heap.",
            registry=r,
        )
        self.at_risk = Gauge(
            "slawatch_sla_at_risk_tickets",
            "Owned tickets whose next SLA deadline is within 30 minutes.",
            registry=r,
        )
        self.lag = Gauge(
            "slawatch_monitor_consumer_lag",
            "Records not yet applied, by partition.",
            ["partition"],
            registry=r,
        )
        self.calendar_official_until = Gauge(
            "slawatch_calendar_official_until_timestamp_seconds",
            "Per calendar with holidays: the first instant whose holiday data is not official"
            " (or the end of the years checked when all are); deadlines from then on are"
            " estimates.",
            ["calendar"],
            registry=r,
        )
        self.owned_partitions = Gauge(
            "slawatch_monitor_owned_partitions", "Partitions assigned to this process.", registry=r
        )
        self.batch_seconds = Histogram(
            "slawatch_monitor_batch_seconds",
            "Apply + commit time of one consumed batch.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fire_delay_seconds = Histogram(
            "slawatch_monitor_fire_delay_seconds",
            "From a deadline's instant to its SLA event being committed to the outbox.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "slawatch_monitor_commit_seconds",
            "The database transaction of one batch (state, offsets, outbox).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events_duplicate = Counter(
            "slawatch_monitor_events_duplicate",
            "Ticket events whose event_id the ticket had already seen (changed nothing).",
            registry=r,
        )
        self.events_late = Counter(
            "slawatch_monitor_events_late",
            "Ticket events older than the ticket's newest event (applied in event-time order).",
            registry=r,
        )
        self.first_response_seconds = Histogram(
            "slawatch_sla_first_response_seconds",
            "Business time to the first public agent reply, when first_response is met.",
            ["policy"],
            buckets=BUSINESS_BUCKETS,
            registry=r,
        )
        self.resolution_seconds = Histogram(
            "slawatch_sla_resolution_seconds",
            "Business time to solved, when resolution is met.",
            ["policy"],
            buckets=BUSINESS_BUCKETS,
            registry=r,
        )
        self.db_errors = Counter(
            "slawatch_monitor_db_errors",
            "Database operations that failed for the database's sake (outage; retried).",
            registry=r,
        )
        self.ticket_errors = Counter(
            "slawatch_monitor_ticket_errors",
            "Tickets the timers or a policy recompute skipped: the engine failed on them "
            "(reason engine) or the database refused their rows (reason store).",
            ["stage", "reason"],
            registry=r,
        )
        self.customer_retargeted = Counter(
            "slawatch_monitor_customer_retargeted",
            "ticket.updated events published for open tickets after a customer's tier changed.",
            registry=r,
        )
        # Headline KPIs per team (the ticket's group), over a trailing window: teams, never
        # agents, as labels (docs/reports.md, Prometheus gauges).
        self.team_kpis = {
            figure: Gauge(
                f"slawatch_team_{name}",
                f"{help_text} (tickets created in the last SLAWATCH_MONITOR_TEAM_KPI_WINDOW_S).",
                ["team"],
                registry=r,
            )
            for figure, name, help_text in TEAM_KPIS
        }
        self.ready_seconds = Gauge(
            "slawatch_monitor_last_assignment_load_seconds",
            "Time to load state for the last partition assignment.",
            registry=r,
        )
