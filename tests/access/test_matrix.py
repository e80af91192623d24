"""Every HTTP endpoint of the monitor and the notifier, for each role: 401 without a valid
key, 403 with too small a role, an answer (never 401/403/5xx) with a sufficient one; the
probes and /metrics open. Real apps on the real broker and PostgreSQL.

The tables below must name every route an app has: a new endpoint fails this test until
its role is declared here.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import httpx
import pytest

from slawatch.services.database import migrate
from slawatch.services.notifier.app import create_app as create_notifier
from slawatch.services.notifier.config import load_routes
from slawatch.services.notifier.settings import NotifierSettings
from slawatch.services.sla_monitor import engine_port
from slawatch.services.sla_monitor.app import create_app as create_monitor
from slawatch.services.sla_monitor.settings import MonitorSettings
from slawatch.shared.kafka import ensure_topics
from tests.helpers import serve, topic_settings
from tests.monitor.harness import FAST_POLICIES

pytestmark = pytest.mark.integration

TOKENS = {role: f"{role}-token-matrix" for role in ("viewer", "operator", "admin")}
KEYS = ",".join(
    f"{role}-key:{role}:{hashlib.sha256(token.encode()).hexdigest()}"
    for role, token in TOKENS.items()
)
OPEN = {"/healthz", "/readyz", "/metrics"}
# FastAPI's own API description: no data, documented as public in docs/operations.md.
DESCRIPTION = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

MONITOR = {
    ("GET", "/v1/tickets/{ticket_id}/sla"): "viewer",
    ("GET", "/v1/sla/at-risk"): "viewer",
    ("GET", "/v1/reports/compliance"): "viewer",
    ("GET", "/v1/board"): "viewer",
    ("GET", "/v1/tickets/{ticket_id}/timeline"): "viewer",
    ("GET", "/v1/reports/compliance/series"): "viewer",
}
NOTIFIER = {
    ("POST", "/v1/silences"): "operator",
    ("GET", "/v1/silences"): "viewer",
    ("GET", "/v1/silences/{silence_id}"): "viewer",
    ("DELETE", "/v1/silences/{silence_id}"): "operator",
    ("GET", "/v1/notifications"): "viewer",
    ("POST", "/v1/acknowledgements"): "operator",
    ("GET", "/v1/acknowledgements"): "viewer",
    ("DELETE", "/v1/acknowledgements/{ack_id}"): "operator",
}
BODIES = {
    ("POST", "/v1/silences"): {"match": {"ticket_id": "M-1"}, "duration": "1h"},
    ("POST", "/v1/acknowledgements"): {
        "ticket_id": "M-1",
        "target": "first_response",
        "cycle": 0,
        "comment": "on it",
    },
}
LADDER = ("viewer", "operator", "admin")


def routes_of(app) -> set[tuple[str, str]]:
    """Every documented route, included routers' too (from the app's OpenAPI document)."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "matrix-x", path)


async def check_matrix(base_url: str, app, table: dict[tuple[str, str], str]) -> None:
    routes = routes_of(app)
    declared = set(table) | {(m, p) for (m, p) in routes if p in OPEN | DESCRIPTION}
    assert routes == declared, f"declare the role of: {sorted(routes ^ declared)}"
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        for (method, path) in sorted(routes):
            url = concrete(path)
            body = BODIES.get((method, path))
            need = table.get((method, path))
            anonymous = await client.request(method, url, json=body)
            if need is None:
                assert anonymous.status_code == 200, (method, path, anonymous.status_code)
                continue
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            assert anonymous.headers.get("www-authenticate") == "Bearer"
            wrong = await client.request(
                method, url, json=body, headers={"Authorization": "Bearer not-a-key"}
            )
            assert wrong.status_code == 401, (method, path)
            assert "not-a-key" not in wrong.text
            for role in LADDER:
                headers = {"Authorization": f"Bearer {TOKENS[role]}"}
                answer = await client.request(method, url, json=body, headers=headers)
                if LADDER.index(role) >= LADDER.index(need):
                    assert answer.status_code not in (401, 403), (method, path, role, answer.text)
                    assert answer.status_code < 500, (method, path, role, answer.text)
                else:
                    assert answer.status_code == 403, (method, path, role, answer.text)
                    assert TOKENS[role] not in answer.text


async def test_every_endpoint_answers_by_role(
    kafka_bootstrap, fresh_database, topic_prefix, tmp_path: Path
) -> None:
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    monitor_settings = topic_settings(
        MonitorSettings,
        topic_prefix,
        kafka_bootstrap,
        database_url=fresh_database,
        api_keys=KEYS,
        monitor_group_id=f"{topic_prefix}-monitor",
        events_partitions=1,
    )
    await ensure_topics(monitor_settings)
    notifier_settings = topic_settings(
        NotifierSettings,
        topic_prefix,
        kafka_bootstrap,
        database_url=fresh_database,
        api_keys=KEYS,
        notifier_group_id=f"{topic_prefix}-notifier",
    )
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "version: 1\nreceivers:\n  - name: log\n    integrations: [{type: console}]\n"
        "routes:\n  - receiver: log\n"
    )
    monitor = create_monitor(monitor_settings, engine_port.load_policies(FAST_POLICIES))
    notifier = create_notifier(notifier_settings, load_routes(routes, {}), {}, None)
    async with serve(monitor) as monitor_url, serve(notifier) as notifier_url:
        await check_matrix(monitor_url, monitor, MONITOR)
        await check_matrix(notifier_url, notifier, NOTIFIER)
