"""System-test DAGs for the API server's trust boundary: a DAG a user records deliveries under, and
a DAG whose real on_error another DAG's caller tries to claim with a forged webhook-id."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_ordo_hooks import attach_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, is_paused_upon_creation=False,
               default_args={"retries": 0})


# the DAG a user with the `user` role records deliveries under: its runs are real, its tasks send nothing of their own
with _dag("system_trust_recorder"):

    @task(task_id="job")
    def records():
        print("nothing to send")

    records()


# a task that fails once: its on_error goes to the system receiver
with _dag("system_trust_victim"):

    @task(task_id="job")
    def fails():
        raise RuntimeError("deliberate failure")

    attach_hooks(fails(), {"on_error": {"notify_webhook": [f"{RECEIVER}/system_trust_victim/job/on_error"]}})
