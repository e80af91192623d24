"""`slawatch ingest`: run the ingest service alone, configured by SLAWATCH_* variables."""

from __future__ import annotations

import importlib.util
import logging
import sys

from slawatch.services.ingest.app import create_app
from slawatch.services.ingest.settings import IngestSettings
from slawatch.services.ingest.sources.mapping import MappingError
from slawatch.shared.auth import ApiKeys, api_keys_setting
from slawatch.shared.logs import configure_logging
from slawatch.shared.settings import bad_setting, load_settings, require
from slawatch.shared.tasks import run_service

log = logging.getLogger("slawatch.ingest")


def api_keys_from(settings: IngestSettings) -> ApiKeys:
    """Keys from SLAWATCH_INGEST_API_KEYS; the documented dev token only when env=dev."""
    keys = api_keys_setting(
        settings.ingest_api_keys,
        "SLAWATCH_INGEST_API_KEYS",
        dev=settings.is_dev,
        allowed=frozenset({"ingest"}),  # `name:sha256hex` or `name:ingest:sha256hex`
    )
    if keys is None:
        raise bad_setting("SLAWATCH_INGEST_API_KEYS", "required unless SLAWATCH_ENV=dev")
    return keys


def run() -> None:
    settings = load_settings(IngestSettings)
    configure_logging(settings)
    require(settings, "kafka_bootstrap")
    keys = api_keys_from(settings)
    try:
        app = create_app(settings, keys)
    except MappingError as exc:  # a bad SLAWATCH_SOURCE_<SYSTEM>_MAPPING file: every line
        print("\n".join(exc.lines), file=sys.stderr)
        raise SystemExit(2) from None
    log.info("ingest listening on http://%s:%d", settings.ingest_host, settings.ingest_port)
    # One process, no access log (run_service), httptools + uvloop: a single-event request
    # costs ~0.4 ms of CPU this way against ~0.6 ms on h11 + asyncio (docs/operations.md).
    run_service(
        app,
        settings.ingest_host,
        settings.ingest_port,
        settings.shutdown_timeout_s,
        http="httptools",
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",  # not on Windows
    )
