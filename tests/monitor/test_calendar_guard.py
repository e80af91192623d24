"""The calendar coverage guard and customer contracts in a real monitor process: the start
and reload log lines, the official-until gauge, `estimated` deadlines in the read API, and a
ticket that takes its customer's contract - over the real broker and database."""

from __future__ import annotations

import asyncio
import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from slawatch.services.database import migrate
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.settings import CommonSettings
from tests.helpers import topic_settings
from tests.monitor.harness import READ_AUTH, MonitorProcess, created, monitor_env, now, produce

pytestmark = pytest.mark.integration

POLICY = """\
version: 1
calendars:
  cn-office:
    timezone: Asia/Shanghai
    hours: {{mon: "09:00-18:00", tue: "09:00-18:00", wed: "09:00-18:00", thu: "09:00-18:00", fri: "09:00-18:00"}}
    holidays: {{country: CN{extra}}}
  always: {{timezone: UTC, always_open: true}}
policies:
  - id: acme
    match: {{customer_id: [ACME]}}
    valid_from: 2026-01-01
    calendar: cn-office
    targets: {{resolution: 90d}}
  - id: standard
    match: {{}}
    calendar: always
    targets: {{resolution: 1h}}
"""
GAUGE = re.compile(
    r'slawatch_calendar_official_until_timestamp_seconds\{calendar="cn-office"\} (\S+)'
)


def gauge(metrics: str) -> float:
    found = GAUGE.search(metrics)
    assert found is not None, "the coverage gauge is missing"
    return float(found.group(1))


CN = timedelta(hours=8)


def local_midnight(day: datetime) -> float:
    return (day - CN).replace(tzinfo=UTC).timestamp()


async def test_guard_logs_exports_and_marks_estimated_deadlines(
    kafka_bootstrap, topic_prefix, fresh_database, tmp_path: Path
):
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(POLICY.format(extra=""))
    monitor = MonitorProcess(
        monitor_env(settings, fresh_database, policy_file), tmp_path / "monitor.log"
    ).start()
    try:
        await monitor.wait_ready()
        today = datetime.now(UTC).date()
        # The pinned holidays package has no CN schedule for 2027 (tests/engine/test_coverage.py).
        first = max(today.year, 2027)
        assert f"calendar 'cn-office': holidays for CN are not official from {first}-01-01" in (
            monitor.log()
        )
        t0 = now()
        await produce(
            kafka_bootstrap,
            settings.topic_events,
            [
                created("ACME-1", t0 - timedelta(seconds=5), customer_id="ACME"),
                created("OTHER-1", t0 - timedelta(seconds=5), customer_id="OTHER"),
            ],
        )
        async with httpx.AsyncClient(base_url=monitor.url, timeout=10, headers=READ_AUTH) as client:
            for _ in range(100):
                acme = await client.get("/v1/tickets/ACME-1/sla")
                other = await client.get("/v1/tickets/OTHER-1/sla")
                if acme.status_code == other.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            acme, other = acme.json(), other.json()
            assert acme["policy"] == "acme" and acme["why"] == {"customer_id": "ACME"}
            [resolution] = acme["targets"]
            # 90 business days in Shanghai run well into the next year: not official data.
            assert resolution["deadline"] > f"{first}-01-01" and resolution["estimated"] is True
            assert other["policy"] == "standard" and other["targets"][0]["estimated"] is False
            metrics = (await client.get("/metrics")).text
            value = gauge(metrics)
            assert value == local_midnight(datetime(first, 1, 1))

            # The operator added the official dates by hand through the end of the years the
            # guard looks at: after a reload it is quiet, the gauge moves, nothing is estimated.
            last = today.year + 2
            policy_file.write_text(POLICY.format(extra=f", official_through: {last}-12-31"))
            assert monitor.process is not None
            monitor.process.send_signal(signal.SIGHUP)
            for _ in range(100):
                metrics = (await client.get("/metrics")).text
                value = gauge(metrics)
                if value != local_midnight(datetime(first, 1, 1)):
                    break
                await asyncio.sleep(0.1)
            assert value == local_midnight(datetime(last + 1, 1, 1)), monitor.log()
            for _ in range(100):  # once the worker has recomputed the ticket under the new set
                described = (await client.get("/v1/tickets/ACME-1/sla")).json()
                if described["targets"][0]["estimated"] is False:
                    break
                await asyncio.sleep(0.1)
            assert described["policy"] == "acme" and described["targets"][0]["estimated"] is False
        log = monitor.log()
        assert log.count("holidays for CN are not official") == 1, log  # at start, not after
        assert "policies reloaded" in log
    finally:
        monitor.stop()
