"""Console settings (SLAWATCH_CONSOLE_*), on top of the common ones."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from slawatch.shared.settings import CommonSettings


class ConsoleSettings(CommonSettings):
    console_host: str = "127.0.0.1"
    console_port: int = Field(8083, ge=0, le=65535)
    console_monitor_url: str = Field(
        "http://127.0.0.1:8081", description="The monitor's read API, as the console reaches it."
    )
    console_notifier_url: str = Field(
        "http://127.0.0.1:8082", description="The notifier's API, as the console reaches it."
    )
    console_service_token: str | None = Field(
        None,
        repr=False,
        description="Bearer token the console presents to the monitor and notifier (an operator key).",
    )
    console_session_secret: str | None = Field(
        None,
        repr=False,
        min_length=32,
        description="Key that signs session cookies and CSRF tokens (32+ characters).",
    )
    console_session_ttl_s: int = Field(
        28_800, ge=60, le=30 * 86_400, description="A login lasts this long."
    )
    console_cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="Secure cookies: auto = when the request came over HTTPS."
    )
    console_page_size: int = Field(50, ge=10, le=200, description="Tickets per board page.")
    console_at_risk_window: str = Field("30m", description="The board's default at-risk window.")
    console_proxy_user_header: str | None = Field(
        None,
        description="SSO: header an authenticating proxy sets to the user's name (e.g. X-Forwarded-Email).",
    )
    console_proxy_role: Literal["viewer", "operator", "admin"] = Field(
        "viewer", description="Role of users the proxy authenticated."
    )

    @field_validator("console_at_risk_window")
    @classmethod
    def _window(cls, value: str) -> str:
        from datetime import timedelta

        from slawatch.shared.durations import parse_duration

        # parse_duration raises ValueError naming the problem
        if not timedelta(0) < parse_duration(value) <= timedelta(days=90):
            raise ValueError("between 1s and 90d")
        return value

    @field_validator("console_monitor_url", "console_notifier_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")
