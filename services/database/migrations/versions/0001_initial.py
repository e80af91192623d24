"""initial monitor schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 02:14:51.853918
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partition_offsets",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )
    op.create_table(
        "retained_events",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_index(
        op.f("ix_retained_events_ticket_id"), "retained_events", ["ticket_id"], unique=False
    )
    op.create_table(
        "sla_outbox",
        sa.Column("seq", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("sla_event_id", sa.String(length=512), nullable=False),
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(op.f("ix_sla_outbox_sent_at"), "sla_outbox", ["sent_at"], unique=False)
    op.create_index(
        op.f("ix_sla_outbox_sla_event_id"), "sla_outbox", ["sla_event_id"], unique=False
    )
    op.create_table(
        "ticket_facts",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("policy", sa.String(length=128), nullable=True),
        sa.Column("customer_tier", sa.String(length=256), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("solved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "facts", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("ticket_id"),
    )
    op.create_table(
        "ticket_state",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("next_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("open", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("ticket_id"),
    )
    op.create_index(op.f("ix_ticket_state_partition"), "ticket_state", ["partition"], unique=False)
    op.create_index(op.f("ix_ticket_state_deadline"), "ticket_state", ["deadline"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_ticket_state_deadline"), table_name="ticket_state")
    op.drop_index(op.f("ix_ticket_state_partition"), table_name="ticket_state")
    op.drop_table("ticket_state")
    op.drop_table("ticket_facts")
    op.drop_index(op.f("ix_sla_outbox_sla_event_id"), table_name="sla_outbox")
    op.drop_index(op.f("ix_sla_outbox_sent_at"), table_name="sla_outbox")
    op.drop_table("sla_outbox")
    op.drop_index(op.f("ix_retained_events_ticket_id"), table_name="retained_events")
    op.drop_table("retained_events")
    op.drop_table("partition_offsets")
