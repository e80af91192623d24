"""The three services as real processes on 127.0.0.1, against the real broker and database,
started the way `slawatch <service>` starts them, with API keys (SLAWATCH_ENV=prod)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.processes import ServiceProcess

TOKEN = "fuzz-token-not-a-secret"
KEYS = "fuzz:" + hashlib.sha256(TOKEN.encode()).hexdigest()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SOURCE_SECRET = "fuzz-source-secret-not-a-secret"
SIGNED_SOURCES = ("ZENDESK", "FRESHDESK", "JIRA", "ZAMMAD", "CHATWOOT")
FAST_POLICIES = Path(__file__).parents[1] / "monitor" / "fast-policies.yaml"
ROUTES = """\
version: 1
defaults: {group_wait: 0s, group_interval: 1s, repeat_interval: never}
receivers:
  - name: console
    integrations: [{type: console}]
routes:
  - receiver: console
"""


Service = ServiceProcess  # the three services of the fuzzed stack


def stack_env(
    settings, database_url: str, routes: Path, jwks_url: str = "http://127.0.0.1:9/jwks.json"
) -> dict[str, str]:
    return {
        "SLAWATCH_ENV": "prod",
        "SLAWATCH_LOG_LEVEL": "WARNING",
        "SLAWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SLAWATCH_DATABASE_URL": database_url,
        "SLAWATCH_TOPIC_EVENTS": settings.topic_events,
        "SLAWATCH_TOPIC_EVENTS_DLQ": settings.topic_events_dlq,
        "SLAWATCH_TOPIC_SLA": settings.topic_sla,
        "SLAWATCH_TOPIC_NOTIFICATIONS_DLQ": settings.topic_notifications_dlq,
        "SLAWATCH_POLICY_FILE": str(FAST_POLICIES),
        "SLAWATCH_ROUTES_FILE": str(routes),
        "SLAWATCH_MONITOR_GROUP_ID": settings.topic_events + ".monitor",
        "SLAWATCH_NOTIFIER_GROUP_ID": settings.topic_sla + ".notifier",
        "SLAWATCH_INGEST_API_KEYS": KEYS,
        "SLAWATCH_NOTIFIER_API_KEYS": KEYS,
        # The read APIs (monitor, notifier) need a role: the fuzzer may do everything.
        "SLAWATCH_API_KEYS": "fuzz:admin:" + KEYS.split(":", 1)[1],
        # The helpdesk sources, so that fuzzed bodies also reach parsing and mapping.
        **{f"SLAWATCH_SOURCE_{name}_SECRET": SOURCE_SECRET for name in SIGNED_SOURCES},
        "SLAWATCH_SOURCE_ZOHO_DESK_ORG_ID": "60001234",
        "SLAWATCH_SOURCE_ZOHO_DESK_JWKS_URL": jwks_url,
    }
