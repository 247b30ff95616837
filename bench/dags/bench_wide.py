"""Two 200-task DAGs, the same but for cheek hooks on every task (an on_success webhook each)."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from airflow_ordo_hooks import attach_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
WIDTH = 200

for dag_id in ("bench_wide_plain", "bench_wide_hooked"):
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        for i in range(WIDTH):
            EmptyOperator(task_id=f"t{i:03d}")
    if dag_id.endswith("hooked"):
        attach_hooks(dag, {"on_success": {"notify_webhook": [f"{RECEIVER}/on_success"]}})
