"""System-test DAGs for the on_exit step read through the REST API, a timed-out run (O14), and
trigger_job end to end (a child that really runs)."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Asset, task

from airflow_ordo_hooks import attach_hooks, attach_on_exit

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
ON_EXIT = {
    "id": "call_webhook",
    "type": "CALL_WEBHOOK",
    "inputs": {"waits_for": "step:dataset_info.metadata"},
    "param_keys": ["webhook_url"],
}


def _dag(dag_id: str, **kwargs) -> DAG:
    return DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, is_paused_upon_creation=False, **kwargs)


# on_exit, the report read through the REST API (connection airflow_api)
with _dag("system_ordo_pipeline") as pipeline:

    @task(outlets=[Asset(name="system_ordo_out", uri="file:///tmp/system_ordo.out")])
    def convert():
        return 3

    @task
    def dataset_info(ti=None):
        ti.xcom_push(key="metadata", value={"rows": 3})

    @task(retries=1, retry_delay=timedelta(seconds=1))
    def flaky(ti=None):
        if ti.try_number == 1:
            raise RuntimeError("first try fails")

    convert()
    dataset_info()
    flaky()
attach_on_exit(pipeline, ON_EXIT, defaults={"webhook_url": f"{RECEIVER}/system_ordo_pipeline/report"})

# a run that fails: its report says why a step failed, and that the steps after it never ran
with _dag("system_ordo_failing") as failing:

    @task
    def dataset_info(ti=None):
        ti.xcom_push(key="metadata", value={"rows": 2})

    @task
    def load():
        raise ValueError("no column 'price'")

    @task
    def publish():
        pass

    @task
    def archive():
        pass

    dataset_info() >> load() >> publish() >> archive()
attach_on_exit(failing, ON_EXIT, defaults={"webhook_url": f"{RECEIVER}/system_ordo_failing/report"})

# a run that hits its dagrun_timeout: the scheduler skips the teardown; the failure callback reports
with _dag("system_ordo_overdue", dagrun_timeout=timedelta(seconds=25)) as overdue:

    @task
    def dataset_info(ti=None):
        ti.xcom_push(key="metadata", value={"rows": 1})

    @task
    def slow():
        time.sleep(120)

    dataset_info()
    slow()
attach_on_exit(overdue, ON_EXIT, defaults={"webhook_url": f"{RECEIVER}/system_ordo_overdue/report"})

# trigger_job: cheek's coffee, whose tries fail, and the cleanup jobs it starts
with _dag("system_coffee") as coffee:
    brew = BashOperator(task_id="coffee", bash_command="this fails", retries=1, retry_delay=timedelta(seconds=1))
attach_hooks(brew, {
    "on_error": {"notify_webhook": [f"{RECEIVER}/system_coffee/coffee/on_error"], "trigger_job": ["system_cleanup_each"]},
    "on_retries_exhausted": {"trigger_job": ["system_cleanup"]},
})

for child in ("system_cleanup", "system_cleanup_each"):
    with _dag(child) as dag:
        BashOperator(task_id="cleanup", bash_command="echo cleaning up")
    attach_hooks(dag, {"on_success": {"notify_webhook": [f"{RECEIVER}/{child}/cleanup/on_success"]}})

# a task process killed with SIGKILL: its failure callback runs in the DAG processor
with _dag("system_killed") as killed:

    @task
    def victim():
        from pathlib import Path

        Path(os.environ["AIRFLOW_HOME"], "victim.pid").write_text(str(os.getpid()))
        time.sleep(300)

    victim()

attach_hooks(killed, {"on_error": {
    "notify_webhook": [f"{RECEIVER}/system_killed/victim/on_error"],
    "trigger_job": ["system_cleanup"],
}})
