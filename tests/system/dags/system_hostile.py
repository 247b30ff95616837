"""System-test DAGs for hostile receivers: a task whose on_error webhook goes to a receiver that
trickles its answer, and an on_exit report whose URL (from the run's conf) redirects to an internal
address. Neither may change a state or hold a task longer than the delivery budget."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_ordo_hooks import attach_hooks, attach_on_exit

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, is_paused_upon_creation=False,
               default_args={"retries": 0})


# A failing task: its failure is reported only once its on_error webhook has returned.
with _dag("system_hostile_trickle"):

    @task(task_id="job")
    def fails():
        raise RuntimeError("deliberate failure")

    attach_hooks(fails(), {"on_error": {"notify_webhook": [f"{RECEIVER}/system_hostile_trickle/job/on_error"]}})


with _dag("system_hostile_redirect") as redirect:

    @task
    def dataset_info(ti=None):
        ti.xcom_push(key="metadata", value={"rows": 1})

    dataset_info()
attach_on_exit(
    redirect,
    {"id": "call_webhook", "type": "CALL_WEBHOOK", "inputs": {"waits_for": "step:dataset_info.metadata"},
     "param_keys": ["webhook_url"]},
    defaults={"webhook_url": f"{RECEIVER}/system_hostile_redirect/default"},
)
