"""System-test DAGs for running the ledger for a year, on the ``operating`` deployment: a target that
fails for a while and recovers, one the egress policy refuses, and deliveries that retention prunes or keeps (airflow DAG files)."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_ordo_hooks import attach_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
DOWN = os.environ.get("ORDO_HOOKS_RECEIVER_DOWN", "http://127.0.0.1:9")
REFUSED = "http://127.0.0.2:9/system_ops/refused"
"""Not among the deployment's allowed hosts: the API server's attempt is refused, and the delivery given up at once."""


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, is_paused_upon_creation=False)


def _one_task(dag_id: str, targets: list[str]) -> DAG:
    with _dag(dag_id) as dag:

        @task
        def work():
            return 1

        work()
    attach_hooks(dag, {"on_success": {"notify_webhook": targets}})
    return dag


flaky = _one_task("system_ops_flaky", [f"{RECEIVER}/system_ops/flaky"])
refused = _one_task("system_ops_refused", [REFUSED])
retention = _one_task("system_ops_retention", [f"{RECEIVER}/system_ops/kept", f"{DOWN}/system_ops/waiting"])
