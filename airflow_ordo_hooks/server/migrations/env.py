"""Alembic's environment for the ledger's migrations: Airflow's engine, the ledger's tables, its own version table.

Run by Airflow's db-manager (``airflow db migrate``), never by hand: the connection is Airflow's
metadata database. Airflow checks that ``context.configure`` names ``version_table``.
"""

from __future__ import annotations

import contextlib

from airflow import settings
from alembic import context

from airflow_ordo_hooks.server.db_manager import OrdoHooksDBManager

target_metadata = OrdoHooksDBManager.metadata
version_table = OrdoHooksDBManager.version_table_name


def include_object(_object, name, type_, *args):
    """Only the ledger's tables: Airflow's share the database."""
    return type_ != "table" or name in target_metadata.tables


def run_migrations_offline() -> None:
    """Write the SQL (``airflow db migrate --show-sql-only``) instead of running it."""
    context.configure(
        url=settings.SQL_ALCHEMY_CONN,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_object=include_object,
        version_table=version_table,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on Airflow's engine (or the connection a caller put in the config)."""
    with contextlib.ExitStack() as stack:
        connection = context.config.attributes.get("connection")
        if connection is None:
            connection = stack.enter_context(settings.get_engine().connect())
        context.configure(
            connection=connection,
            transaction_per_migration=True,
            target_metadata=target_metadata,
            include_object=include_object,
            render_as_batch=True,  # SQLite alters a table by copying it
            version_table=version_table,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
