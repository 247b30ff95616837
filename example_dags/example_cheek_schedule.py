"""cheek's coffee/beans schedule from its documentation, one DAG per cheek job, with attach_hooks.

    on_success:                      # schedule level: applies to every job
      notify_webhook: [<receiver>/schedule/on_success]
    jobs:
      coffee:
        command: this fails          # creates on_error events
        cron: "* * * * *"
        retries: 3
        on_error:
          notify_webhook: [<receiver>/coffee/on_error]          # after each failed try
        on_retries_exhausted:
          trigger_job: [cleanup_job]                           # once, when all tries failed
          notify_webhook: [<receiver>/critical-alerts]
      beans:
        command: echo grind          # creates an on_success event
        cron: "* * * * *"

The receiver defaults to the demo's; set ``ORDO_HOOKS_RECEIVER`` in the environment of the
process that parses DAGs to send elsewhere. Like every DAG, these start paused in a deployment.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from airflow_ordo_hooks import attach_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")

SCHEDULE_HOOKS = {"on_success": {"notify_webhook": [f"{RECEIVER}/schedule/on_success"]}}

COFFEE_HOOKS = f"""
on_error:
  notify_webhook: [{RECEIVER}/coffee/on_error]
on_retries_exhausted:
  trigger_job: [cleanup_job]
  notify_webhook: [{RECEIVER}/critical-alerts]
"""


def cheek_job(name: str, command: str, retries: int = 0) -> DAG:
    """One cheek job: a DAG on cheek's cron, running one Bash command."""
    with DAG(
        name,
        schedule="* * * * *",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["airflow-ordo-hooks", "example", "cheek"],
    ) as dag:
        # cheek waits 5 s between tries; here the task's own retry_delay does.
        BashOperator(task_id=name, bash_command=command, retries=retries, retry_delay=timedelta(seconds=1))
    return attach_hooks(dag, SCHEDULE_HOOKS)


coffee = cheek_job("coffee", "this fails", retries=3)
attach_hooks(coffee.get_task("coffee"), COFFEE_HOOKS)
beans = cheek_job("beans", "echo grind")
cleanup_job = cheek_job("cleanup_job", "echo cleaning up after coffee")
