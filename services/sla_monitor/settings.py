"""Monitor settings (SLAWATCH_MONITOR_*), on top of the common ones."""

from __future__ import annotations

from pydantic import Field

from slawatch.shared.settings import CommonSettings


class MonitorSettings(CommonSettings):
    monitor_host: str = "127.0.0.1"
    monitor_port: int = Field(8081, ge=0, le=65535)
    monitor_group_id: str = Field(
        "slawatch-monitor", description="Kafka consumer group of the monitors."
    )
    monitor_max_batch: int = Field(
        2000, ge=1, le=100_000, description="Most records applied in one database transaction."
    )
    monitor_late_after_s: float = Field(
        2.0,
        ge=0,
        description="An SLA event emitted this long after its instant is flagged detected_late.",
    )
    monitor_state_cache: int = Field(
        0,
        ge=0,
        le=10_000_000,
        description="Deserialised ticket states kept in memory (least recently used out, about "
        "8 KB each); 0 (the default) turns the cache off: measured, it did not pay for its "
        "garbage-collector cost (bench/RESULTS.md).",
    )
    monitor_outbox_batch: int = Field(
        1000, ge=1, le=100_000, description="Outbox rows sent per round."
    )
    monitor_ready_max_lag: int = Field(
        1000,
        ge=0,
        description="/readyz answers 503 while any owned partition is more than this many "
        "records behind.",
    )
    monitor_report_parallelism: int = Field(
        2,
        ge=1,
        le=8,
        description="Queries one compliance report runs at once, each over a share of its "
        "groups on its own database connection (PostgreSQL does not parallelise the "
        "percentiles itself); about the database server's free cores.",
    )
    monitor_team_kpi_window_s: float = Field(
        7 * 86400,
        gt=0,
        le=366 * 86400,
        description="The slawatch_team_* gauges cover tickets created in this trailing window.",
    )
    monitor_team_kpi_refresh_s: float = Field(
        60.0,
        ge=5,
        le=86400,
        description="How often the slawatch_team_* gauges are recomputed (one report query).",
    )
