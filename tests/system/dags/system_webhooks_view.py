"""System-test DAG for the Webhooks view: a task fails, and its on_error webhook goes to a receiver
that is down until the view's browser test brings it up and presses Redeliver."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_ordo_hooks import attach_hooks

VIEW = os.environ.get("ORDO_HOOKS_RECEIVER_VIEW", "http://127.0.0.1:9")

with DAG("system_webhooks_view", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         is_paused_upon_creation=False, default_args={"retries": 0}):

    @task(task_id="load_orders")
    def load_orders():
        raise RuntimeError("the orders file is not there yet")

    attach_hooks(load_orders(), {"on_error": {"notify_webhook": [f"{VIEW}/orders/on_error"]}})
