"""Read API, compliance report, replay and policy reload, against a real monitor process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from slawatch.services.database import migrate
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.settings import CommonSettings
from tests.helpers import read_topic, topic_settings
from tests.monitor.harness import (
    READ_AUTH,
    MonitorProcess,
    agent_reply,
    created,
    monitor_env,
    now,
    produce,
    solved,
)

pytestmark = pytest.mark.integration

POLICY = """\
version: 1
calendars:
  always: {{timezone: UTC, always_open: true}}
pause_statuses: [pending, on_hold]
policies:
  - id: gold
    match: {{customer_tier: [gold]}}
    calendar: always
    targets: {{first_response: {fr}, resolution: 1h}}
    warn_at: [0.5]
  - id: standard
    match: {{}}
    calendar: always
    targets: {{first_response: {fr}, resolution: 1h}}
"""


def survey(ticket: str, at: datetime, **scores) -> dict:
    return {
        "event_id": f"{ticket}-survey",
        "type": "survey.responded",
        "ticket_id": ticket,
        "occurred_at": at.isoformat(),
        "data": scores,
    }


async def test_read_api_reports_replay_and_policy_reload(
    kafka_bootstrap, topic_prefix, fresh_database, tmp_path: Path
):
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(POLICY.format(fr="10m"))
    env = monitor_env(settings, fresh_database, policy_file)
    monitor = MonitorProcess(env, tmp_path / "monitor.log").start()
    try:
        await monitor.wait_ready()
        t0 = now()
        await produce(
            kafka_bootstrap,
            settings.topic_events,
            [
                created("Q1", t0 - timedelta(seconds=10), customer_tier="gold"),
                agent_reply("Q1", t0 - timedelta(seconds=5)),
                survey("Q1", t0 - timedelta(seconds=1), csat=4, nps=10),
                solved("Q1", t0 - timedelta(seconds=2)),  # arrives late: applied in event time
                agent_reply("Q1", t0 - timedelta(seconds=5)),  # a duplicate: changes nothing
                created("Q2", t0 - timedelta(seconds=20), customer_tier="gold"),
                created("Q3", t0 - timedelta(seconds=700)),
            ],
        )
        async with httpx.AsyncClient(base_url=monitor.url, timeout=10, headers=READ_AUTH) as client:
            for _ in range(100):
                response = await client.get("/v1/tickets/Q3/sla")
                if (
                    response.status_code == 200
                    and (await client.get("/v1/tickets/Q1/sla")).json()["status"] == "solved"
                ):
                    break
                await asyncio.sleep(0.1)
            q2 = (await client.get("/v1/tickets/Q2/sla")).json()
            assert q2["policy"] == "gold" and q2["why"]
            first = next(t for t in q2["targets"] if t["target"] == "first_response")
            assert first["status"] == "running"
            deadline = datetime.fromisoformat(first["deadline"])
            assert (
                abs(
                    (
                        deadline - (t0 - timedelta(seconds=20) + timedelta(minutes=10))
                    ).total_seconds()
                )
                < 0.01
            )
            assert 500 < first["remaining_seconds"] <= 600
            assert (await client.get("/v1/tickets/nope/sla")).status_code == 404

            risky = (await client.get("/v1/sla/at-risk", params={"within": "15m"})).json()
            pairs = [(i["ticket_id"], i["target"]) for i in risky["items"]]
            assert pairs[:2] == [("Q3", "first_response"), ("Q2", "first_response")]
            assert ("Q1", "first_response") not in pairs
            assert (
                await client.get("/v1/sla/at-risk", params={"within": "soon"})
            ).status_code == 422

            report = (
                await client.get("/v1/reports/compliance", params={"group_by": "customer_tier"})
            ).json()
            gold = next(g for g in report["groups"] if g["customer_tier"] == "gold")
            assert gold["tickets"] == 2 and gold["solved"] == 1 and gold["fcr_pct"] == 100.0
            assert gold["csat_avg"] == 4.0 and gold["nps"] == 100.0
            assert gold["targets_met"] >= 1 and gold["first_response_p50_s"] == 5.0
            # Q1 was new from creation to the solve, 8 s: work and wait time alike (the
            # ticket_facts columns of the same names, medians over solved tickets).
            assert gold["agent_work_business_p50_s"] == gold["agent_work_calendar_p50_s"] == 8.0
            assert gold["requester_wait_business_p50_s"] == 8.0
            q1 = (await client.get("/v1/tickets/Q1/sla")).json()
            assert q1["work_time"]["requester_wait_calendar_ms"] == 8000
            other = next(g for g in report["groups"] if g["customer_tier"] == "(none)")
            assert other["targets_breached"] == 1 and other["sla_met_pct"] == 0.0
            csv = await client.get(
                "/v1/reports/compliance", params={"group_by": "policy", "format": "csv"}
            )
            assert csv.headers["content-type"].startswith("text/csv")
            assert csv.text.splitlines()[0].startswith("policy,tickets,targets_met")
            bad = await client.get("/v1/reports/compliance", params={"from": "2026-11-23T00:00:00"})
            assert bad.status_code == 422 and "from" in bad.text
            assert (
                await client.get("/v1/reports/compliance", params={"group_by": "moon"})
            ).status_code == 422

            metrics = (await client.get("/metrics")).text
            assert "slawatch_monitor_events_applied_total 7.0" in metrics
            assert "slawatch_monitor_events_duplicate_total 1.0" in metrics
            assert "slawatch_monitor_events_late_total 1.0" in metrics
            assert 'slawatch_sla_first_response_seconds_count{policy="gold"} 1.0' in metrics
            assert 'slawatch_sla_resolution_seconds_bucket{le="60.0",policy="gold"} 1.0' in metrics
            assert "slawatch_monitor_commit_seconds_count 0.0" not in metrics
            assert (
                'slawatch_sla_events_total{customer_tier="",kind="sla.breached",policy="standard",target="first_response"} 1.0'
                in metrics
            )

            # Policy reload (SIGHUP): first response 30 s; Q2 (20 s old) is recomputed from its
            # original start and breaches 10 s from now; Q1's met outcome stays.
            policy_file.write_text(POLICY.format(fr="30s"))
            assert monitor.process is not None  # started
            monitor.process.send_signal(signal.SIGHUP)
            for _ in range(50):
                q2 = (await client.get("/v1/tickets/Q2/sla")).json()
                first = next(t for t in q2["targets"] if t["target"] == "first_response")
                if first["target_seconds"] == 30:
                    break
                await asyncio.sleep(0.1)
            assert first["target_seconds"] == 30
            assert (
                abs(
                    (
                        datetime.fromisoformat(first["deadline"]) - (t0 + timedelta(seconds=10))
                    ).total_seconds()
                )
                < 0.01
            )
            q1 = (await client.get("/v1/tickets/Q1/sla")).json()
            assert (
                next(t for t in q1["targets"] if t["target"] == "first_response")["status"] == "met"
            )
        for _ in range(30):  # the recomputed deadline is t0 + 10 s
            records = await read_topic(kafka_bootstrap, settings.topic_sla, 0, timeout=5)
            ids = {json.loads(r.value)["id"] for r in records}
            if "Q2/first_response/0/breached" in ids:
                break
            await asyncio.sleep(1)
        assert "Q2/first_response/0/breached" in ids, monitor.log()
        assert "Q1/first_response/0/met" in ids and "Q3/first_response/0/breached" in ids
    finally:
        monitor.stop()

    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "slawatch.services.cli", "replay", *a],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **clean,
            "SLAWATCH_DATABASE_URL": fresh_database,
            "SLAWATCH_POLICY_FILE": str(policy_file),
        },
    )
    result = await asyncio.to_thread(run, "--ticket", "Q1")
    assert result.returncode == 0, result.stderr
    assert "ticket.created" in result.stdout and " met " in result.stdout
    as_json = await asyncio.to_thread(run, "--ticket", "Q3", "--json")
    assert any(json.loads(line)["what"] == "breached" for line in as_json.stdout.splitlines())
    missing = await asyncio.to_thread(run, "--ticket", "nope")
    assert missing.returncode == 2 and "no retained events" in missing.stderr
    assert (await asyncio.to_thread(run, "--ticket", "Q1", "--until", "yesterday")).returncode == 2
