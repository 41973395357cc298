"""The first recovery schema: vaults, the audit chain, escrow, nonces, webhooks, outbox, service keys.

Revision ID: 0001
Revises:
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vaults",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vaults"),
    )
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("vault_id", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(256), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev", sa.LargeBinary(32), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_entries"),
        sa.UniqueConstraint("hash", name="uq_audit_entries_hash"),
    )
    op.create_index("ix_audit_entries_vault_id", "audit_entries", ["vault_id"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.create_table(
        "escrow",
        sa.Column("id", _BIGINT_ID, autoincrement=True, nullable=False),
        sa.Column("vault_id", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("guardian_id", sa.String(128), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["vault_id"], ["vaults.id"], name="fk_escrow_vault_id_vaults"),
        sa.PrimaryKeyConstraint("id", name="pk_escrow"),
        sa.UniqueConstraint(
            "vault_id", "request_id", "guardian_id", name="uq_escrow_vault_id_request_id_guardian_id"
        ),
    )
    op.create_index("ix_escrow_vault_id", "escrow", ["vault_id"])
    op.create_table(
        "used_nonces",
        sa.Column("signer", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("vault_id", sa.String(128), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("signer", "nonce", name="pk_used_nonces"),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("vault_id", sa.String(128), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )
    op.create_index("ix_webhooks_vault_id", "webhooks", ["vault_id"])
    op.create_table(
        "outbox",
        sa.Column("id", _BIGINT_ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("webhook_id", sa.String(128), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhooks.id"], name="fk_outbox_webhook_id_webhooks", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("delivery_id", name="uq_outbox_delivery_id"),
    )
    op.create_index("ix_outbox_status_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_webhook_id", "outbox", ["webhook_id"])
    op.create_table(
        "service_keys",
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("public_key", name="pk_service_keys"),
    )


def downgrade() -> None:
    for index, table in (
        ("ix_outbox_webhook_id", "outbox"),
        ("ix_outbox_status_due", "outbox"),
        ("ix_webhooks_vault_id", "webhooks"),
        ("ix_escrow_vault_id", "escrow"),
        ("ix_audit_entries_vault_id", "audit_entries"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "service_keys",
        "outbox",
        "webhooks",
        "used_nonces",
        "escrow",
        "audit_head",
        "audit_entries",
        "vaults",
    ):
        op.drop_table(table)
