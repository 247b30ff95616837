"""A DAG that does not mention airflow-ordo-hooks: the deployment-wide hooks file reaches it."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("system_plain", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    BashOperator(task_id="plain_task", bash_command="echo plain")
