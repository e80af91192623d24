"""An independent computation of the compliance report, in plain Python over the posted
events, from the definitions of docs/reports.md. It shares no code with the monitor: it
knows only the events a test posted and the test's policy (an always-open calendar, so
business time is wall time; first response and resolution targets only, no pauses)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo


@dataclass
class Ticket:
    ticket_id: str
    created: datetime
    team: str | None
    assignee: str | None
    customer_id: str | None
    tier: str | None
    priority: str = "high"
    channel: str = "chat"
    replies: list[datetime] = field(default_factory=list)
    solved: datetime | None = None
    handle_seconds: int = 0
    csat: int | None = None
    nps: int | None = None


def fold(events: list[dict]) -> dict[str, Ticket]:
    """The tickets the events describe (ticket events only, any order, duplicates once)."""
    seen: set[str] = set()
    tickets: dict[str, Ticket] = {}
    ordered = sorted(
        (e for e in events if e["type"] != "customer.updated"),
        key=lambda e: (_at(e["occurred_at"]), e["type"] != "ticket.created"),
    )
    for e in ordered:
        if e["event_id"] in seen:
            continue
        seen.add(e["event_id"])
        d = e.get("data", {})
        at = _at(e["occurred_at"])
        if e["type"] == "ticket.created":
            tickets[e["ticket_id"]] = Ticket(
                e["ticket_id"],
                at,
                d.get("group"),
                d.get("assignee"),
                d.get("customer_id"),
                d.get("customer_tier"),
                d.get("priority", "normal"),
                e.get("channel", "other"),
            )
            continue
        t = tickets[e["ticket_id"]]
        if e["type"] == "message.created":
            t.handle_seconds += d.get("handle_seconds", 0)
            if d["author_role"] == "agent" and d.get("public", True):
                t.replies.append(at)
        elif e["type"] == "work.logged":
            t.handle_seconds += d["seconds"]
        elif e["type"] == "ticket.status_changed" and d["status"] in ("solved", "closed"):
            t.solved = at
        elif e["type"] == "survey.responded":
            t.csat = d.get("csat", t.csat)
            t.nps = d.get("nps", t.nps)
    return tickets


def churn_dates(events: list[dict]) -> dict[str, datetime]:
    """customer -> when it churned (customers that churned and stayed so)."""
    out: dict[str, datetime] = {}
    for e in sorted(
        (e for e in events if e["type"] == "customer.updated"), key=lambda e: e["occurred_at"]
    ):
        d = e["data"]
        if d.get("status") == "churned" and d["customer_id"] not in out:
            out[d["customer_id"]] = _at(e["occurred_at"])
        elif d.get("status") == "active":
            out.pop(d["customer_id"], None)
    return out


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    position = p * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def outcomes(t: Ticket, first_response: timedelta, resolution: timedelta) -> tuple[int, int]:
    """(targets met, targets breached) of one ticket, every deadline long past."""
    met = breached = 0
    reply = min(t.replies) if t.replies else None
    if reply is not None and reply - t.created < first_response:
        met += 1
    else:
        breached += 1
    if t.solved is not None and t.solved - t.created < resolution:
        met += 1
    else:
        breached += 1
    return met, breached


def figures(
    tickets: list[Ticket],
    churned: dict[str, datetime],
    period_end: datetime,
    first_response: timedelta,
    resolution: timedelta,
) -> dict[str, Any]:
    met = breached = 0
    customers: dict[str, bool] = {}  # customer -> had a breach
    for t in tickets:
        m, b = outcomes(t, first_response, resolution)
        met += m
        breached += b
        if t.customer_id is not None:
            customers[t.customer_id] = customers.get(t.customer_id, False) or b > 0
    frt = [(min(t.replies) - t.created).total_seconds() for t in tickets if t.replies]
    rt = [(t.solved - t.created).total_seconds() for t in tickets if t.solved]
    solved = [t for t in tickets if t.solved]
    csat = [t.csat for t in tickets if t.csat is not None]
    nps = [t.nps for t in tickets if t.nps is not None]
    effort = [float(t.handle_seconds) for t in solved if t.handle_seconds > 0]
    # Agent work / requester wait time (Zendesk's definitions): the ticket is `new` (these
    # tests post no other status) from creation to its solve, so both are that span; the
    # calendar is always open, so business time is wall time too.
    span = [(t.solved - t.created).total_seconds() for t in solved if t.solved]
    gone = {c for c in customers if c in churned and churned[c] < period_end}
    with_breach = {c for c, b in customers.items() if b}
    without = set(customers) - with_breach
    return {
        "tickets": len(tickets),
        "targets_met": met,
        "targets_breached": breached,
        "sla_met_pct": pct(met, met + breached),
        "first_response_p50_s": percentile(frt, 0.5),
        "first_response_p90_s": percentile(frt, 0.9),
        "resolution_p50_s": percentile(rt, 0.5),
        "resolution_p90_s": percentile(rt, 0.9),
        "solved": len(solved),
        "fcr_pct": pct(sum(1 for t in solved if len(t.replies) == 1), len(solved)),
        "csat_avg": round(sum(csat) / len(csat), 2) if csat else None,
        "csat_responses": len(csat),
        "nps": round(
            round(100.0 * sum(1 for n in nps if n >= 9) / len(nps), 2)
            - round(100.0 * sum(1 for n in nps if n <= 6) / len(nps), 2),
            2,
        )
        if nps
        else None,
        "nps_responses": len(nps),
        "aht_tickets": len(effort),
        "aht_mean_s": round(sum(effort) / len(effort), 2) if effort else None,
        "aht_p90_s": percentile(effort, 0.9),
        "customers": len(customers),
        "customers_churned": len(gone),
        "retention_pct": pct(len(customers) - len(gone), len(customers)),
        "customers_breached": len(with_breach),
        "churn_breached_pct": pct(len(gone & with_breach), len(with_breach)),
        "churn_unbreached_pct": pct(len(gone & without), len(without)),
        "agent_work_business_p50_s": percentile(span, 0.5),
        "agent_work_calendar_p50_s": percentile(span, 0.5),
        "requester_wait_business_p50_s": percentile(span, 0.5),
        "requester_wait_calendar_p50_s": percentile(span, 0.5),
    }


GROUP_OF = {
    "assignee": lambda t: t.assignee,
    "group": lambda t: t.team,
    "customer_id": lambda t: t.customer_id,
    "customer_tier": lambda t: t.tier,
    "priority": lambda t: t.priority,
    "channel": lambda t: t.channel,
}


def bucket_of(moment: datetime, bucket: str, zone: ZoneInfo) -> date:
    day = moment.astimezone(zone).date()
    if bucket == "week":
        return day - timedelta(days=day.isoweekday() - 1)
    if bucket == "month":
        return date(day.year, day.month, 1)
    return day


def next_bucket(start: date, bucket: str) -> date:
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def report(
    events: list[dict],
    start: datetime,
    end: datetime,
    group_by: str,
    bucket: str | None,
    tz: str,
    first_response: timedelta,
    resolution: timedelta,
) -> list[dict[str, Any]]:
    """The report's rows as docs/reports.md defines them (tickets created in [start, end))."""
    zone = ZoneInfo(tz)
    churned = churn_dates(events)
    groups: dict[tuple[str, date | None], list[Ticket]] = {}
    for t in fold(events).values():
        if not start <= t.created < end:
            continue
        key = GROUP_OF[group_by](t) or "(none)"
        b = bucket_of(t.created, bucket, zone) if bucket else None
        groups.setdefault((key, b), []).append(t)
    rows = []
    for (key, b), members in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or date.min)
    ):
        if b is None or bucket is None:
            period_end = end
        else:
            period_end = min(datetime.combine(next_bucket(b, bucket), time(), zone), end)
        row: dict[str, Any] = {group_by: key}
        if b is not None:
            row["bucket"] = b.isoformat()
        row.update(figures(members, churned, period_end, first_response, resolution))
        rows.append(row)
    if bucket:
        flag(rows, group_by, bucket)
    return rows


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


def flag(rows: list[dict[str, Any]], group_by: str, bucket: str) -> None:
    """docs/reports.md, abnormal movement: outside mean +/- 3 sample sd of the same group's
    previous 8 calendar buckets, at least 4 of which have the figure."""
    by = {(r[group_by], r["bucket"]): r for r in rows}
    for row in rows:
        row["abnormal"] = []
        previous = []
        b = date.fromisoformat(row["bucket"])
        for _ in range(8):
            b = _previous(b, bucket)
            if (row[group_by], b.isoformat()) in by:
                previous.append(by[(row[group_by], b.isoformat())])
        for figure in WATCHED:
            if row[figure] is None:
                continue
            history = [p[figure] for p in previous if p[figure] is not None]
            if len(history) >= 4:
                mean = sum(history) / len(history)
                sd = statistics.stdev(history)
                if abs(row[figure] - mean) > 3 * sd:
                    row["abnormal"].append(figure)


def _previous(start: date, bucket: str) -> date:
    if bucket == "day":
        return start - timedelta(days=1)
    if bucket == "week":
        return start - timedelta(days=7)
    return date(start.year - (start.month == 1), (start.month - 2) % 12 + 1, 1)
