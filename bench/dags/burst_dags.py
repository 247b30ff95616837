"""The DAGs of ``python -m bench burst``: one mapped task of ``ORDO_HOOKS_BENCH_BURST`` instances (1,000)
that each fail at once, without retries, with an ``on_error`` webhook; ``burst_up`` sends it to the
receiver, ``burst_down`` to one that is down while the run starts (``$ORDO_HOOKS_RECEIVER_LATE``).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_ordo_hooks import attach_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
RECEIVER_LATE = os.environ.get("ORDO_HOOKS_RECEIVER_LATE", "http://127.0.0.1:9")
INSTANCES = int(os.environ.get("ORDO_HOOKS_BENCH_BURST", "1000"))


def burst_dag(dag_id: str, receiver: str) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        @task(retries=0)
        def fail(i: int) -> None:
            raise RuntimeError(f"burst instance {i} fails at once")

        attach_hooks(fail.expand(i=list(range(INSTANCES))), {"on_error": {"notify_webhook": [f"{receiver}/burst/on_error"]}})
    return dag


burst_up = burst_dag("burst_up", RECEIVER)
burst_down = burst_dag("burst_down", RECEIVER_LATE)
