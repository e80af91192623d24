"""Team reports (#14) against a real monitor, broker and database: a generated month of
tickets for 5 teams and 20 agents, every figure checked against an independent plain-Python
computation over the posted events (tests/monitor/report_oracle.py); customer.updated
re-targets open tickets and records churn; the team gauges; bad input; the worked example
of docs/reports.md."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from slawatch.services.database import migrate
from slawatch.services.sla_monitor import reports
from slawatch.services.sla_monitor.store import Store
from slawatch.shared.db import asyncpg_dsn
from slawatch.shared.events import parse_posted, partition_key
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.settings import CommonSettings
from tests.helpers import topic_settings
from tests.monitor import report_oracle as oracle
from tests.monitor.harness import READ_AUTH, MonitorProcess, monitor_env

pytestmark = pytest.mark.integration

POLICY = """\
version: 1
calendars:
  always: {timezone: UTC, always_open: true}
policies:
  - id: gold
    match: {customer_tier: [gold]}
    calendar: always
    targets: {first_response: 1h, resolution: 8h}
  - id: standard
    match: {}
    calendar: always
    targets: {first_response: 1h, resolution: 8h}
"""
FIRST_RESPONSE = timedelta(hours=1)
RESOLUTION = timedelta(hours=8)
TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
MONTH_START = datetime(2026, 10, 1, tzinfo=ZONE)
MONTH_END = datetime(2026, 11, 1, tzinfo=ZONE)
TEAMS = [f"team-{n}" for n in range(5)]
AGENTS = [f"agent-{n:02d}" for n in range(20)]  # agent n works in team n // 4
CUSTOMERS = [f"C-{n:02d}" for n in range(60)]
ABNORMAL_DAY = datetime(2026, 10, 20, tzinfo=ZONE)  # team-2 answers late all day


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def generate_month(seed: int = 14) -> list[dict]:
    """About 700 tickets over October 2026 (Asia/Shanghai): replies with and without handle
    time, work.logged, surveys, a few left open, a few customers churning."""
    rng = random.Random(seed)
    tiers = {c: rng.choice(["gold", "silver", "bronze"]) for c in CUSTOMERS}
    events: list[dict] = []
    for n in range(700):
        tid = f"M{n:04d}"
        created = MONTH_START + timedelta(minutes=rng.randrange(0, 31 * 24 * 60 - 13 * 60))
        agent = rng.choice(AGENTS)
        team = TEAMS[AGENTS.index(agent) // 4]
        customer = rng.choice(CUSTOMERS)
        events.append(
            {
                "event_id": f"{tid}-c",
                "type": "ticket.created",
                "ticket_id": tid,
                "occurred_at": iso(created),
                "channel": "chat",
                "data": {
                    "priority": "high",
                    "group": team,
                    "assignee": agent,
                    "customer_id": customer,
                    "customer_tier": tiers[customer],
                },
            }
        )
        late = team == "team-2" and created.astimezone(ZONE).date() == ABNORMAL_DAY.date()
        first = rng.choice([m for m in range(3, 100) if m != 60]) if not late else 150
        at = created + timedelta(minutes=first)
        for r in range(rng.choice([1, 1, 1, 2, 3])):
            data: dict[str, Any] = {"author_role": "agent", "public": True}
            if rng.random() < 0.7:
                data["handle_seconds"] = rng.randrange(0, 1200)
            events.append(
                {
                    "event_id": f"{tid}-r{r}",
                    "type": "message.created",
                    "ticket_id": tid,
                    "occurred_at": iso(at),
                    "channel": "chat",
                    "data": data,
                }
            )
            at += timedelta(minutes=rng.randrange(5, 90))
        if rng.random() < 0.3:
            events.append(
                {
                    "event_id": f"{tid}-w",
                    "type": "work.logged",
                    "ticket_id": tid,
                    "occurred_at": iso(at),
                    "data": {"agent": agent, "seconds": rng.randrange(60, 3600)},
                }
            )
        if rng.random() < 0.1:
            continue  # left open: its resolution target breaches
        solve = at + timedelta(minutes=rng.choice([m for m in range(1, 600) if m != 480]))
        if solve - created == RESOLUTION:
            solve += timedelta(minutes=1)
        events.append(
            {
                "event_id": f"{tid}-s",
                "type": "ticket.status_changed",
                "ticket_id": tid,
                "occurred_at": iso(solve),
                "channel": "chat",
                "data": {"status": "solved"},
            }
        )
        if rng.random() < 0.5:
            scores = rng.choice(
                [{"csat": rng.randint(1, 5)}, {"nps": rng.randint(0, 10)}]
                + [{"csat": rng.randint(1, 5), "nps": rng.randint(0, 10)}] * 2
            )
            events.append(
                {
                    "event_id": f"{tid}-v",
                    "type": "survey.responded",
                    "ticket_id": tid,
                    "occurred_at": iso(solve + timedelta(hours=1)),
                    "data": scores,
                }
            )
    for n, customer in enumerate(rng.sample(CUSTOMERS, 8)):
        events.append(
            {
                "event_id": f"crm-churn-{customer}",
                "type": "customer.updated",
                "occurred_at": iso(MONTH_START + timedelta(days=3 + 3 * n, hours=5)),
                "data": {"customer_id": customer, "status": "churned"},
            }
        )
    return events


async def post(bootstrap: str, topic: str, events: list[dict]) -> None:
    """Onto the events topic as ingest publishes them: keyed by ticket or customer."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, json.dumps(e).encode(), key=partition_key(parse_posted(e)).encode()
            )
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def assert_same(got: list[dict], expected: list[dict], what: str) -> None:
    assert [_key(r) for r in got] == [_key(r) for r in expected], what
    for g, e in zip(got, expected, strict=True):
        assert set(g) == set(e), (what, set(g) ^ set(e))
        for name, value in e.items():
            if isinstance(value, float) and g[name] is not None:
                assert math.isclose(g[name], value, rel_tol=1e-9, abs_tol=1e-9), (
                    what,
                    _key(e),
                    name,
                    g[name],
                    value,
                )
            else:
                assert g[name] == value, (what, _key(e), name, g[name], value)


def _key(row: dict) -> tuple:
    return (next(iter(row.values())), row.get("bucket"))


async def wait_for(client: httpx.AsyncClient, params: dict, expected: list[dict]) -> list[dict]:
    """Poll the report until it holds every ticket and target outcome the oracle expects
    (the monitor is still consuming, or firing the open tickets' resolution breaches)."""
    want = sum(r["targets_met"] + r["targets_breached"] for r in expected)
    rows: list[dict] = []
    for _ in range(600):
        response = await client.get("/v1/reports/compliance", params=params)
        assert response.status_code == 200, response.text
        rows = response.json()["groups"]
        if sum(r["targets_met"] + r["targets_breached"] for r in rows) == want and sum(
            r["customers_churned"] for r in rows
        ) == sum(r["customers_churned"] for r in expected):
            return rows
        await asyncio.sleep(0.2)
    return rows


@pytest.fixture
async def stack(kafka_bootstrap, topic_prefix, fresh_database, tmp_path: Path):
    settings = topic_settings(CommonSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    await asyncio.to_thread(migrate.upgrade, fresh_database)
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(POLICY)
    env = monitor_env(
        settings,
        fresh_database,
        policy_file,
        SLAWATCH_MONITOR_TEAM_KPI_WINDOW_S=str(366 * 86400),
        SLAWATCH_MONITOR_TEAM_KPI_REFRESH_S="5",
    )
    monitor = MonitorProcess(env, tmp_path / "monitor.log").start()
    try:
        await monitor.wait_ready()
        async with httpx.AsyncClient(base_url=monitor.url, timeout=30, headers=READ_AUTH) as client:
            yield settings, fresh_database, monitor, client
    finally:
        monitor.stop()


async def test_a_month_for_5_teams_and_20_agents_matches_an_independent_computation(stack):
    settings, database, monitor, client = stack
    events = generate_month()
    await post(settings.kafka_bootstrap, settings.topic_events, events)
    window = {"from": MONTH_START.isoformat(), "to": MONTH_END.isoformat()}
    cases = [
        ("assignee", "week"),
        ("group", "day"),
        ("group", None),
        ("assignee", None),
        ("customer_id", None),
        ("customer_tier", "month"),
    ]
    for group_by, bucket in cases:
        params = {**window, "group_by": group_by, "tz": TZ}
        if bucket:
            params["bucket"] = bucket
        expected = oracle.report(
            events, MONTH_START, MONTH_END, group_by, bucket, TZ, FIRST_RESPONSE, RESOLUTION
        )
        got = await wait_for(client, params, expected)
        assert_same(got, expected, f"{group_by}/{bucket}")
        if group_by == "assignee":
            assert {r["assignee"] for r in got} == set(AGENTS)
        if group_by == "group":
            assert {r["group"] for r in got} == set(TEAMS)
    # The late day of team-2 is flagged (so the flags are not vacuous), and only abnormal
    # rows are flagged: the oracle's flags equal the monitor's above.
    days = (
        await client.get(
            "/v1/reports/compliance",
            params={**window, "group_by": "group", "bucket": "day", "tz": TZ},
        )
    ).json()["groups"]
    late = next(r for r in days if r["group"] == "team-2" and r["bucket"] == "2026-10-20")
    assert "first_response_p90_s" in late["abnormal"]
    assert sum(1 for r in days if r["abnormal"]) < len(days) // 2  # small groups move a lot

    # CSV: the same rows, the flags joined by ";".
    response = await client.get(
        "/v1/reports/compliance",
        params={**window, "group_by": "assignee", "bucket": "week", "tz": TZ, "format": "csv"},
    )
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    weekly = oracle.report(
        events, MONTH_START, MONTH_END, "assignee", "week", TZ, FIRST_RESPONSE, RESOLUTION
    )
    assert len(table) == len(weekly)
    for line, row in zip(table, weekly, strict=True):
        assert line["assignee"] == row["assignee"] and line["bucket"] == row["bucket"]
        assert int(line["tickets"]) == row["tickets"]
        assert line["abnormal"] == ";".join(row["abnormal"])
        assert line["aht_mean_s"] == ("" if row["aht_mean_s"] is None else str(row["aht_mean_s"]))

    # The shares of a report (SLAWATCH_MONITOR_REPORT_PARALLELISM) change no figure: one
    # query, or two to four at once on their own connections, in the same database.
    store = Store(await asyncpg.create_pool(asyncpg_dsn(database), min_size=1, max_size=5))
    try:
        query = reports.Query(MONTH_START, MONTH_END, "assignee", "week", TZ)
        by_shares = {n: await reports.compliance(store, query, n) for n in (1, 2, 3, 4)}
        unbucketed = reports.Query(MONTH_START, MONTH_END, "customer_id")
        customers = {n: await reports.compliance(store, unbucketed, n) for n in (1, 3)}
    finally:
        await store.close()
    # Several reports at once on a pool with room for one report's shares: they take turns
    # (without the monitor's report gate, they held every connection waiting for more).
    small = Store(await asyncpg.create_pool(asyncpg_dsn(database), min_size=1, max_size=3))
    try:
        together = await asyncio.wait_for(
            asyncio.gather(*(reports.compliance(small, query, 2) for _ in range(6))), 60
        )
    finally:
        await small.close()
    assert all(rows == by_shares[2] for rows in together)
    for rows in by_shares.values():
        assert_same(rows, weekly, "assignee/week in-process")
    assert customers[1] == customers[3]
    assert_same(
        customers[1],
        oracle.report(
            events, MONTH_START, MONTH_END, "customer_id", None, TZ, FIRST_RESPONSE, RESOLUTION
        ),
        "customer_id in-process",
    )

    # Churn is recorded with its date.
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        stored = {r["customer_id"]: r for r in await conn.fetch("SELECT * FROM customers")}
    finally:
        await conn.close()
    assert {c: r["churned_at"] for c, r in stored.items()} == oracle.churn_dates(events)
    assert all(r["status"] == "churned" for r in stored.values())

    # The team gauges (a year's window here): one series per team, none per agent.
    teams = {
        r["group"]: r
        for r in oracle.report(
            events,
            datetime(2025, 12, 1, tzinfo=UTC),
            datetime.now(UTC),
            "group",
            None,
            TZ,
            FIRST_RESPONSE,
            RESOLUTION,
        )
    }
    for _ in range(100):
        text = (await client.get("/metrics")).text
        series = dict(re.findall(r'^slawatch_team_tickets\{team="([^"]+)"\} (\S+)$', text, re.M))
        if {t: float(v) for t, v in series.items()} == {
            t: float(r["tickets"]) for t, r in teams.items()
        }:
            break
        await asyncio.sleep(0.2)
    assert {t: float(v) for t, v in series.items()} == {
        t: float(r["tickets"]) for t, r in teams.items()
    }
    met = dict(re.findall(r'^slawatch_team_sla_met_percent\{team="([^"]+)"\} (\S+)$', text, re.M))
    assert {t: float(v) for t, v in met.items()} == {t: r["sla_met_pct"] for t, r in teams.items()}
    assert "agent-" not in text


def _ticket(tid: str, at: datetime, customer: str, tier: str) -> dict:
    return {
        "event_id": f"{tid}-c",
        "type": "ticket.created",
        "ticket_id": tid,
        "occurred_at": iso(at),
        "data": {"customer_id": customer, "customer_tier": tier, "group": "g", "assignee": "a"},
    }


async def test_a_tier_change_reselects_the_policy_of_the_customers_open_tickets(stack):
    settings, _, _, client = stack
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    solved = {
        "event_id": "R3-s",
        "type": "ticket.status_changed",
        "ticket_id": "R3",
        "occurred_at": iso(t0 + timedelta(seconds=30)),
        "data": {"status": "solved"},
    }
    await post(
        settings.kafka_bootstrap,
        settings.topic_events,
        [
            _ticket("R1", t0, "C-R", "silver"),
            _ticket("R2", t0, "C-R", "silver"),
            _ticket("R3", t0, "C-R", "silver"),
            solved,
            _ticket("R4", t0, "C-OTHER", "silver"),
        ],
    )
    for _ in range(300):
        states = [await client.get(f"/v1/tickets/{t}/sla") for t in ("R1", "R2", "R3", "R4")]
        if all(s.status_code == 200 for s in states) and states[2].json()["status"] == "solved":
            break
        await asyncio.sleep(0.1)
    assert [s.json()["policy"] for s in states] == ["standard"] * 4
    upgrade = {
        "event_id": "crm-C-R-1",
        "type": "customer.updated",
        "occurred_at": iso(t0 + timedelta(minutes=1)),
        "data": {"customer_id": "C-R", "tier": "gold"},
    }
    await post(settings.kafka_bootstrap, settings.topic_events, [upgrade, upgrade])  # twice
    for _ in range(300):
        policies = [
            (await client.get(f"/v1/tickets/{t}/sla")).json()["policy"]
            for t in ("R1", "R2", "R3", "R4")
        ]
        if policies[:2] == ["gold", "gold"]:
            break
        await asyncio.sleep(0.1)
    # The open tickets moved; the solved one and the other customer's did not.
    assert policies == ["gold", "gold", "standard", "standard"]
    r1 = (await client.get("/v1/tickets/R1/sla")).json()
    assert r1["why"] == {"customer_tier": "gold"}
    # An older customer event arriving late changes nothing.
    stale = {
        **upgrade,
        "event_id": "crm-C-R-0",
        "occurred_at": iso(t0 + timedelta(seconds=10)),
        "data": {"customer_id": "C-R", "tier": "bronze"},
    }
    await post(
        settings.kafka_bootstrap, settings.topic_events, [stale, _ticket("R5", t0, "C-X", "gold")]
    )
    for _ in range(300):
        if (await client.get("/v1/tickets/R5/sla")).status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("/v1/tickets/R1/sla")).json()["policy"] == "gold"


# ------------------------------------------------------------------ docs/reports.md

DOC = Path(__file__).parents[2] / "docs" / "reports.md"


def worked_example() -> list[dict]:
    """The events of docs/reports.md's worked example (Asia/Shanghai, the week of
    2026-06-01 and the next)."""
    z = ZoneInfo(TZ)

    def at(day: int, hour: int, minute: int = 0) -> str:
        return iso(datetime(2026, 6, day, hour, minute, tzinfo=z))

    def ev(eid: str, kind: str, tid: str | None, when: str, **data: Any) -> dict:
        e = {"event_id": eid, "type": kind, "occurred_at": when, "data": data}
        if tid:
            e["ticket_id"] = tid
        return e

    return [
        ev(
            "W1c",
            "ticket.created",
            "W1",
            at(1, 9),
            group="billing",
            assignee="li.na",
            customer_id="K1",
        ),
        ev("W1r", "message.created", "W1", at(1, 9, 30), author_role="agent", handle_seconds=600),
        ev("W1s", "ticket.status_changed", "W1", at(1, 11), status="solved"),
        ev("W1v", "survey.responded", "W1", at(1, 12), csat=5, nps=10),
        ev(
            "W2c",
            "ticket.created",
            "W2",
            at(2, 10),
            group="billing",
            assignee="li.na",
            customer_id="K2",
        ),
        ev("W2r", "message.created", "W2", at(2, 12), author_role="agent", handle_seconds=300),
        ev("W2m", "message.created", "W2", at(2, 13), author_role="customer"),
        ev("W2q", "message.created", "W2", at(2, 14), author_role="agent"),
        ev("W2w", "work.logged", "W2", at(2, 15), agent="li.na", seconds=1500),
        ev("W2s", "ticket.status_changed", "W2", at(2, 20), status="solved"),
        ev("W2v", "survey.responded", "W2", at(2, 21), csat=2, nps=3),
        ev(
            "W3c",
            "ticket.created",
            "W3",
            at(3, 9),
            group="billing",
            assignee="li.na",
            customer_id="K2",
        ),
        ev("W3r", "message.created", "W3", at(3, 9, 20), author_role="agent", handle_seconds=900),
        ev("K2x", "customer.updated", None, at(5, 18), customer_id="K2", status="churned"),
    ]


def doc_table() -> list[dict[str, str]]:
    """The worked example's result table in docs/reports.md (between its markers)."""
    text = DOC.read_text()
    block = text.split("<!-- worked-example:begin -->")[1].split("<!-- worked-example:end -->")[0]
    lines = [line.strip() for line in block.strip().splitlines() if line.strip().startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return [dict(zip(header, row, strict=True)) for row in rows]


BAD_REQUESTS = [
    ({"group_by": "moon"}, "group_by"),
    ({"bucket": "year"}, "bucket"),
    ({"bucket": "week", "tz": "Mars/Olympus"}, "tz"),
    ({"tz": "x" * 65}, "tz"),
    ({"tz": "UTC\x00"}, "tz"),
    ({"from": "2026-10-02T00:00:00Z", "to": "2026-10-01T00:00:00Z"}, "to"),
    ({"from": "2026-10-01"}, "from"),
    ({"bucket": "day", "from": "1971-01-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"}, "from"),
    ({"format": "xls"}, "format"),
    ({"bucket": "day", "from": "9998-12-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}, "to"),
]


async def test_the_worked_example_of_docs_reports_md_and_bad_requests(stack):
    settings, _, _, client = stack
    events = worked_example()
    await post(settings.kafka_bootstrap, settings.topic_events, events)
    start = datetime(2026, 6, 1, tzinfo=ZONE)
    end = datetime(2026, 6, 8, tzinfo=ZONE)
    params = {"from": start.isoformat(), "to": end.isoformat(), "group_by": "assignee", "tz": TZ}
    expected = oracle.report(events, start, end, "assignee", None, TZ, FIRST_RESPONSE, RESOLUTION)
    got = await wait_for(client, params, expected)
    assert_same(got, expected, "worked example")
    [row] = got
    shown = doc_table()
    assert [line["figure"] for line in shown] == [k for k in row if k != "assignee"]
    for line in shown:
        value = row[line["figure"]]
        assert line["value"] == ("null" if value is None else str(value)), line

    # With buckets and no `from`: the quarter before `to`.
    quarter = await client.get(
        "/v1/reports/compliance", params={"bucket": "week", "to": end.isoformat()}
    )
    assert quarter.status_code == 200, quarter.text
    assert datetime.fromisoformat(quarter.json()["from"]) == end - timedelta(days=92)
    assert len(quarter.json()["groups"]) >= 1
    for bad, field in BAD_REQUESTS:  # bad input: 422 naming the parameter
        response = await client.get("/v1/reports/compliance", params=bad)
        assert response.status_code == 422, (bad, response.text)
        assert field in response.text, (bad, response.text)
        response = await client.get("/v1/reports/compliance/series", params=bad)
        assert response.status_code == 422 or "group_by" in bad or "format" in bad, bad
