"""Report benchmark: the compliance report over many tickets, and what its indexes cost the
monitor's write path. One run, one embedded PostgreSQL.

(a) the report of #14: ``group_by=assignee&bucket=week&tz=Asia/Shanghai`` over a quarter
    (every figure: percentiles, AHT, retention, breach-versus-churn, abnormal flags) on
    N ticket_facts rows (200 agents, 20 teams, 50,000 customers, 5% of them churned), beside
    two baselines in the same database: the report as it was before #14 (group_by=policy,
    the old figures only) and a bare scan (count of the quarter's rows).
(b) the write path: the monitor's ticket_facts upsert (Store.write, batches of 2,000 new
    tickets) with the indexes #14 added (created_at, customer_id), against the same writes
    with those two indexes dropped: the ratio is their cost.

    python bench/reports.py [--tickets 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slawatch.services.database import migrate  # noqa: E402
from slawatch.services.dev.provision import Postgres  # noqa: E402
from slawatch.services.sla_monitor import reports  # noqa: E402
from slawatch.services.sla_monitor.settings import MonitorSettings  # noqa: E402
from slawatch.services.sla_monitor.store import BatchWrite, FactsRow, Store  # noqa: E402
from slawatch.shared.db import asyncpg_dsn  # noqa: E402

QUARTER_START = datetime(2026, 7, 1, tzinfo=UTC)
QUARTER_END = datetime(2026, 10, 1, tzinfo=UTC)
AGENTS = [f"agent-{n:03d}" for n in range(200)]
CUSTOMERS = 50_000
TZ = "Asia/Shanghai"
INDEXES = {
    "ix_ticket_facts_created_at": "CREATE INDEX ix_ticket_facts_created_at ON ticket_facts (created_at)",
    "ix_ticket_facts_customer_id": "CREATE INDEX ix_ticket_facts_customer_id ON ticket_facts (customer_id)",
}
OLD_REPORT = """
WITH f AS (
  SELECT coalesce(policy, '(none)') AS key, solved_at,
         (facts->>'targets_met')::int AS met, (facts->>'targets_breached')::int AS breached,
         (facts->>'first_response_seconds')::float AS frt, (facts->>'resolution_seconds')::float AS rt,
         (facts->>'public_agent_replies')::int AS replies,
         (facts->>'csat')::float AS csat, (facts->>'nps')::int AS nps
  FROM ticket_facts WHERE created_at >= $1 AND created_at < $2
)
SELECT key, count(*), coalesce(sum(met), 0), coalesce(sum(breached), 0),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY frt), percentile_cont(0.9) WITHIN GROUP (ORDER BY frt),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY rt), percentile_cont(0.9) WITHIN GROUP (ORDER BY rt),
       count(*) FILTER (WHERE solved_at IS NOT NULL),
       count(*) FILTER (WHERE solved_at IS NOT NULL AND replies = 1),
       avg(csat), count(csat), count(nps), count(*) FILTER (WHERE nps >= 9), count(*) FILTER (WHERE nps <= 6)
FROM f GROUP BY key ORDER BY key
"""


def facts_row(
    n: int, rng: random.Random, start: datetime, span_s: float, prefix: str = "B"
) -> FactsRow:
    created = start + timedelta(seconds=rng.random() * span_s)
    agent = AGENTS[rng.randrange(len(AGENTS))]
    solved = rng.random() < 0.9
    frt = rng.expovariate(1 / 1800)
    rt = frt + rng.expovariate(1 / 20000) if solved else None
    met = int(frt < 3600) + int(bool(rt is not None and rt < 28800))
    survey = rng.random() < 0.3
    # Agent work and requester wait (business and calendar ms), as the monitor writes them
    # for every ticket: work is a share of the time to resolution, calendar time >= business.
    horizon_ms = (rt if rt is not None else frt + 3600.0) * 1000
    work_b = int(horizon_ms * rng.uniform(0.05, 0.5))
    wait_b = int(horizon_ms) - work_b
    work_c = int(work_b * rng.uniform(1.0, 3.0))
    wait_c = int(wait_b * rng.uniform(1.0, 3.0))
    f = {
        "ticket_id": f"{prefix}{n}",
        "first_response_seconds": round(frt, 3),
        "resolution_seconds": None if rt is None else round(rt, 3),
        "public_agent_replies": rng.choice([1, 1, 1, 2, 3]),
        "csat": rng.randint(1, 5) if survey else None,
        "nps": rng.randint(0, 10) if survey else None,
        "targets_met": met,
        "targets_breached": 2 - met,
        "agent_work_business_ms": work_b,
        "agent_work_calendar_ms": work_c,
        "requester_wait_business_ms": wait_b,
        "requester_wait_calendar_ms": wait_c,
    }
    row = FactsRow(
        ticket_id=f"{prefix}{n}",
        policy=rng.choice(["gold", "standard", "silver"]),
        customer_tier=rng.choice(["gold", "silver", "bronze"]),
        channel=rng.choice(["chat", "email", "phone"]),
        priority=rng.choice(["high", "normal", "low"]),
        created_at=created,
        solved_at=created + timedelta(seconds=rt) if rt is not None else None,
        facts=f,
        agent_work_business_ms=work_b,
        agent_work_calendar_ms=work_c,
        requester_wait_business_ms=wait_b,
        requester_wait_calendar_ms=wait_c,
        customer_id=f"C{rng.randrange(CUSTOMERS)}",
        team=f"team-{AGENTS.index(agent) // 10:02d}",
        assignee=agent,
        handle_seconds=float(rng.randrange(1, 3600)) if solved and rng.random() < 0.8 else 0.0,
    )
    # The rest of what the monitor's facts document holds (views.facts), so that a row is
    # as wide as the monitor writes it: the report's scan reads whole rows even though it
    # uses only columns.
    first_met, resolution_met = int(frt < 3600), int(bool(rt is not None and rt < 28800))
    f.update({
        "policy": row.policy, "why": {"priority": row.priority, "customer_tier": row.customer_tier},
        "priority": row.priority, "customer_tier": row.customer_tier, "channel": row.channel,
        "group": row.team, "assignee": row.assignee, "tags": ["invoice"],
        "status": "solved" if solved else "open", "created_at": created.isoformat(),
        "first_response_at": (created + timedelta(seconds=frt)).isoformat(),
        "solved": solved, "solved_at": row.solved_at.isoformat() if row.solved_at else None,
        "customer_id": row.customer_id, "handle_seconds": row.handle_seconds,
        "targets": {"first_response": {"cycles_met": first_met, "breaches": 1 - first_met},
                    "resolution": {"cycles_met": resolution_met, "breaches": int(solved) - resolution_met}},
    })  # fmt: skip
    return row


async def load(pool: asyncpg.Pool, tickets: int) -> float:
    """COPY the ticket_facts rows and the customers (the monitor writes them one batch at a
    time; for a read benchmark a bulk load is the same table)."""
    rng = random.Random(14)
    span = (QUARTER_END - QUARTER_START).total_seconds()
    started = time.perf_counter()
    chunk = 100_000
    async with pool.acquire() as conn:
        for first in range(0, tickets, chunk):
            rows = [
                facts_row(n, rng, QUARTER_START, span)
                for n in range(first, min(tickets, first + chunk))
            ]
            await conn.copy_records_to_table(
                "ticket_facts",
                records=[
                    (
                        r.ticket_id,
                        r.policy,
                        r.customer_tier,
                        r.channel,
                        r.priority,
                        r.created_at,
                        r.solved_at,
                        json.dumps(r.facts),
                        r.customer_id,
                        r.team,
                        r.assignee,
                        r.handle_seconds,
                        r.agent_work_business_ms,
                        r.agent_work_calendar_ms,
                        r.requester_wait_business_ms,
                        r.requester_wait_calendar_ms,
                    )
                    for r in rows
                ],
                columns=[
                    "ticket_id",
                    "policy",
                    "customer_tier",
                    "channel",
                    "priority",
                    "created_at",
                    "solved_at",
                    "facts",
                    "customer_id",
                    "team",
                    "assignee",
                    "handle_seconds",
                    "agent_work_business_ms",
                    "agent_work_calendar_ms",
                    "requester_wait_business_ms",
                    "requester_wait_calendar_ms",
                ],
            )
            print(f"  loaded {min(tickets, first + chunk):,} tickets", flush=True)
        churned = rng.sample(range(CUSTOMERS), CUSTOMERS // 20)
        await conn.copy_records_to_table(
            "customers",
            records=[
                (
                    f"C{c}",
                    "gold",
                    "churned",
                    QUARTER_START + timedelta(seconds=rng.random() * span),
                    QUARTER_START + timedelta(seconds=span),
                )
                for c in churned
            ],
            columns=["customer_id", "tier", "status", "churned_at", "changed_at"],
        )
        await conn.execute("VACUUM ANALYZE ticket_facts")
        await conn.execute("VACUUM ANALYZE customers")
    return time.perf_counter() - started


async def timed(runs: int, call) -> float:
    """The median of ``runs`` calls after one warm-up (seconds)."""
    await call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# The monitor's default: the report's queries at once (SLAWATCH_MONITOR_REPORT_PARALLELISM).
PARALLELISM = MonitorSettings.model_fields["monitor_report_parallelism"].default


async def bench_report(store: Store) -> dict:
    query = reports.Query(QUARTER_START, QUARTER_END, "assignee", "week", TZ)
    rows: list = []

    async def report() -> None:
        nonlocal rows
        rows = await reports.compliance(store, query, PARALLELISM)

    async def serial() -> None:
        await reports.compliance(store, query, 1)

    async def old() -> None:
        await store.pool.fetch(OLD_REPORT, QUARTER_START, QUARTER_END)

    async def scan() -> None:
        await store.pool.fetchval(
            "SELECT count(*) FROM ticket_facts WHERE created_at >= $1 AND created_at < $2",
            QUARTER_START,
            QUARTER_END,
        )

    report_s = await timed(3, report)
    serial_s = await timed(3, serial)
    old_s = await timed(3, old)
    scan_s = await timed(3, scan)
    flagged = sum(1 for r in rows if r["abnormal"])
    return {
        "report_s": report_s,
        "parallelism": PARALLELISM,
        "serial_report_s": serial_s,
        "old_report_s": old_s,
        "scan_s": scan_s,
        "rows": len(rows),
        "flagged_rows": flagged,
        "ratio_to_old": report_s / old_s,
        "ratio_to_scan": report_s / scan_s,
    }


async def bench_write(store: Store, batches: int = 40, size: int = 2000) -> dict:
    """Store.write of ticket_facts upserts (new tickets, as a busy monitor writes them), with
    and without the two indexes of #14 (the primary key stays)."""
    rng = random.Random(7)
    span = 86400.0
    start = QUARTER_END

    def batch(k: int, tag: str) -> BatchWrite:
        write = BatchWrite()
        for n in range(size):
            row = facts_row(k * size + n, rng, start, span, prefix=f"W{tag}")
            write.facts[row.ticket_id] = row
        return write

    async def run(tag: str) -> float:
        writes = [batch(k, tag) for k in range(batches)]
        started = time.perf_counter()
        for write in writes:
            await store.write(write)
        return time.perf_counter() - started

    with_indexes = [await run("a"), await run("b")]
    for name in INDEXES:
        await store.pool.execute(f"DROP INDEX {name}")
    try:
        without = [await run("c"), await run("d")]
    finally:
        for sql in INDEXES.values():
            await store.pool.execute(sql)
    rows = batches * size
    w, wo = min(with_indexes), min(without)
    return {
        "rows": rows,
        "with_indexes_rows_per_s": rows / w,
        "without_rows_per_s": rows / wo,
        "cost_ratio": w / wo,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with Postgres() as pg:
        await asyncio.to_thread(migrate.upgrade, pg.url)
        pool = await asyncpg.create_pool(asyncpg_dsn(pg.url), min_size=1, max_size=PARALLELISM + 1)
        store = Store(pool)
        try:
            load_s = await load(store.pool, args.tickets)
            print(f"loaded {args.tickets:,} tickets in {load_s:.1f}s", flush=True)
            report = await bench_report(store)
            print(f"(a) {report}", flush=True)
            write = await bench_write(store)
            print(f"(b) {write}", flush=True)
        finally:
            await store.close()
    goal_s = 2.0
    print(
        f"\nreports benchmark - {datetime.now(UTC):%Y-%m-%d %H:%M} UTC - {platform.machine()}, {os.cpu_count()} cores"
    )
    rows = [
        {
            "measure": f"(a) report: {args.tickets:,} tickets, assignee x week, a quarter, s",
            "value": report["report_s"],
            "baseline": report["old_report_s"],
            "ratio": report["ratio_to_old"],
            "goal": f"< {goal_s} s",
        },
        {
            "measure": "(a) the same report in one query (parallelism 1), s",
            "value": report["serial_report_s"],
            "baseline": report["old_report_s"],
            "ratio": report["serial_report_s"] / report["old_report_s"],
            "goal": "-",
        },
        {
            "measure": "(a) the same rows counted (bare scan), s",
            "value": report["scan_s"],
            "baseline": None,
            "ratio": report["ratio_to_scan"],
            "goal": "-",
        },
        {
            "measure": "(b) facts upserts/s with the #14 indexes",
            "value": write["with_indexes_rows_per_s"],
            "baseline": write["without_rows_per_s"],
            "ratio": write["cost_ratio"],
            "goal": "-",
        },
    ]
    for row in rows:
        base = f"{row['baseline']:,.2f}" if row["baseline"] else "-"
        print(
            f"{row['measure']:<64} {row['value']:>12,.2f}  baseline {base:>10}  ratio {row['ratio']:.2f}  goal {row['goal']}"
        )
    met = report["report_s"] < goal_s
    print(
        "goal met:",
        met,
        f"({report['rows']} report rows, {report['flagged_rows']} with an abnormal figure)",
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "reports",
                    "rows": rows,
                    "details": {"report": report, "write": write, "tickets": args.tickets},
                    "goal": {"report_s": goal_s},
                    "met": met,
                },
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
