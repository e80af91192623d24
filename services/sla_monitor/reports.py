"""Compliance reports and at-risk listings, computed in PostgreSQL from ticket_facts.

The per-ticket facts (written with the state, in the same transaction) are:
``first_response_seconds`` and ``resolution_seconds`` (business time, null until
reached), ``public_agent_replies``, ``targets_met``, ``targets_breached`` (outcomes of
finished targets, met late counting as breached), ``csat`` and ``nps`` (last survey), and
the agent work / requester wait times (business and calendar ms, also as columns; the
reports give their medians over solved tickets).
FCR is the share of solved tickets with exactly one public agent reply; NPS is
%promoters (9-10) minus %detractors (0-6) among tickets with an NPS answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from slawatch.services.sla_monitor import engine_port
from slawatch.services.sla_monitor.store import Store

GROUP_COLUMNS = {
    "policy": "policy",
    "customer_tier": "customer_tier",
    "channel": "channel",
    "priority": "priority",
}

_COMPLIANCE_SQL = """
WITH f AS (
  SELECT {key} AS key, solved_at,
         (facts->>'targets_met')::int AS met, (facts->>'targets_breached')::int AS breached,
         (facts->>'first_response_seconds')::float AS frt, (facts->>'resolution_seconds')::float AS rt,
         (facts->>'public_agent_replies')::int AS replies,
         (facts->>'csat')::float AS csat, (facts->>'nps')::int AS nps,
         agent_work_business_ms AS awb, agent_work_calendar_ms AS awc,
         requester_wait_business_ms AS rwb, requester_wait_calendar_ms AS rwc
  FROM ticket_facts WHERE created_at >= $1 AND created_at < $2
)
SELECT key,
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
       percentile_cont(0.5) WITHIN GROUP (ORDER BY rwc) FILTER (WHERE solved_at IS NOT NULL) / 1000 AS requester_wait_calendar_p50_s
FROM f GROUP BY key ORDER BY key
"""


def _ratio(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


BUCKETS = ("day", "week")


async def compliance(
    store: Store, start: datetime, end: datetime, group_by: str
) -> list[dict[str, Any]]:
    column = GROUP_COLUMNS[group_by]  # a fixed list: never interpolate user input
    key = f"coalesce({column}, '(none)')"
    rows = await store.pool.fetch(_COMPLIANCE_SQL.format(key=key), start, end)
    return _groups(rows, group_by)


async def compliance_series(
    store: Store, start: datetime, end: datetime, bucket: str, timezone: str
) -> list[dict[str, Any]]:
    """The same figures per day or week (ISO weeks, from Monday) of ticket creation, the
    buckets cut in ``timezone`` (an IANA name the caller has checked)."""
    assert bucket in BUCKETS  # a fixed list: never interpolate user input
    key = f"to_char(date_trunc('{bucket}', created_at AT TIME ZONE $3), 'YYYY-MM-DD')"
    rows = await store.pool.fetch(_COMPLIANCE_SQL.format(key=key), start, end, timezone)
    return _groups(rows, bucket)


def _groups(rows: list[Any], group_by: str) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        finished = r["targets_met"] + r["targets_breached"]
        out.append(
            {
                group_by: r["key"],
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
                    _ratio(r["promoters"], r["nps_responses"])
                    - _ratio(r["detractors"], r["nps_responses"]),
                    2,
                )
                if r["nps_responses"]
                else None,
                "nps_responses": r["nps_responses"],
                # Of solved tickets (final figures), seconds: docs/policies.md, work/wait time.
                "agent_work_business_p50_s": r["agent_work_business_p50_s"],
                "agent_work_calendar_p50_s": r["agent_work_calendar_p50_s"],
                "requester_wait_business_p50_s": r["requester_wait_business_p50_s"],
                "requester_wait_calendar_p50_s": r["requester_wait_calendar_p50_s"],
            }
        )
    return out


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
