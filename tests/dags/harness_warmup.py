"""Run once when the test session starts, so that Airflow's one-time start-up cost (the in-process
execution API) is not counted in any test's own timing."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("harness_warmup", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    EmptyOperator(task_id="warm_up")
