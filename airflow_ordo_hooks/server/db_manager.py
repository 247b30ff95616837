"""The ledger's tables as an Airflow db-manager: ``airflow db migrate`` creates them, ``airflow db reset`` drops them.

Airflow (3.2 and later) runs every db-manager a provider declares (``db-managers`` in
``get_provider_info``) whenever it creates, migrates or resets its own database: on an empty
database the tables are created from :mod:`~airflow_ordo_hooks.server.models` and stamped at the
newest revision; on one stamped earlier, the migrations in ``migrations/versions/`` run. The
revision is kept in a version table of the package's own, so it never mixes with Airflow's.
"""

from __future__ import annotations

import os

from airflow.utils.db_manager import BaseDBManager

from airflow_ordo_hooks.server.models import metadata

_HERE = os.path.dirname(os.path.abspath(__file__))


class OrdoHooksDBManager(BaseDBManager):
    """Creates, migrates and drops the delivery ledger's tables along with Airflow's."""

    metadata = metadata
    migration_dir = os.path.join(_HERE, "migrations")
    alembic_file = os.path.join(_HERE, "alembic.ini")
    version_table_name = "ordo_hooks_alembic_version"
    supports_table_dropping = True
