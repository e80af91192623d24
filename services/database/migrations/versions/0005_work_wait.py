"""monitor: agent work time and requester wait time in ticket_facts

Four columns beside the facts JSON (which carries the same four keys), so that reports per
assignee or group can sum them without casting JSON. Null for a ticket until its state is
next written (the monitor computes them; the old facts do not have them).

Revision ID: 0005_work_wait
Revises: 0004_report_runs
Create Date: 2026-12-01 23:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_work_wait"
down_revision = "0004_report_runs"
branch_labels = None
depends_on = None

COLUMNS = (
    "agent_work_business_ms",
    "agent_work_calendar_ms",
    "requester_wait_business_ms",
    "requester_wait_calendar_ms",
)


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("ticket_facts", sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("ticket_facts", name)
