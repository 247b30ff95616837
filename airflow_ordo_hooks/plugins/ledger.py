"""The ``ordo_hooks`` Airflow plugin: mounts the delivery ledger's API at ``/ordo-hooks`` in the API server.

Every Airflow component that loads plugins imports this module (workers for each task, the
scheduler, the DAG processor), so it imports nothing heavy and starts nothing: the FastAPI app is
built when ``fastapi_apps`` is first read, which only the API server (and ``airflow plugins``) does.
Airflow loads the plugin through the ``airflow.plugins`` entry point, and through the provider's
metadata when ``[core] lazy_discover_providers`` is false.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin


class _BuiltOnFirstRead:
    """A class attribute whose list is built on first read: the ledger's app, with its FastAPI and SQLAlchemy imports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, instance: object, owner: type) -> list[dict[str, Any]]:
        with self._lock:
            if self._apps is None:
                from airflow_ordo_hooks.plugins.ledger_api import PREFIX, create_app

                self._apps = [{"name": "ordo-hooks", "app": create_app(), "url_prefix": PREFIX}]
            return self._apps


class OrdoHooksPlugin(AirflowPlugin):
    """The delivery ledger's routes, and its redelivery loop, in the API server."""

    name = "ordo_hooks"
    fastapi_apps = _BuiltOnFirstRead()
