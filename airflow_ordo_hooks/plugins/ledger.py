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
                from airflow_ordo_hooks.server.api import PREFIX, create_app

                self._apps = [{"name": "ordo-hooks", "app": create_app(), "url_prefix": PREFIX}]
            return self._apps


def _view(destination: str, url_route: str, query: str = "") -> dict[str, Any]:
    """The Webhooks view as one of the UI's external views: a frame of the ledger app's page; the UI fills in ``{DAG_ID}`` and the like."""
    return {
        "name": "Webhooks",
        "href": f"/ordo-hooks/webhooks{query}",
        "destination": destination,
        "url_route": url_route,
    }


class OrdoHooksPlugin(AirflowPlugin):
    """The delivery ledger's routes, its redelivery loop, and its Webhooks view, in the API server."""

    name = "ordo_hooks"
    fastapi_apps = _BuiltOnFirstRead()
    external_views = [
        _view("nav", "webhooks"),
        _view("dag", "webhooks-dag", "?dag_id={DAG_ID}"),
        _view("dag_run", "webhooks-run", "?dag_id={DAG_ID}&run_id={RUN_ID}"),
        _view("task_instance", "webhooks-task", "?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}"),
    ]
