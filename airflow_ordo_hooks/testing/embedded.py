"""An embedded Airflow for tests, the demo and benchmarks: its own home, SQLite database and dags folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag


def isolate_airflow(home: Path, dags_folder: Path, **config: str) -> None:
    """
    Point Airflow at ``home`` (SQLite inside it) and ``dags_folder``, before Airflow is imported.

    :param config: more settings, as ``SECTION__KEY="value"`` (e.g. ``LOGGING__LOGGING_LEVEL="ERROR"``).
    """
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        **{f"AIRFLOW__{key}": value for key, value in config.items()},
    )


def load_dags(dags_folder: Path) -> DagBag:
    """Create the database and parse every DAG file of ``dags_folder``; raise if one fails to import."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.initdb()
    bag = DagBag(dag_folder=str(dags_folder))
    if bag.import_errors:
        raise RuntimeError(f"DAG files failed to import: {bag.import_errors}")
    return bag
