"""Builders for engine tests: a small policy file and terse ticket events."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from slawatch.shared.engine import PolicySet, SlaRecord, State, apply, load_policies
from slawatch.shared.events import TicketEvent, parse_event
from slawatch.shared.sla_events import dump_sla_event, parse_sla_event

POLICIES = """
version: 1
calendars:
  always: {timezone: UTC, always_open: true}
  office:
    timezone: Asia/Shanghai
    hours:
      mon: ["09:00-12:00", "13:00-18:00"]
      tue: ["09:00-12:00", "13:00-18:00"]
      wed: ["09:00-12:00", "13:00-18:00"]
      thu: ["09:00-12:00", "13:00-18:00"]
      fri: ["09:00-12:00", "13:00-18:00"]
    holidays: {country: CN}
pause_statuses: [pending, on_hold]
policies:
  - id: vip
    match: {customer_tier: [gold], priority: [urgent, high]}
    calendar: always
    targets: {first_response: 15m, next_response: 30m, resolution: 4h}
    warn_at: [0.5, 0.8]
    escalations: [0m, 30m, 2h]
  - id: office
    match: {customer_tier: [silver]}
    calendar: office
    targets: {first_response: 4h, periodic_update: 24h, resolution: 72h}
  - id: standard
    match: {}
    calendar: always
    targets: {first_response: 1h, periodic_update: 2h, resolution: 8h}
    warn_at: [0.5]
"""


def policies() -> PolicySet:
    return load_policies("test-policies.yaml", text=POLICIES)


_counter = iter(range(10**9))


def ev(kind: str, at: str, ticket: str = "T1", event_id: str | None = None, **data: Any) -> TicketEvent:
    """ev("created", "2026-03-02T09:00", priority="urgent") - times are UTC unless they carry an offset."""
    types = {"created": "ticket.created", "updated": "ticket.updated", "status": "ticket.status_changed",
             "agent": "message.created", "customer": "message.created", "note": "message.created",
             "assigned": "ticket.assigned", "survey": "survey.responded"}
    if kind == "agent":
        data = {"author_role": "agent", **data}
    elif kind == "customer":
        data = {"author_role": "customer", **data}
    elif kind == "note":
        data = {"author_role": "agent", "public": False, **data}
    elif kind == "status" and "status" not in data:
        raise ValueError("status needs status=")
    moment = at if ("+" in at[10:] or at.endswith("Z")) else at + "+00:00"
    raw = {"event_id": event_id or f"{ticket}-{kind}-{next(_counter)}", "type": types[kind], "ticket_id": ticket,
           "occurred_at": moment, "channel": data.pop("channel", "email")}
    if data or kind == "created":
        raw["data"] = data
    return parse_event(raw)


def run(events: list[TicketEvent], ps: PolicySet, state: State | None = None) -> tuple[State, list[SlaRecord]]:
    out: list[SlaRecord] = []
    for event in events:
        state, produced = apply(state, event, ps)
        out.extend(produced)
    assert state is not None
    for record in out:
        assert_valid(record)
    return state, out


def assert_valid(record: SlaRecord) -> None:
    """A record is a valid SlaEvent, and its fast JSON is the model's, byte for byte."""
    model = record.to_event()
    assert record.to_json() == dump_sla_event(model)
    assert parse_sla_event(record.to_json()) == model == record


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text if "+" in text[10:] else text + "+00:00").astimezone(UTC)


def ids(events: list[SlaRecord]) -> list[str]:
    return [e.id for e in events]


STATUSES = ["open", "pending", "on_hold", "solved", "open", "closed"]


def random_ticket(rng: random.Random, ticket: str = "T1", count: int | None = None,
                  start: datetime = datetime(2026, 3, 2, 8, 0, tzinfo=UTC), statuses: bool = True) -> list[TicketEvent]:
    """A random but valid event history: created first in time, then a mix of everything."""
    count = count or rng.randint(3, 16)
    t = start
    raw = [dict(event_id=f"{ticket}-0", type="ticket.created", ticket_id=ticket, occurred_at=t.isoformat(),
                channel=rng.choice(["email", "chat"]),
                data=dict(priority=rng.choice(["urgent", "high", "normal", "low"]),
                          customer_tier=rng.choice(["gold", "silver", None]),
                          tags=rng.sample(["vip", "refund", "bug"], rng.randint(0, 2))))]
    for i in range(1, count):
        t += timedelta(minutes=rng.choice([1, 5, 10, 15, 30, 60, 120, 600]))
        roll = rng.random()
        d: dict[str, Any]  # the event, with the data of its type
        if roll < 0.5 or not statuses and roll < 0.8:
            d = dict(type="message.created", data=dict(author_role=rng.choice(["agent", "customer", "customer", "system"]),
                                                         public=rng.random() < 0.9))
        elif roll < 0.8:
            d = dict(type="ticket.status_changed", data=dict(status=rng.choice(STATUSES)))
        elif roll < 0.92:
            d = dict(type="ticket.updated", data=dict(priority=rng.choice(["urgent", "high", "normal", "low"])))
            if rng.random() < 0.4:  # re-selects across calendars too (vip, office, standard)
                d["data"]["customer_tier"] = rng.choice(["gold", "silver", None])
        elif roll < 0.96:
            d = dict(type="ticket.assigned", data=dict(group=rng.choice(["l1", "l2"])))
        else:
            d = dict(type="survey.responded", data=dict(csat=rng.randint(1, 5)))
        raw.append(dict(event_id=f"{ticket}-{i}", ticket_id=ticket, occurred_at=t.isoformat(), channel="email", **d))
    return [parse_event(e) for e in raw]


_REVISION = re.compile(r"\.r\d+$")


def base_id(sla_id: str) -> str:
    """An SLA event id without its revision suffix (``.../breached.r1`` -> ``.../breached``)."""
    return _REVISION.sub("", sla_id)


class Downstream:
    """What a consumer of the SLA topic holds after reading SLA events in order.

    Standing: the breaches and escalation levels sent and not retracted (a breach's
    retraction takes its escalations with it). Notices: warnings and met, never withdrawn.
    Reading checks the stream makes sense to such a consumer: a breach is never sent while
    another stands for its cycle, an escalation only beside its breach and with its
    deadline and policy, and a retraction names exactly the standing event it withdraws.
    ``strict_met``: a late met (``breached: true``) must come beside the standing breach of
    its cycle, with that breach's deadline and policy - true when events arrive in event-time
    order (a met decided before a late event arrived is never withdrawn)."""

    def __init__(self, strict_met: bool = False) -> None:
        self.strict_met = strict_met
        self.breaches: dict[tuple[str, int], dict[str, Any]] = {}
        self.levels: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}
        self.notices: list[dict[str, Any]] = []
        self.retractions = 0

    def read(self, events: list[Any]) -> Downstream:
        for event in events:
            self.read_one(event if isinstance(event, dict) else json.loads(event.to_json()))
        return self

    def read_one(self, e: dict[str, Any]) -> None:
        key = (e["target"], e["cycle"])
        kind = e["kind"]
        if kind == "sla.breached":
            assert key not in self.breaches, f"{e['id']} sent while {self.breaches[key]['id']} stands"
            assert e["deadline"] == e["occurred_at"], e
            self.breaches[key] = e
            self.levels[key] = {}
        elif kind == "sla.escalated":
            breach = self.breaches.get(key)
            assert breach is not None, f"{e['id']} sent without a standing breach"
            assert e["level"] not in self.levels[key], f"{e['id']} sent while that level stands"
            assert (e["deadline"], e["policy"]) == (breach["deadline"], breach["policy"]), (e, breach)
            self.levels[key][e["level"]] = e
        elif kind == "sla.retracted":
            self.retractions += 1
            if e.get("level") is None:
                assert key in self.breaches and self.breaches[key]["id"] == e["retracts"], e
                del self.breaches[key], self.levels[key]
            else:
                standing = self.levels.get(key, {}).get(e["level"])
                assert standing is not None and standing["id"] == e["retracts"], e
                del self.levels[key][e["level"]]
        else:
            if self.strict_met and kind == "sla.met" and e["breached"]:
                breach = self.breaches.get(key)
                assert breach is not None, f"{e['id']} late, but no breach of its cycle stands"
                assert (e["deadline"], e["policy"]) == (breach["deadline"], breach["policy"]), (e, breach)
            self.notices.append(e)

    def standing(self) -> list[tuple[Any, ...]]:
        """The standing breaches and escalations: kind, target, cycle, level, deadline,
        occurred_at, policy, and the id without its revision suffix."""
        held = [*self.breaches.values(), *(e for levels in self.levels.values() for e in levels.values())]
        return sorted(
            (e["kind"], e["target"], e["cycle"], e.get("level") or 0, e["deadline"], e["occurred_at"], e["policy"],
             base_id(e["id"]))
            for e in held
        )

    def notice_ids(self) -> set[str]:
        return {e["id"] for e in self.notices}
