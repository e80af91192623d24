"""Notifier metrics. One registry per instance so tests can run several in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
LABELS = ["receiver", "integration"]


@dataclass
class NotifierMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.sent = Counter(
            "slawatch_notifier_sent", "Notifications the provider accepted.", LABELS, registry=r
        )
        self.messages = Counter(
            "slawatch_notifier_messages",
            "Messages delivered (a grouped message carries several notifications).",
            LABELS,
            registry=r,
        )
        self.failed = Counter(
            "slawatch_notifier_failed",
            "Notifications given up on after their last attempt (then dead-lettered).",
            LABELS,
            registry=r,
        )
        self.dead_lettered = Counter(
            "slawatch_notifier_dead_lettered",
            "Notifications written to the notifications dead-letter topic.",
            LABELS,
            registry=r,
        )
        self.retried = Counter(
            "slawatch_notifier_retried",
            "Failed delivery attempts that will be retried.",
            LABELS,
            registry=r,
        )
        self.silenced = Counter(
            "slawatch_notifier_silenced", "Notifications a silence suppressed.", LABELS, registry=r
        )
        self.inhibited = Counter(
            "slawatch_notifier_inhibited",
            "Notifications superseded by a stronger alert of the same SLA target.",
            LABELS,
            registry=r,
        )
        self.cleared = Counter(
            "slawatch_notifier_cleared",
            "Pending notifications dropped because the target was met or the breach retracted.",
            LABELS,
            registry=r,
        )
        self.acknowledged = Counter(
            "slawatch_notifier_acknowledged",
            "Reminders not sent because someone acknowledged the breach.",
            LABELS,
            registry=r,
        )
        self.deduplicated = Counter(
            "slawatch_notifier_deduplicated",
            "Notifications not sent again because the delivery log already had them.",
            LABELS,
            registry=r,
        )
        self.latency = Histogram(
            "slawatch_notifier_delivery_latency_seconds",
            "From the SLA event's occurred_at to the provider accepting the notification.",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.attempt_seconds = Histogram(
            "slawatch_notifier_attempt_seconds",
            "Duration of one delivery attempt.",
            ["integration_type", "outcome"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.pending = Gauge(
            "slawatch_notifier_pending",
            "Notifications queued in this process (held, grouped or in flight).",
            registry=r,
        )
        self.records = Counter(
            "slawatch_notifier_records",
            "SLA-topic records consumed, by result (ok, invalid).",
            ["result"],
            registry=r,
        )
        self.records_dead_lettered = Counter(
            "slawatch_notifier_records_dead_lettered",
            "SLA-topic records sent to the notifications dead-letter topic, by reason "
            "(invalid, undecodable, store, routing, other).",
            ["reason"],
            registry=r,
        )
        self.report_checks = Counter(
            "slawatch_notifier_report_checks",
            "Looks at the schedule of the routing file's reports.",
            registry=r,
        )
        self.reports = Counter(
            "slawatch_notifier_reports",
            "Scheduled-report deliveries by result: sent, retry (failed, tried again after "
            "the lease), given_up (dead-lettered).",
            ["report", "receiver", "integration", "result"],
            registry=r,
        )
