"""Settings from ``SLAWATCH_*`` environment variables (pydantic-settings).

Each service has its own settings class built from the common one, so a service reads
only what it uses and a missing or malformed value stops it at start with one line that
names the variable (see :func:`load_settings`). Every field is documented, with its
default, in docs/configuration.md; ``tests/test_settings.py`` keeps the two in step.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLAWATCH_", extra="ignore", frozen=True)

    env: Literal["dev", "prod"] = Field(
        "prod", description="`dev` enables the documented dev token and human-readable logs."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text", "auto"] = Field(
        "auto", description="`auto`: text when env=dev, JSON otherwise."
    )
    kafka_bootstrap: str | None = Field(
        None,
        description="host:port[,host:port...]. Unset: `slawatch dev` and the tests start a local Tansu broker.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = Field(None, repr=False)
    kafka_ssl_cafile: Path | None = None
    kafka_session_timeout_s: float = Field(
        10.0,
        ge=1,
        le=300,
        description="Consumer-group session timeout: a consumer that stops heartbeating "
        "(crashed) loses its partitions after this long. Tansu holds a group's first join "
        "for half of it, so it also bounds how fast a restarted monitor/notifier is ready.",
    )
    topic_events: str = "slawatch.ticket-events"
    topic_events_dlq: str = "slawatch.ticket-events-dlq"
    topic_sla: str = "slawatch.sla-events"
    topic_notifications_dlq: str = "slawatch.notifications-dlq"
    events_partitions: int = Field(
        6, ge=1, le=1024, description="Partitions of the events topic when slawatch creates it."
    )
    topic_replication: int = Field(
        1, ge=1, le=16, description="Replication factor of topics slawatch creates."
    )
    database_url: str | None = Field(
        None,
        repr=False,
        description="postgresql:// or postgresql+asyncpg:// URL. Unset: dev and tests start an embedded PostgreSQL.",
    )
    policy_file: Path = Field(
        Path("examples/policies.yaml"), description="The SLA policy file (YAML)."
    )
    api_keys: str | None = Field(
        None,
        repr=False,
        description="`name:role:sha256hex` keys of people and services reading the APIs and the console.",
    )
    routes_file: Path = Field(
        Path("examples/routes.yaml"), description="The notification routing file (YAML)."
    )

    shutdown_timeout_s: float = Field(
        20.0,
        gt=0,
        le=3600,
        description="On SIGTERM/SIGINT: the most a service spends finishing the work in hand "
        "(batch, deliveries, outbox) before it exits anyway. Keep it below Kubernetes' "
        "terminationGracePeriodSeconds.",
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for part in value.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError("expected host:port[,host:port...]")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme
        if scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
            raise ValueError("expected a postgresql:// URL")
        return value

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"


S = TypeVar("S", bound=BaseSettings)


class SettingsError(SystemExit):
    """Raised (as SystemExit(2)) with one clear line per bad setting."""


def bad_setting(variable: str, message: str) -> SettingsError:
    """Print the one line naming a bad or missing variable; raise what this returns (exit 2)."""
    print(f"slawatch: bad setting {variable}: {message}", file=sys.stderr)
    return SettingsError(2)


def require(settings: CommonSettings, *fields: str, hint: str = " (or use `slawatch dev`)") -> None:
    """Stop with a clear line when a setting a service cannot run without is unset."""
    for name in fields:
        if not getattr(settings, name):
            raise bad_setting(f"SLAWATCH_{name.upper()}", "required" + hint)


def database_settings() -> CommonSettings:
    """The common settings of a command that cannot run without the database (`slawatch db`,
    `slawatch replay`); exits 2 naming SLAWATCH_DATABASE_URL when it is unset."""
    settings = load_settings(CommonSettings)
    require(settings, "database_url", hint="")
    return settings


def load_settings(cls: type[S]) -> S:
    """Build settings or stop with a line naming each bad variable; never echo its value."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        lines = []
        for error in exc.errors(include_input=False, include_url=False):
            name = (prefix + "_".join(str(p) for p in error["loc"])).upper()
            lines.append(f"slawatch: bad setting {name}: {error['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SettingsError(2) from None
