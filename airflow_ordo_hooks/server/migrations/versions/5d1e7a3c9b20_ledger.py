"""The delivery ledger's first tables: ordo_hooks_delivery and ordo_hooks_delivery_attempt.

Revision ID: 5d1e7a3c9b20
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from airflow.utils.sqlalchemy import UtcDateTime
from alembic import op

revision = "5d1e7a3c9b20"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ordo_hooks_delivery",
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=True),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("target_masked", sa.String(300), nullable=False),
        sa.Column("target_encrypted", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", name="ordo_hooks_delivery_pkey"),
    )
    op.create_index("idx_ordo_hooks_delivery_dag_run", "ordo_hooks_delivery", ["dag_id", "run_id"])
    op.create_index("idx_ordo_hooks_delivery_due", "ordo_hooks_delivery", ["state", "next_attempt_at"])
    op.create_table(
        "ordo_hooks_delivery_attempt",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.Column("by", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="ordo_hooks_delivery_attempt_pkey"),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["ordo_hooks_delivery.webhook_id"],
            name="ordo_hooks_delivery_attempt_webhook_id_fkey",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "idx_ordo_hooks_delivery_attempt_webhook_id", "ordo_hooks_delivery_attempt", ["webhook_id"]
    )


def downgrade() -> None:
    op.drop_table("ordo_hooks_delivery_attempt")
    op.drop_table("ordo_hooks_delivery")
