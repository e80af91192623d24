"""`slawatch ingest`: run the ingest service alone, configured by SLAWATCH_* variables."""

from __future__ import annotations

import logging

import uvicorn

from services.ingest.app import create_app
from shared.auth import ApiKeys, api_keys_setting
from shared.logs import configure_logging
from shared.settings import IngestSettings, bad_setting, load_settings, require

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
    app = create_app(settings, keys)
    log.info("ingest listening on http://%s:%d", settings.ingest_host, settings.ingest_port)
    uvicorn.run(
        app, host=settings.ingest_host, port=settings.ingest_port, log_config=None, access_log=False
    )
