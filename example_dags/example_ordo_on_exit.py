"""Ordo's dataset pipeline with its on_exit CALL_WEBHOOK step, exactly as Ordo's recipe writes it.

``convert`` turns a small CSV into JSON lines (its output is an asset); in parallel,
``dataset_info`` pushes the dataset's ``metadata``. Once both have ended, whatever their
outcome, the on_exit step ``call_webhook`` POSTs a report of the whole run to
``conf["call_webhook"]["webhook_url"]``, which defaults to the demo's receiver (or to
``$ORDO_HOOKS_RECEIVER/ordo/processing-done``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Asset, task

from airflow_ordo_hooks import attach_on_exit

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
OUTPUT = Path(tempfile.gettempdir()) / "airflow-ordo-hooks-example" / "dataset.jsonl"
CSV = "id,species,weight_g\n1,arabica,250\n2,robusta,500\n3,liberica,125\n"

ON_EXIT = {
    "id": "call_webhook",
    "type": "CALL_WEBHOOK",
    "inputs": {"waits_for": "step:dataset_info.metadata"},
    "param_keys": ["webhook_url"],
}

with DAG(
    "example_ordo_on_exit",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["airflow-ordo-hooks", "example", "ordo"],
) as dag:

    @task(outlets=[Asset(name="dataset_jsonl", uri=f"file://{OUTPUT}")])
    def convert():
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        rows = list(csv.DictReader(io.StringIO(CSV)))
        OUTPUT.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return {"rows": len(rows), "path": str(OUTPUT)}

    @task
    def dataset_info(ti=None):
        rows = list(csv.DictReader(io.StringIO(CSV)))
        ti.xcom_push(key="metadata", value={"rows": len(rows), "columns": list(rows[0]), "format": "csv"})

    convert()
    dataset_info()

attach_on_exit(dag, ON_EXIT, defaults={"webhook_url": f"{RECEIVER}/ordo/processing-done"})
