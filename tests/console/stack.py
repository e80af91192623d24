"""The whole product as real processes for the console's tests: ingest, monitor, notifier
and console (`slawatch <service>`, as in production, SLAWATCH_ENV=prod) on the session's
broker and a database of their own, plus a local webhook receiver the notifier posts to.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.processes import ServiceProcess, stop_all

ARTEFACTS = Path(__file__).resolve().parents[2] / ".build" / "test-artefacts" / "console"

TOKENS = {
    "viewer": "vera-viewer-token-" + "1" * 16,
    "operator": "otto-operator-token-" + "2" * 16,
    "admin": "ada-admin-token-" + "3" * 16,
    "service": "console-service-token-" + "4" * 16,
    "ingest": "crm-ingest-token-" + "5" * 16,
}
NAMES = {"viewer": "vera", "operator": "otto", "admin": "ada", "service": "console-svc"}
ROLES = {"viewer": "viewer", "operator": "operator", "admin": "admin", "service": "operator"}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


API_KEYS = ",".join(f"{NAMES[k]}:{ROLES[k]}:{digest(TOKENS[k])}" for k in NAMES)

# Targets of seconds: a ticket warns at 6 s, breaches at 12 s, escalates 40 s later.
POLICIES = """\
version: 1
calendars:
  always: {timezone: UTC, always_open: true}
pause_statuses: [pending, on_hold]
policies:
  - id: console-vip
    match: {customer_tier: [gold]}
    calendar: always
    targets: {first_response: 12s, resolution: 1h}
    warn_at: [0.5]
    escalations: [40s]
  - id: standard
    match: {}
    calendar: always
    targets: {first_response: 2h, resolution: 1d}
    warn_at: [0.8]
"""

ROUTES = """\
version: 1
defaults: {{group_wait: 0s, group_interval: 1s, repeat_interval: 3s, repeat_limit: 100}}
receivers:
  - name: supervisors
    integrations:
      - type: webhook
        url: "{url}"
        secret: console-test-secret
routes:
  - receiver: supervisors
    match: {{kind: [breached, escalated]}}
"""


Service = ServiceProcess


@dataclass
class Stack:
    services: dict[str, Service]
    topics: dict[str, str]
    webhook_path: str

    @property
    def console(self) -> str:
        return self.services["console"].url

    def url(self, name: str) -> str:
        return self.services[name].url

    async def post(self, *events: dict) -> None:
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {TOKENS['ingest']}"}, timeout=10
        ) as client:
            response = await client.post(
                self.url("ingest") + "/v1/events", json={"events": list(events)}
            )
            assert response.status_code == 202, response.text

    def stop(self) -> None:
        stop_all(list(self.services.values()))


def start_stack(kafka_bootstrap: str, database_url: str, webhook_url: str, folder: Path) -> Stack:
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "c" + uuid.uuid4().hex[:8]
    topics = {
        "SLAWATCH_TOPIC_EVENTS": f"{prefix}.ticket-events",
        "SLAWATCH_TOPIC_EVENTS_DLQ": f"{prefix}.ticket-events-dlq",
        "SLAWATCH_TOPIC_SLA": f"{prefix}.sla-events",
        "SLAWATCH_TOPIC_NOTIFICATIONS_DLQ": f"{prefix}.notifications-dlq",
    }
    policies, routes = folder / "policies.yaml", folder / "routes.yaml"
    policies.write_text(POLICIES)
    path = f"/{prefix}"
    routes.write_text(ROUTES.format(url=webhook_url + path))
    common = {
        "SLAWATCH_ENV": "prod",
        "SLAWATCH_LOG_FORMAT": "text",
        "SLAWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SLAWATCH_DATABASE_URL": database_url,
        "SLAWATCH_POLICY_FILE": str(policies),
        "SLAWATCH_ROUTES_FILE": str(routes),
        "SLAWATCH_API_KEYS": API_KEYS,
        "SLAWATCH_EVENTS_PARTITIONS": "2",
        **topics,
    }
    subprocess.run(
        [sys.executable, "-m", "slawatch.services.cli", "topics", "create"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}, **common},
        check=True,
        capture_output=True,
    )
    services = {
        "ingest": Service(
            "ingest",
            {**common, "SLAWATCH_INGEST_API_KEYS": f"crm:{digest(TOKENS['ingest'])}"},
            folder / "ingest.log",
        ),
        "monitor": Service(
            "monitor",
            {**common, "SLAWATCH_MONITOR_GROUP_ID": f"{prefix}-monitor"},
            folder / "monitor.log",
        ),
        "notifier": Service(
            "notifier",
            {
                **common,
                "SLAWATCH_NOTIFIER_GROUP_ID": f"{prefix}-notifier",
                "SLAWATCH_NOTIFIER_SILENCE_REFRESH_S": "1",
            },
            folder / "notifier.log",
        ),
    }
    for service in services.values():
        service.start()
    services["monitor"].wait_ready()
    services["notifier"].wait_ready()
    services["ingest"].wait_ready("/healthz")
    console = Service(
        "console",
        {
            **common,
            "SLAWATCH_CONSOLE_MONITOR_URL": services["monitor"].url,
            "SLAWATCH_CONSOLE_NOTIFIER_URL": services["notifier"].url,
            "SLAWATCH_CONSOLE_SERVICE_TOKEN": TOKENS["service"],
            "SLAWATCH_CONSOLE_SESSION_SECRET": "console-test-session-secret-" + "x" * 16,
            "SLAWATCH_CONSOLE_PAGE_SIZE": "20",
        },
        folder / "console.log",
    )
    services["console"] = console.start()
    console.wait_ready()
    return Stack(services, topics, path)


def created(ticket: str, at: datetime | None = None, **data) -> dict:
    return {
        "event_id": f"{ticket}-created",
        "type": "ticket.created",
        "ticket_id": ticket,
        "occurred_at": (at or datetime.now(UTC)).isoformat(),
        "channel": "chat",
        "data": {"priority": "high", "subject": f"Subject of {ticket}", **data},
    }


async def eventually(check, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(interval)


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)
