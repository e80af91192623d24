"""The notifier's tables: the delivery log and the silences.

The delivery log is what makes "never twice" hold across restarts and replays: a row per
notice, keyed by (notification id, receiver, integration), inserted *before* the SLA-topic
offset is committed. A re-delivered SLA event finds its rows and sends nothing again; a
restarted notifier finds its rows still ``queued`` and sends them.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB

from slawatch.shared.db import metadata

notification_log = Table(
    "notification_log",
    metadata,
    # `<sla event id>` or `<sla event id>#repeat-N` for the N-th reminder of a breach.
    Column("notification_id", String(600), primary_key=True),
    Column("receiver", String(128), primary_key=True),
    Column("integration", String(128), primary_key=True),
    Column("sla_event_id", String(512), nullable=False),
    Column("ticket_id", String(128), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("repeat", Integer, nullable=False, server_default="0"),
    # The SLA-topic partition that brought it; its owner restores it after a restart.
    Column("shard", Integer, nullable=True),
    # queued | sent | failed | dlq | silenced | inhibited | cleared (slawatch.services.notifier.model.Status)
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("via", String(128), nullable=True),  # the receiver whose quiet hours sent it here
    Column("message_id", String(64), nullable=True),  # shared by notices sent in one message
    Column("event", JSONB, nullable=False),  # the SLA event, as consumed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("first_attempt_at", DateTime(timezone=True), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # What a starting notifier reads: the unfinished notices of the partitions it owns.
    Index("ix_notification_log_status_shard", "status", "shard"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "matchers", JSONB, nullable=False
    ),  # slawatch.services.notifier.matchers.Matchers.describe()
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False, index=True),
    Column("created_by", String(128), nullable=False, server_default=""),
    Column("comment", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

acknowledgements = Table(
    "acknowledgements",
    metadata,
    # One supervisor saying "I have this breach": it stops the breach's reminders
    # (repeat_interval). It never changes the SLA outcome, which is the monitor's.
    Column("id", String(64), primary_key=True),
    # The SLA clock whose breach is acknowledged (slawatch.services.notifier.model.TargetKey).
    Column("ticket_id", String(128), nullable=False, index=True),
    Column("target", String(32), nullable=False),
    Column("cycle", Integer, nullable=False, server_default="0"),
    Column("acknowledged_by", String(128), nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("acknowledged_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Set when withdrawn (kept for the record); reminders resume from then on.
    Column("withdrawn_at", DateTime(timezone=True), nullable=True),
    Column("withdrawn_by", String(128), nullable=True),
    # At most one standing acknowledgement per SLA clock.
    Index(
        "ux_acknowledgements_standing",
        "ticket_id",
        "target",
        "cycle",
        unique=True,
        postgresql_where=text("withdrawn_at IS NULL"),
    ),
)

report_runs = Table(
    "report_runs",
    metadata,
    # One scheduled report for one receiver and one period (services/notifier/reports.py):
    # the row is the lease that makes several notifier processes send it once. A process
    # claims it by inserting it or by taking it over once `lease_until` has passed (its
    # owner died or gave up for now); `done_at` is set when every integration is final.
    Column("report", String(64), primary_key=True),
    Column("receiver", String(128), primary_key=True),
    Column("period_start", DateTime(timezone=True), primary_key=True),
    Column("period_end", DateTime(timezone=True), nullable=False),
    Column("claimed_by", String(128), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=False),
    Column("claims", Integer, nullable=False, server_default="1"),
    Column("done_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
