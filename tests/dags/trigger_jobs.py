"""Test DAGs for trigger_job (SPEC T1-T6)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_ordo_hooks import attach_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")


def _dag(dag_id: str, retries: int = 0) -> DAG:
    return DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
               default_args={"retries": retries, "retry_delay": timedelta(seconds=0)})


def _job(outcome: str):
    @task(task_id="job")
    def job():
        if outcome == "fails":
            raise RuntimeError("the job failed")

    return job()


# children: plain DAGs that report their own success with cheek's payload
for child in ("trigger_child", "trigger_child_b"):
    with _dag(child) as dag:
        _job("succeeds")
    attach_hooks(dag, {"on_success": {"notify_webhook": [f"{RECEIVER}/{child}/job/on_success"]}})

with _dag("trigger_on_success"):
    attach_hooks(_job("succeeds"), {
        "on_success": {"trigger_job": ["trigger_child"]},
        "on_error": {"trigger_job": ["trigger_child_b"]},
    })

with _dag("trigger_on_exhausted", retries=1):
    attach_hooks(_job("fails"), {
        "on_error": {"notify_webhook": [f"{RECEIVER}/trigger_on_exhausted/job/on_error"], "trigger_job": ["trigger_child_b"]},
        "on_retries_exhausted": {"trigger_job": ["trigger_child"]},
        "on_success": {"trigger_job": ["trigger_child"]},
    })

with _dag("trigger_missing_target"):
    attach_hooks(_job("succeeds"), {"on_success": {"trigger_job": ["no_such_dag"]}})

# a cycle: cycle_a -> cycle_b -> cycle_a
for me, other in (("cycle_a", "cycle_b"), ("cycle_b", "cycle_a")):
    with _dag(me):
        attach_hooks(_job("succeeds"), {"on_success": {"trigger_job": [other], "notify_webhook": [f"{RECEIVER}/{me}/job/on_success"]}})

# A trigger task whose watched task fires no callback at all (it has no hooks), as when a task
# process is killed: the trigger task builds the parent's payload from what it can read.
with _dag("trigger_without_callback", retries=2):
    from airflow_ordo_hooks.operators.trigger_job import TriggerJobOperator

    watched = _job("fails").operator
    watched >> TriggerJobOperator(source_task_id="job", event="on_retries_exhausted", trigger_dag_id="trigger_child").as_teardown()
