"""Three 200-task DAGs, the same but for their callbacks: none, cheek hooks (an on_success webhook
on every task), and an on_success callback wired by hand that POSTs a like payload with ``requests``."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from airflow_ordo_hooks import attach_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
WIDTH = 200


class PostByHand:
    """What a DAG author would wire without this package: POST the try's facts, once, and never raise."""

    def __call__(self, context) -> None:
        import requests

        ti = context["ti"]
        payload = {
            "event": "on_success", "dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id,
            "try_number": ti.try_number, "state": str(ti.state), "log": "",
        }
        try:
            requests.post(f"{RECEIVER}/by_hand", json=payload, timeout=10)
        except requests.RequestException:
            pass


for dag_id in ("bench_wide_plain", "bench_wide_hooked", "bench_wide_by_hand"):
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        for i in range(WIDTH):
            EmptyOperator(task_id=f"t{i:03d}", on_success_callback=PostByHand() if dag_id.endswith("by_hand") else None)
    if dag_id.endswith("hooked"):
        attach_hooks(dag, {"on_success": {"notify_webhook": [f"{RECEIVER}/on_success"]}})
