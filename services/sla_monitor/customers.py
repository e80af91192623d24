"""customer.updated: the CRM's tier and churn, recorded and applied to open tickets.

A customer event is keyed by ``customer:<id>`` on the events topic, so one customer's events
are consumed in order by the one monitor owning that partition; its tickets live on other
partitions, owned by other monitors. So the monitor never writes another partition's ticket
state: for each open ticket of the customer whose tier differs it publishes a
``ticket.updated`` {customer_tier} to the events topic (keyed by the ticket, dated at the
customer event's ``occurred_at``) and waits for the acks before the batch commits. The
ticket's owner applies it as any ``ticket.updated``: the policy is re-selected. The derived
event id is a hash of the customer event id and the ticket id, so a batch redone after a
crash publishes the same ids and the engine drops them as duplicates.

The customer row (tier, status, churned_at) is written in the batch's transaction with the
offsets. An event older than the row's ``changed_at`` is late: it is recorded nowhere and
re-targets nothing (the newer state stands).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from slawatch.shared.events import CustomerStatus, CustomerUpdated

DERIVED_SOURCE = "customer.updated"


@dataclass(slots=True)
class CustomerRow:
    customer_id: str
    tier: str | None
    status: str
    churned_at: datetime | None
    changed_at: datetime


@dataclass(slots=True)
class OpenTicket:
    ticket_id: str
    customer_id: str
    customer_tier: str | None


def fold(
    stored: Mapping[str, CustomerRow], events: Iterable[CustomerUpdated]
) -> tuple[dict[str, CustomerRow], list[tuple[CustomerUpdated, str]]]:
    """The customers' rows after these events (oldest first), and the tier changes to apply:
    (event, new tier) for each event that is the newest seen and sets a tier."""
    rows = dict(stored)
    changes: list[tuple[CustomerUpdated, str]] = []
    for event in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        data = event.data
        row = rows.get(data.customer_id)
        if row is not None and event.occurred_at < row.changed_at:
            continue  # late: a newer state of this customer stands
        if row is None:
            row = CustomerRow(
                data.customer_id, None, CustomerStatus.active.value, None, event.occurred_at
            )
        given = data.model_fields_set
        tier = data.tier if "tier" in given else row.tier
        status = row.status
        churned_at = row.churned_at
        if data.status is not None:
            if data.status == CustomerStatus.churned and row.status != CustomerStatus.churned:
                churned_at = event.occurred_at
            elif data.status == CustomerStatus.active:
                churned_at = None
            status = data.status.value
        rows[data.customer_id] = CustomerRow(
            data.customer_id, tier, status, churned_at, event.occurred_at
        )
        if "tier" in given and data.tier is not None:
            changes.append((event, data.tier))
    return rows, changes


def derived_updates(
    changes: Iterable[tuple[CustomerUpdated, str]], open_tickets: Iterable[OpenTicket]
) -> list[tuple[bytes, bytes]]:
    """(key, value) ``ticket.updated`` records for the open tickets whose tier differs;
    where one customer changed tier twice in a batch, each change is sent (the engine
    applies them in occurred_at order)."""
    by_customer: dict[str, list[OpenTicket]] = {}
    for ticket in open_tickets:
        by_customer.setdefault(ticket.customer_id, []).append(ticket)
    received_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    records: list[tuple[bytes, bytes]] = []
    for event, tier in changes:
        for ticket in by_customer.get(event.data.customer_id, ()):
            if ticket.customer_tier == tier:
                continue
            digest = hashlib.blake2b(
                f"{event.event_id}\x00{ticket.ticket_id}".encode(), digest_size=12
            ).hexdigest()
            value = {
                "event_id": f"crm-{digest}",
                "type": "ticket.updated",
                "ticket_id": ticket.ticket_id,
                "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
                "data": {"customer_tier": tier},
                "received_at": received_at,
                "source": DERIVED_SOURCE,
            }
            records.append((ticket.ticket_id.encode(), json.dumps(value).encode()))
            ticket.customer_tier = tier  # a second change in the batch compares with this one
    return records
