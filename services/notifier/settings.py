"""Notifier settings (SLAWATCH_NOTIFIER_*), on top of the common ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from slawatch.shared.settings import CommonSettings


class NotifierSettings(CommonSettings):
    notifier_host: str = "127.0.0.1"
    notifier_port: int = Field(8082, ge=0, le=65535)
    notifier_group_id: str = Field(
        "slawatch-notifier", description="Kafka consumer group of the notifiers."
    )
    notifier_max_batch: int = Field(
        500, ge=1, le=100_000, description="Most SLA-topic records queued in one transaction."
    )
    notifier_api_keys: str | None = Field(
        None,
        repr=False,
        description="More keys for the notifier; `name:sha256hex` means an operator (silences, acks).",
    )
    notifier_retry_max_attempts: int = Field(
        8,
        ge=1,
        le=100,
        description="Delivery attempts per notification before it is dead-lettered.",
    )
    notifier_retry_base_s: float = Field(
        1.0, gt=0, description="First backoff ceiling; doubles per attempt (full jitter)."
    )
    notifier_retry_cap_s: float = Field(
        300.0, gt=0, description="Largest backoff between attempts."
    )
    notifier_retry_budget_s: float = Field(
        3600.0, gt=0, description="From the first attempt to giving up, at most."
    )
    notifier_silence_refresh_s: float = Field(
        5.0, gt=0, description="How often silences made through other notifiers are picked up."
    )
    notifier_templates_dir: Path | None = Field(
        None, description="Folder of templates that override the built-in ones, by file name."
    )
    # Scheduled reports (the routing file's `reports`; services/notifier/report_scheduler.py)
    notifier_monitor_url: str = Field(
        "http://127.0.0.1:8081", description="The monitor's report API, as the notifier reaches it."
    )
    notifier_monitor_token: str | None = Field(
        None,
        repr=False,
        description="Bearer token the notifier presents to the monitor's report API (a viewer key).",
    )
    notifier_report_check_s: float = Field(
        30.0, gt=0, le=3600, description="How often the report schedule is looked at."
    )
    notifier_report_lease_s: float = Field(
        300.0,
        ge=10,
        le=86_400,
        description="A notifier sending a report holds it this long; if it dies, another "
        "takes over after this (a failed send is retried after it, too).",
    )
    notifier_report_late_s: float = Field(
        21_600.0,
        gt=0,
        le=7 * 86_400,
        description="A report not sent this long after its time (no notifier ran) is skipped.",
    )

    @field_validator("notifier_monitor_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")
