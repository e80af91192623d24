"""The console's read routes on a real monitor process (services/sla_monitor/board.py):
the board's states, counts, filters and pages; a ticket's timeline (as `slawatch replay`);
compliance figures per day in a time zone; bad parameters are 422 naming the field.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
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
  always: {timezone: UTC, always_open: true}
pause_statuses: [pending, on_hold]
pause_tags: [waiting-vendor]
policies:
  - id: gold
    match: {customer_tier: [gold]}
    calendar: always
    targets: {first_response: 10m, resolution: 1h}
  - id: standard
    match: {}
    calendar: always
    targets: {first_response: 2h, resolution: 8h}
"""


def status(ticket: str, at, value: str) -> dict:
    return {
        "event_id": f"{ticket}-{value}",
        "type": "ticket.status_changed",
        "ticket_id": ticket,
        "occurred_at": at.isoformat(),
        "channel": "chat",
        "data": {"status": value},
    }


async def test_board_timeline_and_series(kafka_bootstrap, topic_prefix, fresh_database, tmp_path: Path):
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(POLICY)
    monitor = MonitorProcess(monitor_env(settings, fresh_database, policy_file), tmp_path / "m.log")
    monitor.start()
    try:
        await monitor.wait_ready()
        t0 = now()
        events = [
            # breached 5 min ago (gold, 10 m)
            created("B1", t0 - timedelta(minutes=15), customer_tier="gold", group="billing"),
            # at risk: gold, due in 5 min
            created("R1", t0 - timedelta(minutes=5), customer_tier="gold", assignee="li.na"),
            # not at risk within 30 m: standard, due in ~2 h
            created("S1", t0 - timedelta(minutes=1)),
            # paused: pending
            created("P1", t0 - timedelta(minutes=3)),
            status("P1", t0 - timedelta(minutes=2), "pending"),
            # paused by a tag (its resolution; first response never pauses by default)
            created("P2", t0 - timedelta(minutes=3), tags=["waiting-vendor"]),
        ] + [created(f"G{i:02d}", t0 - timedelta(minutes=4, seconds=i), customer_tier="gold") for i in range(12)]
        await produce(kafka_bootstrap, settings.topic_events, events)
        async with httpx.AsyncClient(base_url=monitor.url, timeout=10, headers=READ_AUTH) as client:
            assert (await client.get("/v1/board", headers={"Authorization": ""})).status_code == 401
            for _ in range(100):
                body = (await client.get("/v1/board")).json()
                if body["counts"] == {"at_risk": 13, "breached": 1, "paused": 2}:
                    break
                await asyncio.sleep(0.2)
            assert body["counts"] == {"at_risk": 13, "breached": 1, "paused": 2}, body["counts"]
            items = body["items"]
            assert items[0]["ticket_id"] == "B1" and items[0]["board_state"] == "breached"
            assert items[0]["overdue_seconds"] > 250 and items[0]["group"] == "billing"
            assert [(i["ticket_id"], i["target"]) for i in items if i["board_state"] == "paused"] == [
                ("P1", "resolution"),
                ("P2", "resolution"),
            ]
            assert items[0]["clock_running"] is True  # the `always` calendar is open
            assert items[-1]["clock_running"] is False
            deadlines = [i["deadline"] for i in items if i["board_state"] != "paused"]
            assert deadlines == sorted(deadlines)
            assert "S1" not in {i["ticket_id"] for i in items}
            wide = (await client.get("/v1/board", params={"within": "3h", "state": "at_risk"})).json()
            assert "S1" in {i["ticket_id"] for i in wide["items"]}
            mine = (await client.get("/v1/board", params={"assignee": "li.na"})).json()
            assert [i["ticket_id"] for i in mine["items"]] == ["R1"]
            assert mine["counts"] == {"at_risk": 1, "breached": 0, "paused": 0}
            gold = (await client.get("/v1/board", params={"customer_tier": "gold", "state": "breached"})).json()
            assert [i["ticket_id"] for i in gold["items"]] == ["B1"]
            page1 = (await client.get("/v1/board", params={"limit": 5})).json()
            page2 = (await client.get("/v1/board", params={"limit": 5, "offset": 5})).json()
            assert page1["next_offset"] == 5 and len({i["ticket_id"] for i in page1["items"]}) == 5
            assert not {i["ticket_id"] for i in page1["items"]} & {i["ticket_id"] for i in page2["items"]}
            for params, field in [
                ({"within": "soon"}, "within"),
                ({"within": "0s"}, "within"),
                ({"state": "lost"}, "state"),
                ({"limit": "0"}, "limit"),
                ({"group": "a\x00b"}, "group"),
                ({"policy": "x" * 300}, "policy"),
            ]:
                bad = await client.get("/v1/board", params=params)
                assert bad.status_code == 422 and field in bad.text, (params, bad.text)

            timeline = (await client.get("/v1/tickets/B1/timeline")).json()["lines"]
            whats = [line["what"] for line in timeline]
            assert whats[:3] == ["event", "policy", "started"] and "breached" in whats
            assert (await client.get("/v1/tickets/nope/timeline")).status_code == 404

            series = await client.get(
                "/v1/reports/compliance/series",
                params={"from": (t0 - timedelta(days=1)).isoformat(), "tz": "Asia/Shanghai"},
            )
            assert series.status_code == 200, series.text
            [day] = series.json()["series"] if len(series.json()["series"]) == 1 else series.json()["series"][-1:]
            assert day["tickets"] >= 1 and len(day["day"]) == 10
            for params, field in [({"tz": "Mars/Olympus"}, "tz"), ({"bucket": "year"}, "bucket"),
                                  ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to")]:
                bad = await client.get("/v1/reports/compliance/series", params=params)
                assert bad.status_code == 422 and field in bad.text, (params, bad.text)
    finally:
        monitor.stop()
