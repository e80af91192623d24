"""Read routes for the supervisor console: the live board, a ticket's SLA timeline and the
compliance figures over time. Kept apart from app.py so the console's needs grow here.

Every figure comes from the engine (``describe``, ``timeline``: the same calls as the
ticket API and `slawatch replay`) and from reports.py; nothing here re-derives an SLA rule.
The board's SQL only narrows and orders candidates by columns the worker already writes
(``ticket_state.deadline``, the earliest running deadline, and ``ticket_facts``); each
target on a page is then classified by the engine.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import Field

from slawatch.services.sla_monitor import engine_port, reports
from slawatch.shared.auth import require_role
from slawatch.shared.bounds import Identifier, Line, Offset
from slawatch.shared.events import parse_event
from slawatch.shared.http_errors import responses

router = APIRouter(
    dependencies=[Depends(require_role("viewer"))], responses=responses(401, 403, 422)
)

BoardState = Literal["all", "at_risk", "breached", "paused"]
FILTERS = ("policy", "customer_tier", "priority", "channel", "group", "assignee")
# Filter -> SQL expression over ticket_facts f (a fixed list: never interpolate input).
FILTER_SQL = {
    "policy": "f.policy",
    "customer_tier": "f.customer_tier",
    "priority": "f.priority",
    "channel": "f.channel",
    "group": "f.facts->>'group'",
    "assignee": "f.facts->>'assignee'",
}
# p: $1 now, $2 now + window, $3 the pause statuses, $4 the pause tags; $5.. the filters.
PARAMS = (
    "WITH p AS (SELECT $1::timestamptz AS now, $2::timestamptz AS horizon, $3::text[] AS pause, "
    "$4::text[] AS pause_tags) "
)
STATE_SQL = {
    "breached": "s.deadline <= p.now",
    "at_risk": "s.deadline > p.now AND s.deadline <= p.horizon",
    # in a status or with a tag some target pauses on (a superset: describe tells which
    # targets are paused; first response may still run)
    "paused": "(f.facts->>'status' = ANY(p.pause) OR coalesce(f.facts->'tags', '[]'::jsonb) ?| p.pause_tags)",
}
STATE_SQL["all"] = "(s.deadline <= p.horizon OR ({}))".format(STATE_SQL["paused"])


def pause_conditions(policies: engine_port.Policies) -> tuple[frozenset[str], frozenset[str]]:
    """Every status and tag some target of some policy or OLA pauses on (docs/policies.md,
    "Pausing"): what may make a ticket's clock stop."""
    specs = [spec for p in policies.policies for spec in p.targets.values()]
    specs += [spec for ola in policies.olas.values() for spec in ola.targets.values()]
    statuses = frozenset(st for spec in specs for st in spec.pause_statuses)
    tags = frozenset(tag for spec in specs for tag in spec.pause_tags)
    return statuses, tags


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"field": field, "message": message}])


# A filter value: single-line text as everywhere (shared/bounds.py); empty means no filter.
Filter = Annotated[Line, Field(max_length=256)]


def _text(value: str | None, field: str) -> str | None:
    return value or None


def _window(text: str) -> timedelta:
    try:
        window = engine_port.parse_duration(text)
    except ValueError as exc:
        raise _unprocessable("within", str(exc)) from None
    if not timedelta(0) < window <= timedelta(days=90):
        raise _unprocessable("within", "between 1ms and 90d")
    return window


def classify(target: dict[str, Any], now: datetime, window: timedelta) -> str | None:
    """Where a described target shows on the board, if at all."""
    if target["status"] == "breached":
        return "breached"
    if target["status"] == "paused":
        return "paused"
    deadline = target.get("deadline")
    if target["status"] == "running" and deadline is not None:
        if datetime.fromisoformat(deadline) <= now + window:
            return "at_risk"
    return None


@router.get(
    "/v1/board",
    summary="Open targets at risk (due within `within`), breached or paused, soonest first; "
    "counts of tickets per state (by their soonest running target; paused: in a status "
    "or with a tag some target pauses on); filters by ticket attributes.",
)
async def board(
    request: Request,
    state: BoardState = "all",
    within: Annotated[
        str, Field(max_length=64), Query(description="At-risk window, e.g. 30m, 2h.")
    ] = "30m",
    policy: Filter | None = None,
    customer_tier: Filter | None = None,
    priority: Filter | None = None,
    channel: Filter | None = None,
    group: Filter | None = None,
    assignee: Filter | None = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Tickets per page.")] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    monitor = request.app.state.monitor
    assert monitor.store
    window = _window(within)
    given = {
        "policy": policy,
        "customer_tier": customer_tier,
        "priority": priority,
        "channel": channel,
        "group": group,
        "assignee": assignee,
    }
    filters = {name: _text(value, name) for name, value in given.items()}
    now = datetime.now(UTC)
    statuses, tags = pause_conditions(monitor.policies)
    args: list[Any] = [now, now + window, sorted(statuses), sorted(tags)]
    where = ["s.open"]
    for name in FILTERS:
        if filters[name] is not None:
            args.append(filters[name])
            where.append(f"{FILTER_SQL[name]} = ${len(args)}")
    base = (
        "FROM p CROSS JOIN ticket_state s LEFT JOIN ticket_facts f ON f.ticket_id = s.ticket_id "
        "WHERE " + " AND ".join(where)
    )
    counts_sql = (
        PARAMS
        + "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {STATE_SQL[k]}) AS {k}" for k in STATE_SQL)
        + " "
        + base
    )
    page_sql = PARAMS + (
        f"SELECT s.ticket_id, s.state {base} AND {STATE_SQL[state]} "
        f"ORDER BY s.deadline NULLS LAST, s.ticket_id "
        f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
    )
    async with monitor.store.pool.acquire() as conn:
        counted = await conn.fetchrow(counts_sql, *args)
        rows = await conn.fetch(page_sql, *args, limit, offset)
    items: list[dict[str, Any]] = []
    now_ms = int(now.timestamp() * 1000)
    for row in rows:
        described = engine_port.describe(engine_port.load(row["state"], monitor.policies), now)
        for target in described["targets"]:
            where_on_board = classify(target, now, window)
            if where_on_board is None or (state != "all" and where_on_board != state):
                continue
            calendar = monitor.policies.calendars.get(target.get("calendar"))
            items.append(
                {
                    "ticket_id": described["ticket_id"],
                    "board_state": where_on_board,
                    # Whether its business clock runs right now (so a countdown may tick):
                    # the calendar is open and the ticket is not in a pause status.
                    "clock_running": where_on_board != "paused"
                    and described["status"] not in statuses
                    and tags.isdisjoint(described["attributes"]["tags"])
                    and calendar is not None
                    and calendar.is_open(now_ms),
                    "ticket_status": described["status"],
                    **{k: v for k, v in described["attributes"].items() if k != "tags"},
                    **target,
                }
            )
    rank = {"breached": 0, "at_risk": 0, "paused": 1}
    items.sort(key=lambda i: (rank[i["board_state"]], i.get("deadline") or "", i["ticket_id"]))
    return {
        "as_of": now.isoformat(),
        "within_seconds": window.total_seconds(),
        "state": state,
        "filters": {k: v for k, v in filters.items() if v is not None},
        "counts": {k: counted[k] for k in ("at_risk", "breached", "paused")},
        "total": counted[state],
        "items": items,
        "offset": offset,
        "limit": limit,
        "next_offset": offset + limit if len(rows) == limit else None,
    }


@router.get(
    "/v1/tickets/{ticket_id}/timeline",
    summary="What the ticket's SLA clocks did, in event-time order (as `slawatch replay`).",
    responses=responses(404),
)
async def ticket_timeline(
    ticket_id: Annotated[Identifier, Path(description="The ticket's id.")], request: Request
) -> dict[str, Any]:
    monitor = request.app.state.monitor
    assert monitor.store
    payloads = await monitor.store.retained_events(ticket_id)
    if not payloads:
        raise HTTPException(404, detail=f"no retained events for ticket {ticket_id!r}")
    now = datetime.now(UTC)
    lines = engine_port.timeline([parse_event(p) for p in payloads], monitor.policies, now)
    return {"ticket_id": ticket_id, "as_of": now.isoformat(), "lines": lines}


@router.get(
    "/v1/reports/compliance/series",
    summary="The compliance figures of all tickets per day, week or month of ticket creation,"
    " in a time zone (for one row per group and bucket: /v1/reports/compliance?bucket=).",
)
async def compliance_series(
    request: Request,
    from_: Annotated[Annotated[str, Field(max_length=64)] | None, Query(alias="from")] = None,
    to: Annotated[str, Field(max_length=64)] | None = None,
    bucket: Literal["day", "week", "month"] = "day",
    tz: Annotated[
        Annotated[str, Field(max_length=64)], Query(description="IANA time zone of the buckets.")
    ] = "UTC",
) -> dict[str, Any]:
    from slawatch.services.sla_monitor.app import parse_instant, report_query

    monitor = request.app.state.monitor
    assert monitor.store
    end = parse_instant(to, "to") or datetime.now(UTC) + timedelta(days=1)
    start = from_ or (end - timedelta(days=30)).isoformat()  # the last 30 days by default
    query = report_query(start, end.isoformat(), None, bucket, tz)
    try:
        rows = await reports.compliance(
            monitor.store, query, monitor.settings.monitor_report_parallelism
        )
    except asyncpg.InvalidParameterValueError:
        raise _unprocessable("tz", "a time zone the database does not know") from None
    for row in rows:  # one series: the bucket is the row's name
        del row["group"]
        row[bucket] = row["bucket"]
    return {
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "bucket": bucket,
        "tz": tz,
        "series": rows,
    }
