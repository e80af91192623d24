"""notifier: scheduled report runs (the lease that sends each report once)

Revision ID: 0004_report_runs
Revises: 0003
Create Date: 2026-12-01 23:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_report_runs"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_runs",
        sa.Column("report", sa.String(length=64), nullable=False),
        sa.Column("receiver", sa.String(length=128), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claims", sa.Integer(), server_default="1", nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("report", "receiver", "period_start"),
    )


def downgrade() -> None:
    op.drop_table("report_runs")
