"""Test DAGs for Ordo's on_exit step (SPEC O1-O14): the dataset pipeline in several outcomes,
each with and without the on_exit step so that the run's final states can be compared."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Asset, task

from airflow_ordo_hooks import attach_on_exit

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
ON_EXIT = {
    "id": "call_webhook",
    "type": "CALL_WEBHOOK",
    "inputs": {"waits_for": "step:dataset_info.metadata"},
    "param_keys": ["webhook_url"],
}


def pipeline(dag_id: str, outcome: str, on_exit: bool) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:

        @task(outlets=[Asset(name=f"{dag_id}_out", uri=f"file:///tmp/{dag_id}.out")])
        def convert():
            if outcome == "main_fails":
                raise RuntimeError("conversion failed")
            return 3

        @task
        def dataset_info(ti=None):
            if outcome == "info_fails":
                raise RuntimeError("no metadata today")
            ti.xcom_push(key="metadata", value={"rows": 3})

        @task
        def publish(rows):
            return f"published {rows} rows"

        publish(convert())
        dataset_info()
    if on_exit:
        attach_on_exit(dag, ON_EXIT, defaults={"webhook_url": f"{RECEIVER}/{dag_id}/report"})
    return dag


for outcome in ("all_ok", "main_fails", "info_fails"):
    pipeline(f"ordo_{outcome}", outcome, on_exit=True)
    pipeline(f"ordo_{outcome}_plain", outcome, on_exit=False)

# no default: the URL must come with the run's conf
with DAG("ordo_url_required", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as required:

    @task
    def dataset_info(ti=None):
        ti.xcom_push(key="metadata", value={"rows": 1})

    dataset_info()
attach_on_exit(required, ON_EXIT)

# a mapped task of 1,000 instances
with DAG("ordo_mapped", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as mapped:

    @task
    def square(x):
        return x * x

    @task
    def dataset_info(ti=None):
        ti.xcom_push(key="metadata", value={"instances": 1000})

    square.expand(x=list(range(1000)))
    dataset_info()
attach_on_exit(mapped, ON_EXIT, defaults={"webhook_url": f"{RECEIVER}/ordo_mapped/report"})
