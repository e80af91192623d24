"""Database plumbing: one way to turn ``SLAWATCH_DATABASE_URL`` into an async engine.

Operators paste plain ``postgresql://`` URLs (libpq style, including ``?host=/socket/dir``
for Unix sockets); SQLAlchemy wants the driver spelled out. The translation lives here
so no service does it differently.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# One database, one migration history: the monitor's tables (services/sla_monitor/schema.py)
# and the notifier's (services/notifier/schema.py) are declared on this one MetaData.
metadata = MetaData()


def async_url(url: str) -> URL:
    """``postgresql://`` / ``postgres://`` -> ``postgresql+asyncpg://``; other parts kept."""
    parsed = make_url(
        url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url
    )
    if parsed.drivername in ("postgresql", "postgresql+asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(
        f"unsupported database URL scheme {parsed.drivername!r}; expected postgresql://"
    )


def asyncpg_dsn(url: str) -> str:
    """A DSN for raw asyncpg (used where SQLAlchemy would only add overhead)."""
    return async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str, **options: Any) -> AsyncEngine:
    defaults: dict[str, Any] = {"pool_size": 5, "max_overflow": 5, "pool_pre_ping": True}
    defaults.update(options)
    return create_async_engine(async_url(url), **defaults)


def with_database(url: str, database: str) -> str:
    """The same server, another database (tests make one per module)."""
    return (
        async_url(url)
        .set(database=database, drivername="postgresql")
        .render_as_string(hide_password=False)
    )
