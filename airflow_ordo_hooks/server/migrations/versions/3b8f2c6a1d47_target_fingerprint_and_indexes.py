"""Each delivery names its target by fingerprint, and the ledger gets the indexes its reads and pruning need.

``ordo_hooks_delivery.target_fingerprint`` groups deliveries by their real target (two targets can
be masked alike); rows already stored get theirs from their decrypted target, a batch at a time,
and keep none where it cannot be decrypted (a changed Fernet key). Four indexes: ``created_at``
(a page, newest first), ``(state, updated_at)`` (settled deliveries pruned by age, deliveries given
up since a time), ``(target_fingerprint, created_at)`` (a target's recent deliveries) and the
attempts' ``at`` (the attempts of the last hours, for targets' health). The
column stays nullable: an API server of the previous version, still running while the database is
migrated, writes rows without it.

Revision ID: 3b8f2c6a1d47
Revises: 9024f0edec4b
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3b8f2c6a1d47"
down_revision = "9024f0edec4b"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("ordo_hooks_delivery") as batch:
        batch.add_column(sa.Column("target_fingerprint", sa.String(16), nullable=True))
    op.create_index("idx_ordo_hooks_delivery_created_at", "ordo_hooks_delivery", ["created_at"])
    op.create_index("idx_ordo_hooks_delivery_settled", "ordo_hooks_delivery", ["state", "updated_at"])
    op.create_index("idx_ordo_hooks_delivery_target", "ordo_hooks_delivery", ["target_fingerprint", "created_at"])
    op.create_index("idx_ordo_hooks_delivery_attempt_at", "ordo_hooks_delivery_attempt", ["at"])
    _fill_fingerprints()


def _fill_fingerprints() -> None:
    from airflow_ordo_hooks._targets import fingerprint
    from airflow_ordo_hooks.server import crypto

    delivery = sa.table(
        "ordo_hooks_delivery", sa.column("webhook_id", sa.String(64)), sa.column("target_encrypted", sa.Text()),
        sa.column("target_is_encrypted", sa.Boolean()), sa.column("target_fingerprint", sa.String(16)),
    )
    connection, after = op.get_bind(), ""
    while True:
        batch = connection.execute(
            sa.select(delivery.c.webhook_id, delivery.c.target_encrypted, delivery.c.target_is_encrypted)
            .where(delivery.c.webhook_id > after).order_by(delivery.c.webhook_id).limit(_BATCH)
        ).all()
        if not batch:
            return
        for webhook_id, stored, is_encrypted in batch:
            try:
                target = crypto.decrypt(stored, is_encrypted)
            except Exception:  # noqa: BLE001 - undecryptable: no fingerprint, the row kept as it is
                continue
            connection.execute(
                delivery.update().where(delivery.c.webhook_id == webhook_id).values(target_fingerprint=fingerprint(target))
            )
        after = batch[-1][0]


def downgrade() -> None:
    op.drop_index("idx_ordo_hooks_delivery_attempt_at", "ordo_hooks_delivery_attempt")
    op.drop_index("idx_ordo_hooks_delivery_target", "ordo_hooks_delivery")
    op.drop_index("idx_ordo_hooks_delivery_settled", "ordo_hooks_delivery")
    op.drop_index("idx_ordo_hooks_delivery_created_at", "ordo_hooks_delivery")
    with op.batch_alter_table("ordo_hooks_delivery") as batch:
        batch.drop_column("target_fingerprint")
