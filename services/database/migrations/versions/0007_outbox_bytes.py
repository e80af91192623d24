"""monitor: SLA records stored as the published bytes; the outbox marked sent per partition

The outbox payload becomes the bytes the monitor publishes (no jsonb round trip), and
``sent_at`` per row gives way to ``sla_outbox_sent``: per partition, the highest ``seq``
acked by the broker. Rows at or below it are sent; the table is read only to recover
what a crashed or revoked owner left unsent (index on partition, seq).

Revision ID: 0007_outbox_bytes
Revises: 0006_reports
Create Date: 2026-12-01 23:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_outbox_bytes"
down_revision = "0006_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sla_outbox_sent",
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("sent_seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("partition"),
    )
    # Sent up to: below the first unsent row of each partition (all of it when none is).
    op.execute(
        "INSERT INTO sla_outbox_sent (partition, sent_seq) "
        "SELECT partition, coalesce(min(seq) FILTER (WHERE sent_at IS NULL) - 1, max(seq)) "
        "FROM sla_outbox GROUP BY partition"
    )
    op.drop_index("ix_sla_outbox_sent_at", table_name="sla_outbox")
    op.drop_column("sla_outbox", "sent_at")
    op.alter_column(
        "sla_outbox",
        "payload",
        type_=sa.LargeBinary(),
        postgresql_using="convert_to(payload::text, 'UTF8')",
    )
    op.create_index("ix_sla_outbox_partition_seq", "sla_outbox", ["partition", "seq"])


def downgrade() -> None:
    op.drop_index("ix_sla_outbox_partition_seq", table_name="sla_outbox")
    op.alter_column(
        "sla_outbox",
        "payload",
        type_=sa.dialects.postgresql.JSONB(),
        postgresql_using="convert_from(payload, 'UTF8')::jsonb",
    )
    op.add_column("sla_outbox", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE sla_outbox o SET sent_at = s.updated_at FROM sla_outbox_sent s "
        "WHERE o.partition = s.partition AND o.seq <= s.sent_seq"
    )
    op.create_index("ix_sla_outbox_sent_at", "sla_outbox", ["sent_at"], unique=False)
    op.drop_table("sla_outbox_sent")
