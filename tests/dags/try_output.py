"""Test DAGs for a payload's log under dag.test(): what each try printed and logged reaches its webhook.

Every event goes to ``$ORDO_HOOKS_RECEIVER/<dag_id>/<task_id>/<event>``."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowSkipException

from airflow_ordo_hooks import attach_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
MARK = "7f3a"  # in every line the tasks write, to find them


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, default_args={"retries": 0})


def _hooks(dag_id: str, task_id: str, *events: str) -> dict:
    return {event: {"notify_webhook": [f"{RECEIVER}/{dag_id}/{task_id}/{event}"]} for event in events}


with _dag("try_output_python"):

    @task(task_id="job")
    def python_job():
        print(f"printed to stdout {MARK}")
        print(f"printed to stderr {MARK}", file=sys.stderr)
        logging.getLogger("my.module").warning("a stdlib warning %s", MARK)
        raise RuntimeError(f"deliberate {MARK}")

    attach_hooks(python_job(), _hooks("try_output_python", "job", "on_error"))


with _dag("try_output_bash"):
    bash = BashOperator(task_id="job", bash_command=f"echo from bash {MARK}; echo to stderr {MARK} >&2; exit 3")
    attach_hooks(bash, _hooks("try_output_bash", "job", "on_error"))


with _dag("try_output_quiet"):

    @task(task_id="job")
    def quiet_job():
        print(f"nobody reads this {MARK}")
        raise RuntimeError("no on_error hook")

    attach_hooks(quiet_job(), _hooks("try_output_quiet", "job", "on_success"))


with _dag("try_output_success"):

    @task(task_id="job")
    def loud_job():
        for i in range(3):
            print(f"line {i} {MARK}")
        return 42

    attach_hooks(loud_job(), _hooks("try_output_success", "job", "on_success"))


with _dag("try_output_skipped"):

    @task(task_id="job")
    def skipped_job():
        print(f"skipping {MARK}")
        raise AirflowSkipException("nothing to do")

    attach_hooks(skipped_job(), _hooks("try_output_skipped", "job", "on_success", "on_error"))
