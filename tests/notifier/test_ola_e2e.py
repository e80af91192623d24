"""Team OLAs end to end (issue 13): a real `slawatch monitor` process and the notifier over
the real broker and PostgreSQL; an OLA breach reaches the webhook its `group` routes to,
and the monitor's read API shows the OLA cycles per ticket."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from slawatch.services.database import migrate
from slawatch.services.notifier.app import create_app
from slawatch.services.notifier.config import load_routes
from slawatch.services.notifier.settings import NotifierSettings
from slawatch.shared.auth import ApiKeys
from slawatch.shared.kafka import ensure_topics
from tests.helpers import serve, topic_settings
from tests.helpers import wait_ready as wait_until_ready
from tests.monitor.harness import READ_AUTH, MonitorProcess, created, monitor_env, now, produce

pytestmark = pytest.mark.integration

TOKEN = "ops-token-" + uuid.uuid4().hex
KEYS = ApiKeys.parse("ops:" + hashlib.sha256(TOKEN.encode()).hexdigest(), "operator")

# Ticket targets far away; the Shanghai team owns a ticket for 3 s, the Berlin team 2 s.
POLICIES = """
version: 1
calendars:
  always: {timezone: UTC, always_open: true}
policies:
  - id: slow
    match: {}
    calendar: always
    targets: {first_response: 600s, resolution: 600s}
olas:
  - id: ola-cn
    group: cn-tech
    calendar: always
    targets: {ownership: 3s}
  - id: ola-eu
    group: eu-billing
    calendar: always
    targets: {ownership: 2s, group_response: 600s}
"""


def routes(webhook: str) -> str:
    return f"""
version: 1
defaults: {{group_wait: 0s, group_interval: 1s, repeat_interval: never}}
receivers:
  - name: cn-team
    integrations: [{{type: webhook, url: "{webhook}/cn", secret: s3cret}}]
  - name: eu-team
    integrations: [{{type: webhook, url: "{webhook}/eu", secret: s3cret}}]
  - name: everyone
    integrations: [{{type: webhook, url: "{webhook}/rest", secret: s3cret}}]
routes:
  - receiver: cn-team
    match: {{target: [group_ownership, group_response], group: cn-tech, kind: breached}}
  - receiver: eu-team
    match: {{target: [group_ownership, group_response], group: eu-billing, kind: breached}}
  - receiver: everyone
"""


async def test_an_ola_breach_reaches_the_webhook_its_group_routes_to(
    kafka_bootstrap, fresh_database, topic_prefix, http_sink, tmp_path: Path
) -> None:
    sink, url = http_sink
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    settings = topic_settings(
        NotifierSettings,
        topic_prefix,
        kafka_bootstrap,
        database_url=fresh_database,
        notifier_group_id=f"{topic_prefix}-notifier",
    )
    await ensure_topics(settings)
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(POLICIES)
    routes_path = tmp_path / "routes.yaml"
    routes_path.write_text(routes(url))
    monitor = MonitorProcess(
        monitor_env(settings, fresh_database, policy_file), tmp_path / "monitor.log"
    ).start()
    app = create_app(settings, load_routes(routes_path, {}), {}, KEYS)
    try:
        await monitor.wait_ready()
        async with serve(app) as notifier_url:
            await wait_until_ready(f"{notifier_url}/readyz", "notifier (/readyz)", timeout=60)
            ticket = f"OLA-{uuid.uuid4().hex[:6]}"
            t0 = now()
            moved = {
                "event_id": f"{ticket}-moved",
                "type": "ticket.assigned",
                "ticket_id": ticket,
                "occurred_at": (t0 + timedelta(milliseconds=500)).isoformat(),
                "channel": "chat",
                "data": {"group": "cn-tech"},
            }
            stays = f"{ticket}-stays"
            await produce(
                settings.kafka_bootstrap,
                settings.topic_events,
                [
                    created(ticket, t0, group="eu-billing"),
                    moved,
                    created(stays, t0, group="eu-billing"),
                ],
            )
            [request] = await sink.wait_for("/cn", 1, timeout=30)
            [breach] = request.json()["events"]
            assert breach["id"] == f"{ticket}/group_ownership/2/breached", monitor.log()
            assert (breach["target"], breach["group"], breach["policy"]) == (
                "group_ownership",
                "cn-tech",
                "ola-cn",
            )
            assert breach["target_seconds"] == 3
            # The Berlin team's breach goes to the Berlin team; the moved ticket's Berlin
            # cycle ended in time at the hand-over (a met in time sends nothing).
            [request] = await sink.wait_for("/eu", 1, timeout=30)
            [breach] = request.json()["events"]
            assert breach["id"] == f"{stays}/group_ownership/1/breached"
            assert (breach["group"], breach["policy"]) == ("eu-billing", "ola-eu")
            await asyncio.sleep(1.5)  # anything more would have come by now
            assert len(sink.at("/cn")) == 1 and len(sink.at("/eu")) == 1
            assert not [
                e
                for r in sink.at("/rest")
                for e in r.json()["events"]
                if e["ticket_id"].startswith(ticket) and e["target"].startswith("group_")
            ]
            async with httpx.AsyncClient(base_url=monitor.url, timeout=10) as client:
                shown = (await client.get(f"/v1/tickets/{ticket}/sla", headers=READ_AUTH)).json()
            assert shown["group_cycles"] == [
                {"cycle": 1, "group": "eu-billing"},
                {"cycle": 2, "group": "cn-tech"},
            ]
            ola = {(t["target"], t["cycle"]): t for t in shown["targets"] if "group" in t}
            assert ola[("group_ownership", 2)]["status"] == "breached"
            assert ola[("group_ownership", 2)]["group"] == "cn-tech"
            assert set(shown["work_time"]) == {
                "agent_work_business_ms",
                "agent_work_calendar_ms",
                "requester_wait_business_ms",
                "requester_wait_calendar_ms",
            }
    finally:
        monitor.stop()
