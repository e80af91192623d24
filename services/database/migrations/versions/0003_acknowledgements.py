"""notifier: acknowledgements of breaches

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 20:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acknowledgements",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("cycle", sa.Integer(), server_default="0", nullable=False),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "acknowledged_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_acknowledgements_ticket_id"), "acknowledgements", ["ticket_id"], unique=False
    )
    op.create_index(
        "ux_acknowledgements_standing",
        "acknowledgements",
        ["ticket_id", "target", "cycle"],
        unique=True,
        postgresql_where=sa.text("withdrawn_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ux_acknowledgements_standing",
        table_name="acknowledgements",
        postgresql_where=sa.text("withdrawn_at IS NULL"),
    )
    op.drop_index(op.f("ix_acknowledgements_ticket_id"), table_name="acknowledgements")
    op.drop_table("acknowledgements")
