"""The DAGs of ``python -m bench live``: the same one-line tasks, with no callback, a callback written by
hand, and this provider's hooks; and the last two again with a receiver where nothing listens.

Every webhook goes to ``<receiver>/<dag_id>/<task_id>``, so that the benchmark can tell which try
sent it. ``ORDO_HOOKS_BENCH_TASKS`` tasks each (12), one after another (``ORDO_HOOKS_BENCH_SHAPE``
``chain``) or all at once (``parallel``).
"""

from __future__ import annotations

import os
from datetime import datetime

import requests  # as a DAG author who posts by hand would: at the top of the file
from airflow.sdk import DAG, task

from airflow_ordo_hooks import attach_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
RECEIVER_DOWN = os.environ.get("ORDO_HOOKS_RECEIVER_DOWN", "http://127.0.0.1:9")
TASKS = int(os.environ.get("ORDO_HOOKS_BENCH_TASKS", "12"))
SHAPE = os.environ.get("ORDO_HOOKS_BENCH_SHAPE", "chain")


def by_hand(receiver: str):
    def post(context) -> None:
        ti = context["ti"]
        requests.post(
            f"{receiver}/{ti.dag_id}/{ti.task_id}",
            json={"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "try_number": ti.try_number},
            timeout=5,
        )

    return post


def live_dag(dag_id: str, callbacks: str, receiver: str = RECEIVER) -> DAG:
    """``callbacks``: ``none``, ``by_hand`` (an on_success_callback) or ``hooked`` (attach_hooks on_success)."""
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        previous = None
        for i in range(TASKS):
            @task(task_id=f"t{i:02d}", on_success_callback=by_hand(receiver) if callbacks == "by_hand" else None)
            def one() -> None:
                return None

            current = one()
            if callbacks == "hooked":
                attach_hooks(current.operator, {"on_success": {"notify_webhook": [f"{receiver}/{dag_id}/t{i:02d}"]}})
            if previous is not None and SHAPE == "chain":
                previous >> current
            previous = current
    return dag


live_none = live_dag("live_none", "none")
live_byhand = live_dag("live_byhand", "by_hand")
live_hooked = live_dag("live_hooked", "hooked")
live_byhand_down = live_dag("live_byhand_down", "by_hand", RECEIVER_DOWN)
live_hooked_down = live_dag("live_hooked_down", "hooked", RECEIVER_DOWN)
