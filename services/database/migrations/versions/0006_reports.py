"""monitor: report groups and handle time on ticket_facts; customers (#14)

Revision ID: 0006_reports
Revises: 0005_work_wait
Create Date: 2026-12-01 23:30:00
"""

import sqlalchemy as sa
from alembic import op

# The report's figures as generated columns (a copy, not an import: a revision is frozen).
FACT_COLUMNS = (
    ("targets_met", sa.Integer, "(facts->>'targets_met')::int"),
    ("targets_breached", sa.Integer, "(facts->>'targets_breached')::int"),
    ("first_response_s", sa.Float, "(facts->>'first_response_seconds')::float8"),
    ("resolution_s", sa.Float, "(facts->>'resolution_seconds')::float8"),
    ("public_agent_replies", sa.Integer, "(facts->>'public_agent_replies')::int"),
    ("csat", sa.Integer, "(facts->>'csat')::int"),
    ("nps", sa.Integer, "(facts->>'nps')::int"),
)

revision = "0006_reports"
down_revision = "0005_work_wait"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ticket_facts", sa.Column("customer_id", sa.String(length=256), nullable=True))
    op.add_column("ticket_facts", sa.Column("team", sa.String(length=256), nullable=True))
    op.add_column("ticket_facts", sa.Column("assignee", sa.String(length=256), nullable=True))
    op.add_column(
        "ticket_facts",
        sa.Column("handle_seconds", sa.Float(), server_default="0", nullable=False),
    )
    # Rows written before this revision: their groups and customer from the facts JSON.
    op.execute(
        "UPDATE ticket_facts SET customer_id = facts->>'customer_id', team = facts->>'group', "
        "assignee = facts->>'assignee', "
        "handle_seconds = coalesce((facts->>'handle_seconds')::float8, 0)"
    )
    for name, type_, expr in FACT_COLUMNS:  # generated: written by the database, from facts
        op.add_column("ticket_facts", sa.Column(name, type_(), sa.Computed(expr, persisted=True)))
    op.create_index("ix_ticket_facts_customer_id", "ticket_facts", ["customer_id"])
    op.create_index("ix_ticket_facts_created_at", "ticket_facts", ["created_at"])
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=256), nullable=False),
        sa.Column("tier", sa.String(length=256), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("churned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("customer_id"),
    )


def downgrade() -> None:
    op.drop_table("customers")
    op.drop_index("ix_ticket_facts_created_at", table_name="ticket_facts")
    op.drop_index("ix_ticket_facts_customer_id", table_name="ticket_facts")
    for name, _, _ in FACT_COLUMNS:
        op.drop_column("ticket_facts", name)
    for column in ("handle_seconds", "assignee", "team", "customer_id"):
        op.drop_column("ticket_facts", column)
