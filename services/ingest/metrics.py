"""Ingest metrics. One registry per app instance so tests can run several apps in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.accepted = Counter(
            "slawatch_ingest_events_accepted",
            "Events acked by the broker.",
            ["type", "source"],
            registry=r,
        )
        self.rejected = Counter(
            "slawatch_ingest_events_rejected",
            "Events refused (reason: invalid, too_large, too_many, unauthorized, malformed_json, unavailable).",
            ["type", "source", "reason"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "slawatch_ingest_request_seconds",
            "POST /v1/events latency.",
            ["status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.publish_seconds = Histogram(
            "slawatch_ingest_publish_seconds",
            "Time from first send to the broker's last ack.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.source_requests = Counter(
            "slawatch_ingest_source_requests",
            "Helpdesk webhook requests (POST /v1/sources/{system}) by source and outcome"
            " (accepted, ignored, unauthorized, invalid, malformed_json, too_large,"
            " unsupported_media_type, unavailable).",
            ["source", "outcome"],
            registry=r,
        )
        self.batch_size = Histogram(
            "slawatch_ingest_batch_size",
            "Events per accepted request.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
