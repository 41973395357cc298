"""The service's identity and simulated clock (service_settings), and vaults.due_at for the sweep.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_settings",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.String(80), nullable=False),
        sa.Column("verifying_contract", sa.LargeBinary(20), nullable=False),
        sa.Column("clock_offset", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_service_settings"),
    )
    with op.batch_alter_table("vaults") as batch:
        batch.add_column(sa.Column("due_at", sa.BigInteger(), nullable=True))
        batch.create_index("ix_vaults_due_at", ["due_at"])


def downgrade() -> None:
    with op.batch_alter_table("vaults") as batch:
        batch.drop_index("ix_vaults_due_at")
        batch.drop_column("due_at")
    op.drop_table("service_settings")
