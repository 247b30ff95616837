"""A task that fails on its first try and succeeds on its second, with a webhook on each cheek event.

The receiver defaults to the demo's (``make demo``); point it elsewhere without editing this file
with the environment variable ``ORDO_HOOKS_RECEIVER`` of the process that parses DAGs.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_ordo_hooks import attach_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")

with DAG(
    "example_flaky_task",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["airflow-ordo-hooks", "example"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1)},
):

    @task
    def brew(ti=None):
        print(f"Brewing, try {ti.try_number}")
        if ti.try_number == 1:
            raise RuntimeError("The kettle is cold")
        print("Coffee is ready")

    attach_hooks(
        brew(),
        {
            "on_success": {"notify_webhook": [f"{RECEIVER}/events/on_success"]},
            "on_error": {"notify_webhook": [f"{RECEIVER}/events/on_error"]},
            "on_retries_exhausted": {"notify_webhook": [f"{RECEIVER}/events/on_retries_exhausted"]},
        },
    )
