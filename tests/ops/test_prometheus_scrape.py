"""A real Prometheus (Debian's server) scrapes the running services, evaluates the shipped
alert rules, and sees an induced breach: the counter rises, the breach alert goes pending
(its `for:` is 10 minutes, so pending is the state to expect within a test), and the
notifier's sent counter shows every breach delivered to a local webhook, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from slawatch.services.database import migrate
from slawatch.services.dev.provision import free_port
from slawatch.services.ingest.app import create_app
from slawatch.services.ingest.settings import IngestSettings
from slawatch.services.notifier.app import create_app as create_notifier_app
from slawatch.services.notifier.config import load_routes
from slawatch.services.notifier.settings import NotifierSettings
from slawatch.shared.auth import ApiKeys
from slawatch.shared.kafka import ensure_topics
from tests.helpers import serve, topic_settings, wait_ready
from tests.monitor.harness import MonitorProcess, monitor_env, now
from tests.notifier.support import HttpSink

pytestmark = pytest.mark.integration

RULES = Path("deploy/prometheus/slawatch-rules.yml").resolve()
BREACH_ONLY = """\
version: 1
calendars:
  always: {timezone: UTC, always_open: true}
policies:
  - id: scrape
    match: {}
    calendar: always
    targets: {first_response: 2s}
"""
ROUTES = """\
version: 1
defaults: {{group_wait: 0s, group_interval: 1s}}
receivers:
  - name: supervisors
    integrations: [{{type: webhook, url: "{url}/hook", rate_limit: none}}]
routes: [{{receiver: supervisors}}]
"""


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    assert found, "Debian's prometheus server is missing: `make test` installs it (bash .ci/promtool.sh)"
    return found


async def query(client: httpx.AsyncClient, expr: str) -> list[dict]:
    response = await client.get("/api/v1/query", params={"query": expr})
    assert response.status_code == 200, f"query {expr!r}: HTTP {response.status_code} {response.text[:300]}"
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


async def test_prometheus_scrapes_the_services_and_the_breach_alert_goes_pending(
    kafka_bootstrap, topic_prefix, fresh_database, tmp_path: Path
):
    binary = prometheus_binary()
    ingest_settings = topic_settings(IngestSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(ingest_settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    policy = tmp_path / "policies.yaml"
    policy.write_text(BREACH_ONLY)
    keys = ApiKeys.parse("scrape:" + hashlib.sha256(b"tok").hexdigest())
    monitor = MonitorProcess(monitor_env(ingest_settings, fresh_database, policy), tmp_path / "monitor.log").start()
    prom_port = free_port()
    prometheus = None
    sink = HttpSink()
    routes = tmp_path / "routes.yaml"
    notifier_settings = topic_settings(
        NotifierSettings, topic_prefix, kafka_bootstrap, database_url=fresh_database,
        notifier_group_id=f"{topic_prefix}-notifier",
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            ingest_url = await stack.enter_async_context(serve(create_app(ingest_settings, keys)))
            sink_url = await stack.enter_async_context(serve(sink.app))
            routes.write_text(ROUTES.format(url=sink_url))
            notifier_app = create_notifier_app(notifier_settings, load_routes(routes, {}))
            notifier_url = await stack.enter_async_context(serve(notifier_app))
            config = tmp_path / "prometheus.yml"
            config.write_text(
                "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                f"rule_files: ['{RULES}']\n"
                "scrape_configs:\n"
                f"  - job_name: slawatch-ingest\n    static_configs: [{{targets: ['{ingest_url.removeprefix('http://')}']}}]\n"
                f"  - job_name: slawatch-monitor\n    static_configs: [{{targets: ['127.0.0.1:{monitor.port}']}}]\n"
                f"  - job_name: slawatch-notifier\n    static_configs: [{{targets: ['{notifier_url.removeprefix('http://')}']}}]\n"
            )
            prometheus = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=open(tmp_path / "prometheus.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
            )
            # Prometheus answers 503 until it has loaded its TSDB and rules: wait for /-/ready
            # (a loaded machine's Prometheus took long enough for a query to get that 503).
            await wait_ready(
                f"http://127.0.0.1:{prom_port}/-/ready", "prometheus", timeout=90,
                process=prometheus, log_path=tmp_path / "prometheus.log",
            )
            await monitor.wait_ready()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{prom_port}", timeout=10) as prom, \
                    httpx.AsyncClient(base_url=ingest_url, timeout=10, headers={"Authorization": "Bearer tok"}) as ingest:
                deadline = time.monotonic() + 60
                while len(await query(prom, 'up{job=~"slawatch-.*"} == 1')) < 3:
                    assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-3000:]
                    await asyncio.sleep(0.5)

                async def breach(tickets: list[str]) -> None:
                    t = now().isoformat()
                    events = [{"event_id": f"{x}-c", "type": "ticket.created", "ticket_id": x, "occurred_at": t}
                              for x in tickets]
                    assert (await ingest.post("/v1/events", json={"events": events})).status_code == 202

                # One breach first, so the labelled counter exists before the burst (rate()
                # cannot see the increase that creates a series), then a burst.
                await breach(["S-0"])
                expr = 'sum(slawatch_sla_events_total{kind="sla.breached"})'
                while not await query(prom, expr):
                    assert time.monotonic() < deadline + 30, monitor.log()
                    await asyncio.sleep(0.5)
                await asyncio.sleep(2.5)
                await breach([f"S-{n}" for n in range(1, 31)])
                deadline = time.monotonic() + 60
                while True:
                    result = await query(prom, expr)
                    if result and float(result[0]["value"][1]) >= 31:
                        break
                    assert time.monotonic() < deadline, monitor.log()
                    await asyncio.sleep(0.5)
                accepted = await query(prom, 'sum(slawatch_ingest_events_accepted_total{source="scrape"})')
                assert float(accepted[0]["value"][1]) == 31
                while True:
                    answer = await prom.get("/api/v1/alerts")
                    assert answer.status_code == 200, answer.text[:300]
                    alerts = answer.json()["data"]["alerts"]
                    states = {a["labels"]["alertname"]: a["state"] for a in alerts}
                    if states.get("SlawatchSlaBreachRateHigh") in ("pending", "firing"):
                        break
                    assert time.monotonic() < deadline, states
                    await asyncio.sleep(0.5)
                breach_alert = next(a for a in alerts if a["labels"]["alertname"] == "SlawatchSlaBreachRateHigh")
                assert breach_alert["labels"]["policy"] == "scrape"
                # ... and the notifier told the supervisors about every breach, once.
                expr = 'sum(slawatch_notifier_sent_total{receiver="supervisors"})'
                while True:
                    result = await query(prom, expr)
                    if result and float(result[0]["value"][1]) >= 31:
                        break
                    assert time.monotonic() < deadline + 30, (await query(prom, expr), len(sink.requests))
                    await asyncio.sleep(0.5)
                notified = [e["ticket_id"] for r in sink.at("/hook") for e in r.json()["events"]]
                assert sorted(notified) == sorted(f"S-{n}" for n in range(31))
    finally:
        if prometheus:
            prometheus.terminate()
            prometheus.wait(20)
        monitor.stop()
