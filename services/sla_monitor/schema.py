"""The monitor's tables. One database transaction per consumed batch writes all three
(state, offsets, outbox), which is what makes a crash at any point lose nothing and
apply nothing twice: the stored offset and the stored state always agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from slawatch.shared.db import metadata

ticket_state = Table(
    "ticket_state",
    metadata,
    Column("ticket_id", String(128), primary_key=True),
    # The partition owns the ticket: on assignment a monitor loads only its partitions' rows.
    Column("partition", Integer, nullable=False, index=True),
    # The engine's compact, versioned serialisation; opaque to the database.
    Column("state", LargeBinary, nullable=False),
    # Earliest instant the engine may emit something for this ticket (timer index).
    Column("next_due", DateTime(timezone=True), nullable=True),
    # Earliest deadline among its running targets (at-risk listing), null when none runs.
    Column("deadline", DateTime(timezone=True), nullable=True, index=True),
    Column("open", Boolean, nullable=False, server_default="true"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

partition_offsets = Table(
    "partition_offsets",
    metadata,
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True),
    # The offset of the next record to apply (Kafka's committed-offset convention).
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

sla_outbox = Table(
    "sla_outbox",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("sla_event_id", String(512), nullable=False, index=True),
    Column("ticket_id", String(128), nullable=False),
    Column("partition", Integer, nullable=False),
    # The SLA record's JSON exactly as published (bytes, no jsonb round trip).
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_sla_outbox_partition_seq", "partition", "seq"),
)

sla_outbox_sent = Table(
    "sla_outbox_sent",
    metadata,
    # Per partition, the highest outbox seq the broker acked: rows at or below are sent.
    # The monitor publishes from memory after each commit; this is for crash recovery.
    Column("partition", Integer, primary_key=True),
    Column("sent_seq", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# (column, type, expression over facts): ticket_facts' generated report columns.
FACT_COLUMNS = (
    ("targets_met", Integer, "(facts->>'targets_met')::int"),
    ("targets_breached", Integer, "(facts->>'targets_breached')::int"),
    ("first_response_s", Float, "(facts->>'first_response_seconds')::float8"),
    ("resolution_s", Float, "(facts->>'resolution_seconds')::float8"),
    ("public_agent_replies", Integer, "(facts->>'public_agent_replies')::int"),
    ("csat", Integer, "(facts->>'csat')::int"),
    ("nps", Integer, "(facts->>'nps')::int"),
)

ticket_facts = Table(
    "ticket_facts",
    metadata,
    # Per-ticket facts for compliance reports, refreshed with the state in the same transaction.
    Column("ticket_id", String(128), primary_key=True),
    Column("policy", String(128), nullable=True),
    Column("customer_tier", String(256), nullable=True),
    Column("channel", String(32), nullable=True),
    Column("priority", String(16), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=True),
    Column("solved_at", DateTime(timezone=True), nullable=True),
    Column("facts", JSONB, nullable=False, server_default="{}"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Agent work time and requester wait time (Zendesk's definitions), business and calendar
    # ms: the facts' keys of the same names, as columns for per-assignee/group sums.
    Column("agent_work_business_ms", BigInteger, nullable=True),
    Column("agent_work_calendar_ms", BigInteger, nullable=True),
    Column("requester_wait_business_ms", BigInteger, nullable=True),
    Column("requester_wait_calendar_ms", BigInteger, nullable=True),
    # Report groups and the customer.updated lookup (migration 0006): columns, not JSONB.
    Column("customer_id", String(256), nullable=True, index=True),
    Column("team", String(256), nullable=True),  # the ticket's group
    Column("assignee", String(256), nullable=True),
    Column("handle_seconds", Float, nullable=False, server_default="0"),
    # The report's figures as typed columns the database derives from `facts` when a row is
    # written (reading them out of JSONB per report row cost 5x: bench/reports.py).
    *(Column(name, type_, Computed(expr, persisted=True)) for name, type_, expr in FACT_COLUMNS),
    Index("ix_ticket_facts_created_at", "created_at"),
)

customers = Table(
    "customers",
    metadata,
    # The CRM's view of a customer (customer.updated): the latest event by occurred_at wins.
    Column("customer_id", String(256), primary_key=True),
    Column("tier", String(256), nullable=True),
    Column("status", String(16), nullable=False, server_default="active"),
    # When the customer churned (the event's occurred_at), null while active.
    Column("churned_at", DateTime(timezone=True), nullable=True),
    Column("changed_at", DateTime(timezone=True), nullable=False),  # the latest event applied
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

retained_events = Table(
    "retained_events",
    metadata,
    # The ticket events as applied, for `slawatch replay --ticket`. Appended with COPY (the
    # monitor's largest write by far), so a redelivered event can appear twice: readers
    # take one row per event_id.
    Column("ticket_id", String(128), nullable=False, index=True),
    Column("event_id", String(128), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("payload", Text, nullable=False),
)
