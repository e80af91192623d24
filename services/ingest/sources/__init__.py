"""Helpdesk adapters: each system's own webhooks in, slawatch ticket events out.

One small module per system (its signature scheme, defaults and translation) and one
pipeline for all (services/ingest/sources/pipeline.py): verify -> parse -> map -> validate
-> publish through the ingest publisher, so a helpdesk's request is acknowledged exactly
like ``POST /v1/events``: 202 only after the broker acked, 503 + Retry-After when it cannot.
See docs/sources.md.
"""

from __future__ import annotations

from slawatch.services.ingest.sources import chatwoot, freshdesk, jira, zammad, zendesk, zoho_desk
from slawatch.services.ingest.sources.base import Adapter

ADAPTERS: dict[str, Adapter] = {
    module.ADAPTER.system: module.ADAPTER
    for module in (zendesk, freshdesk, zoho_desk, jira, zammad, chatwoot)
}
