"""The ``ordo_hooks`` Airflow plugin: mounts the delivery ledger's API at ``/ordo-hooks`` in the API server."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class OrdoHooksPlugin(AirflowPlugin):
    name = "ordo_hooks"
