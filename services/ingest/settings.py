"""Ingest settings (SLAWATCH_INGEST_*, SLAWATCH_SOURCE_*), on top of the common ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from slawatch.shared.settings import CommonSettings


class IngestSettings(CommonSettings):
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(8080, ge=0, le=65535)
    ingest_api_keys: str | None = Field(
        None,
        repr=False,
        description="Comma-separated `name:sha256hex` pairs (SHA-256 of each bearer token).",
    )
    ingest_max_batch: int = Field(1000, ge=1, le=100_000, description="Most events in one request.")
    ingest_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body; larger -> 413."
    )
    ingest_publish_timeout_s: float = Field(
        10.0, gt=0, description="How long to wait for the broker's ack before answering 503."
    )
    ingest_retry_after_s: int = Field(5, ge=1, description="Retry-After sent with a 503.")

    # Helpdesk adapters (POST /v1/sources/{system}, services/ingest/sources/). A system whose
    # secret (or, for Zoho Desk, org id) is unset answers 401 to everything: nothing is
    # accepted unverified. Secrets are never logged, echoed or put in a metric.
    source_zendesk_secret: str | None = Field(
        None, repr=False, description="Zendesk webhook signing secret."
    )
    source_freshdesk_secret: str | None = Field(
        None, repr=False, description="Password of the Freshdesk webhook's basic auth."
    )
    source_jira_secret: str | None = Field(None, repr=False, description="Jira webhook secret.")
    source_zammad_secret: str | None = Field(
        None, repr=False, description="Zammad webhook HMAC signature token."
    )
    source_chatwoot_secret: str | None = Field(
        None, repr=False, description="Chatwoot webhook secret."
    )
    source_zoho_desk_org_id: str | None = Field(
        None, description="Zoho Desk organisation id; the JWT's issuer must be `orgId:<id>`."
    )
    source_zoho_desk_webhook_id: str | None = Field(
        None, description="Zoho Desk webhook id; when set the JWT's audience must match."
    )
    source_zoho_desk_jwks_url: str = Field(
        "https://desk.zoho.com/.well-known/jwks.json",
        description="Where Zoho Desk publishes the keys that sign X-ZDesk-JWT.",
    )
    source_zendesk_mapping: Path | None = None
    source_freshdesk_mapping: Path | None = None
    source_zoho_desk_mapping: Path | None = None
    source_jira_mapping: Path | None = None
    source_zammad_mapping: Path | None = None
    source_chatwoot_mapping: Path | None = None
    source_replay_window_s: int = Field(
        300,
        ge=10,
        le=86_400,
        description="Signed timestamps (Zendesk, Chatwoot) older or newer than this -> 401.",
    )

    def source_secret(self, system: str) -> str | None:
        return getattr(self, f"source_{system.replace('-', '_')}_secret", None)

    def source_mapping(self, system: str) -> Path | None:
        return getattr(self, f"source_{system.replace('-', '_')}_mapping")
