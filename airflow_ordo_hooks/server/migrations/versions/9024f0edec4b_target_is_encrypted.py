"""Each delivery records whether its target is encrypted: ordo_hooks_delivery.target_is_encrypted.

Rows already stored are filled in from the stored text: every target holds a colon (``https://…``,
``conn:…``) and a Fernet token never does. The column stays nullable: an API server of the
previous version, still running while the database is migrated, writes rows without it.

Revision ID: 9024f0edec4b
Revises: 5d1e7a3c9b20
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "9024f0edec4b"
down_revision = "5d1e7a3c9b20"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ordo_hooks_delivery") as batch:
        batch.add_column(sa.Column("target_is_encrypted", sa.Boolean(), nullable=True))
    delivery = sa.table(
        "ordo_hooks_delivery", sa.column("target_encrypted", sa.Text()), sa.column("target_is_encrypted", sa.Boolean())
    )
    plain = delivery.c.target_encrypted.contains(":")
    op.execute(delivery.update().where(plain).values(target_is_encrypted=sa.false()))
    op.execute(delivery.update().where(sa.not_(plain)).values(target_is_encrypted=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("ordo_hooks_delivery") as batch:
        batch.drop_column("target_is_encrypted")
