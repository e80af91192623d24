"""Compliance reports and at-risk listings, computed in PostgreSQL from ticket_facts.

The per-ticket facts (written with the state, in the same transaction) are:
``first_response_seconds`` and ``resolution_seconds`` (business time, null until
reached), ``public_agent_replies``, ``targets_met``, ``targets_breached`` (outcomes of
finished targets, met late counting as breached), ``csat`` and ``nps`` (last survey), and
the agent work / requester wait times (business and calendar ms, also as columns; the
reports give their medians over solved tickets); as columns also the report groups (``team`` is the ticket's group, ``assignee``,
``customer_id``) and ``handle_seconds`` (agent effort reported, summed). Customers' churn
comes from the ``customers`` table (customer.updated). Every figure is defined, exactly as
computed here, in docs/reports.md.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slawatch.services.sla_monitor import engine_port
from slawatch.services.sla_monitor.metrics import TEAM_KPIS
from slawatch.services.sla_monitor.store import Store

# group_by -> the SQL expression of the group (a fixed list: never interpolate user input).
GROUP_COLUMNS = {
    "policy": "policy",
    "customer_tier": "customer_tier",
    "channel": "channel",
    "priority": "priority",
    "assignee": "assignee",
    "group": "team",
    "customer_id": "customer_id",
}
BUCKETS = ("day", "week", "month")
# The band of an abnormal movement: the previous BASELINE_BUCKETS buckets of the same group,
# at least MIN_BASELINE of them with a value; outside mean +/- BAND_SD sample standard
# deviations is abnormal.
BASELINE_BUCKETS = 8
MIN_BASELINE = 4
BAND_SD = 3.0
# The figures watched for abnormal movements (the headline KPIs).
WATCHED = (
    "sla_met_pct",
    "first_response_p90_s",
    "resolution_p90_s",
    "fcr_pct",
    "csat_avg",
    "nps",
    "aht_mean_s",
    "retention_pct",
)

# The groups' keys in the report's range. The report numbers them (in key order) and the
# query groups by number: the sort by group and the group boundaries then compare integers,
# not strings (a fifth of the report's time).
_KEYS_SQL = """
SELECT DISTINCT {key} AS key FROM ticket_facts WHERE created_at >= $1 AND created_at < $2
"""
# $1, $2 the range; $3 the keys, numbered from 1 by their place; $4 the buckets' bounds
# (bucketed reports); then a share's two parameters (see _SHARE_SQL).
_COMPLIANCE_SQL = """
WITH t AS (
  SELECT keys.key_id * {bucket_span} + coalesce({bucket}, 0) AS gid, {bucket} AS bucket,
         customer_id COLLATE "C" AS customer_id, solved_at, handle_seconds AS hs,
         targets_met AS met, targets_breached AS breached,
         first_response_s AS frt, resolution_s AS rt, public_agent_replies AS replies,
         csat::float8 AS csat, nps,
         agent_work_business_ms AS awb, agent_work_calendar_ms AS awc,
         requester_wait_business_ms AS rwb, requester_wait_calendar_ms AS rwc
  FROM ticket_facts
  JOIN unnest($3::text[]) WITH ORDINALITY AS keys(key, key_id) ON keys.key = {key}
  WHERE created_at >= $1 AND created_at < $2 {share}
),
f AS (
  -- churned: the ticket's customer churned before the end of the row's period. One value
  -- per customer and row, so the customer counts below are distinct counts of customer_id.
  SELECT t.*, coalesce(cu.churned_at < {period_end}, false) AS churned
  FROM t LEFT JOIN customers cu ON cu.customer_id = t.customer_id
)
SELECT gid,
       count(*) AS tickets,
       coalesce(sum(met), 0) AS targets_met,
       coalesce(sum(breached), 0) AS targets_breached,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY frt) AS first_response_p50_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY frt) AS first_response_p90_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY rt) AS resolution_p50_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY rt) AS resolution_p90_s,
       count(*) FILTER (WHERE solved_at IS NOT NULL) AS solved,
       count(*) FILTER (WHERE solved_at IS NOT NULL AND replies = 1) AS solved_first_contact,
       avg(csat) AS csat_avg,
       count(csat) AS csat_responses,
       count(nps) AS nps_responses,
       count(*) FILTER (WHERE nps >= 9) AS promoters,
       count(*) FILTER (WHERE nps <= 6) AS detractors,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY awb) FILTER (WHERE solved_at IS NOT NULL) / 1000 AS agent_work_business_p50_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY awc) FILTER (WHERE solved_at IS NOT NULL) / 1000 AS agent_work_calendar_p50_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY rwb) FILTER (WHERE solved_at IS NOT NULL) / 1000 AS requester_wait_business_p50_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY rwc) FILTER (WHERE solved_at IS NOT NULL) / 1000 AS requester_wait_calendar_p50_s,
       count(*) FILTER (WHERE solved_at IS NOT NULL AND hs > 0) AS aht_tickets,
       avg(hs) FILTER (WHERE solved_at IS NOT NULL AND hs > 0) AS aht_mean_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY hs)
         FILTER (WHERE solved_at IS NOT NULL AND hs > 0) AS aht_p90_s,
       count(DISTINCT customer_id) AS customers,
       count(DISTINCT customer_id) FILTER (WHERE churned) AS churned,
       count(DISTINCT customer_id) FILTER (WHERE breached > 0) AS customers_breached,
       count(DISTINCT customer_id) FILTER (WHERE breached > 0 AND churned) AS churned_breached
FROM f GROUP BY gid
"""
# Room for every bucket number in a group's number (key_id * BUCKET_SPAN + bucket): a report
# spans at most ten years of days, plus the baseline's.
BUCKET_SPAN = 1_000_000
# One share of the groups (``$count`` shares, this is share ``$index``), cut by a hash of the group's
# key and bucket, filtered in the scan: a (group, bucket)'s rows all fall in one share, so
# each share's figures are complete and the shares' rows are disjoint.
_SHARE_SQL = "AND ((hashtext({key}) # coalesce({bucket}, 0)) & 2147483647) % ${count} = ${index}"


def _ratio(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


@dataclass(frozen=True)
class Query:
    """A checked report request: [start, end) of ticket creation, the group, and the
    buckets (None: one row per group) cut in ``tz``, an IANA name the caller has checked."""

    start: datetime
    end: datetime
    group_by: str | None = "policy"
    bucket: str | None = None
    tz: str = "UTC"


def bucket_start(moment: datetime, bucket: str, zone: ZoneInfo) -> date:
    """The local date the bucket holding ``moment`` begins on (ISO weeks begin on Monday)."""
    day = moment.astimezone(zone).date()
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def shift(start: date, bucket: str, n: int) -> date:
    """The bucket ``n`` buckets after (negative: before) the one starting on ``start``."""
    if bucket == "day":
        return start + timedelta(days=n)
    if bucket == "week":
        return start + timedelta(weeks=n)
    months = start.year * 12 + start.month - 1 + n
    return date(months // 12, months % 12 + 1, 1)


async def compliance(store: Store, query: Query, parallelism: int = 1) -> list[dict[str, Any]]:
    """The report's rows: one per group, or per (group, bucket) in bucket order, with the
    abnormal-movement flags of each bucket against the previous ones of its group (the
    query reaches BASELINE_BUCKETS buckets before ``start`` for them; those rows are not
    returned). Up to ``parallelism`` queries share the groups between them (see _fetch)."""
    column = GROUP_COLUMNS[query.group_by] if query.group_by else "'(all)'"
    # Byte order ("C"): keys compared by memcmp, not by the locale's rules; the order is
    # the code points' (Python's str order), in which the keys are numbered.
    key = f"coalesce({column}, '(none)') COLLATE \"C\""
    if query.bucket is None:
        sql = _COMPLIANCE_SQL.format(
            key=key, bucket="NULL::int", period_end="$2", share="{share}", bucket_span=BUCKET_SPAN
        )
        share = _SHARE_SQL.format(key=key, bucket="NULL::int", count=4, index=5)
        rows = await _fetch(store, parallelism, key, sql, share, query.start, query.end)
        return [_figures(r, query) for r in rows]
    assert query.bucket in BUCKETS  # a fixed list: never interpolate user input
    zone = ZoneInfo(query.tz)
    first = bucket_start(query.start, query.bucket, zone)
    # The buckets' first instants, from BASELINE_BUCKETS before the first one to past `to`,
    # cut here in the zone (DST included): the database finds a ticket's bucket by binary
    # search in them (width_bucket), 3x cheaper per row than date_trunc(AT TIME ZONE).
    starts = [shift(first, query.bucket, -BASELINE_BUCKETS)]
    bounds = [datetime.combine(starts[0], time(), zone)]
    while bounds[-1] < query.end:
        starts.append(shift(starts[-1], query.bucket, 1))
        bounds.append(datetime.combine(starts[-1], time(), zone))
    bucket = "width_bucket(created_at, $4::timestamptz[])"
    period_end = "least(($4::timestamptz[])[t.bucket + 1], $2)"
    sql = _COMPLIANCE_SQL.format(
        key=key, bucket=bucket, period_end=period_end, share="{share}", bucket_span=BUCKET_SPAN
    )
    share = _SHARE_SQL.format(key=key, bucket=bucket, count=5, index=6)
    start = min(bounds[0], query.start)
    rows = await _fetch(store, parallelism, key, sql, share, start, query.end, bounds)
    labels = [day.isoformat() for day in starts]
    out = [_figures(r, query, labels) for r in rows]
    flag_abnormal(out, query.bucket)
    # The baseline's buckets only serve the flags; a first bucket cut by `from` stays.
    return [row for row in out if row["bucket"] >= first.isoformat()]


# The report sorts its rows by group and bucket: in memory, not on disk.
REPORT_WORK_MEM = "64MB"
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


async def _fetch(
    store: Store, parallelism: int, key: str, sql: str, share: str, start: datetime, *args: Any
) -> list[dict[str, Any]]:
    """The report query's rows in (key, bucket) order, each with its ``key`` and ``bucket``.

    First the range's keys, numbered; then the report itself, by ``parallelism`` queries at
    once when the pool has the connections. Why several: PostgreSQL cannot parallelise
    ordered-set aggregates (the percentiles) or DISTINCT aggregates, so one query sorts
    every row and aggregates every group on one core. Split by a hash of (group, bucket)
    (``share``), each query sorts and aggregates its share only, on its own connection and
    core; the shares' rows are disjoint and together complete. All of them read the
    snapshot the keys were read in (exported, as pg_dump's parallel jobs do), so the report
    is one consistent reading even while the monitor writes."""
    parallelism = max(1, min(parallelism, store.pool.get_max_size() - 1))
    async with (
        store.report_gate,  # before the connection: waiting for the gate holds none
        store.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        snapshot = await conn.fetchval("SELECT pg_export_snapshot()") if parallelism > 1 else None
        found = await conn.fetch(_KEYS_SQL.format(key=key), start, args[0])
        keys = sorted(record["key"] for record in found)
        params = (start, *args[:1], keys, *args[1:])
        if snapshot is None:
            rows = await _run(conn, sql.format(share=""), params, parallel_workers=True)
        else:
            assert _SNAPSHOT_ID.fullmatch(snapshot), snapshot  # the server's, never the user's
            share_sql = sql.format(share=share)
            shares = await asyncio.gather(
                *(
                    _fetch_share(store, snapshot, share_sql, (*params, parallelism, index))
                    for index in range(parallelism)
                )
            )
            rows = [row for part in shares for row in part]
    rows.sort(key=lambda row: row["gid"])  # keys numbered in key order: (key, bucket) order
    out = []
    for row in rows:
        key_id, bucket_number = divmod(row["gid"], BUCKET_SPAN)
        out.append({**row, "key": keys[key_id - 1], "bucket": bucket_number})
    return out


async def _fetch_share(store: Store, snapshot: str, sql: str, params: tuple[Any, ...]) -> list[Any]:
    async with (
        store.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        # No parallel workers: the shares already use the cores.
        return await _run(conn, sql, params, parallel_workers=False)


async def _run(
    conn: Any, sql: str, params: tuple[Any, ...], *, parallel_workers: bool
) -> list[Any]:
    await conn.execute(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")
    # Left on, the planner adds customer_id to the big sort by group so that the DISTINCT
    # customer counts need no sort of their own: a second key compared on a million rows
    # costs more (measured: a third of the report) than sorting each group's customers.
    await conn.execute("SET LOCAL enable_presorted_aggregate = off")
    # The keys come as an array, of which the planner knows no statistics: it guesses that
    # a ticket matches hundreds of keys and joins by sorting both sides by key, the very
    # string sort the numbering avoids. A hash of the keys is right for any size.
    await conn.execute("SET LOCAL enable_mergejoin = off")
    await conn.execute("SET LOCAL enable_nestloop = off")
    if not parallel_workers:
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    return await conn.fetch(sql, *params)


def _figures(r: Any, query: Query, labels: list[str] | None = None) -> dict[str, Any]:
    finished = r["targets_met"] + r["targets_breached"]
    row: dict[str, Any] = {query.group_by or "group": r["key"]}
    if query.bucket is not None:
        assert labels is not None
        row["bucket"] = labels[r["bucket"] - 1]  # width_bucket counts from 1
    unbreached = r["customers"] - r["customers_breached"]
    row.update(
        {
            "tickets": r["tickets"],
            "targets_met": r["targets_met"],
            "targets_breached": r["targets_breached"],
            "sla_met_pct": _ratio(r["targets_met"], finished),
            "first_response_p50_s": r["first_response_p50_s"],
            "first_response_p90_s": r["first_response_p90_s"],
            "resolution_p50_s": r["resolution_p50_s"],
            "resolution_p90_s": r["resolution_p90_s"],
            "solved": r["solved"],
            "fcr_pct": _ratio(r["solved_first_contact"], r["solved"]),
            "csat_avg": round(r["csat_avg"], 2) if r["csat_avg"] is not None else None,
            "csat_responses": r["csat_responses"],
            "nps": round(
                round(100.0 * r["promoters"] / r["nps_responses"], 2)
                - round(100.0 * r["detractors"] / r["nps_responses"], 2),
                2,
            )
            if r["nps_responses"]
            else None,
            "nps_responses": r["nps_responses"],
            "aht_tickets": r["aht_tickets"],
            "aht_mean_s": round(r["aht_mean_s"], 2) if r["aht_mean_s"] is not None else None,
            "aht_p90_s": r["aht_p90_s"],
            "customers": r["customers"],
            "customers_churned": r["churned"],
            "retention_pct": _ratio(r["customers"] - r["churned"], r["customers"]),
            "customers_breached": r["customers_breached"],
            "churn_breached_pct": _ratio(r["churned_breached"], r["customers_breached"]),
            # A churned customer without a breach in the row: churned, less those with one.
            "churn_unbreached_pct": _ratio(r["churned"] - r["churned_breached"], unbreached),
            # Of solved tickets (final figures), seconds: docs/policies.md, work/wait time.
            "agent_work_business_p50_s": r["agent_work_business_p50_s"],
            "agent_work_calendar_p50_s": r["agent_work_calendar_p50_s"],
            "requester_wait_business_p50_s": r["requester_wait_business_p50_s"],
            "requester_wait_calendar_p50_s": r["requester_wait_calendar_p50_s"],
        }
    )
    if query.bucket is not None:
        row["abnormal"] = []
    return row


def flag_abnormal(rows: list[dict[str, Any]], bucket: str) -> None:
    """Mark each bucketed row's figures that moved abnormally: outside mean +/- BAND_SD
    sample standard deviations of the same figure in the group's previous BASELINE_BUCKETS
    buckets (calendar buckets: one without tickets has no value), when at least
    MIN_BASELINE of them have one. Rows are those of compliance(): a group's in bucket
    order, all with a ``bucket`` date and an empty ``abnormal`` list."""
    groups: dict[Any, dict[str, dict[str, Any]]] = {}
    for row in rows:
        group = next(iter(row.values()))
        groups.setdefault(group, {})[row["bucket"]] = row
    for by_bucket in groups.values():
        for label, row in by_bucket.items():
            start = date.fromisoformat(label)
            previous = [
                by_bucket.get(shift(start, bucket, -n).isoformat())
                for n in range(1, BASELINE_BUCKETS + 1)
            ]
            for figure in WATCHED:
                value = row[figure]
                if value is None:
                    continue
                history = [p[figure] for p in previous if p is not None and p[figure] is not None]
                if len(history) < MIN_BASELINE:
                    continue
                mean, sd = _mean_sd(history)
                band = BAND_SD * sd
                if abs(value - mean) > band:
                    row["abnormal"].append(figure)


async def at_risk(
    store: Store,
    policies: engine_port.Policies,
    now: datetime,
    window: timedelta,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """Running targets due within the window (overdue ones included), soonest first."""
    rows = await store.due_soonest(now + window, limit, offset)
    items: list[dict[str, Any]] = []
    for row in rows:
        described = engine_port.describe(engine_port.load(row["state"], policies), now)
        for target in described["targets"]:
            deadline = target.get("deadline")
            if (
                target["status"] in ("running", "breached")
                and deadline is not None
                and datetime.fromisoformat(deadline) <= now + window
            ):
                items.append(
                    {"ticket_id": row["ticket_id"], "policy": described["policy"], **target}
                )
    items.sort(key=lambda item: item["deadline"])
    return items


def _mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation in floats (statistics.stdev is exact, via
    fractions: 50x slower, and a report flags thousands of rows)."""
    mean = math.fsum(values) / len(values)
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV, one column per figure; ``abnormal`` lists the flagged figures
    separated by ``;``."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            if "abnormal" in row:
                row = {**row, "abnormal": ";".join(row["abnormal"])}
            writer.writerow(row)
    return buffer.getvalue()


MAX_TEAMS = (
    200  # label cardinality bound of the team gauges: the busiest teams beyond it are left out
)


async def refresh_team_gauges(store: Store, metrics: Any, now: datetime, window: timedelta) -> int:
    """Set the slawatch_team_* gauges from one report grouped by team over the trailing
    window; a team gone from the window loses its series. Returns the teams exported."""
    rows = await compliance(store, Query(now - window, now, "group"))
    rows = sorted(rows, key=lambda r: -r["tickets"])[:MAX_TEAMS]
    for figure, _, _ in TEAM_KPIS:
        gauge = metrics.team_kpis[figure]
        gauge.clear()
        for row in rows:
            if row[figure] is not None:
                gauge.labels(row["group"]).set(row[figure])
    return len(rows)
