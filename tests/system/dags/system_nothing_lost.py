"""System-test DAGs for the delivery ledger: tries killed before their callbacks ran, a receiver
that is down for minutes, and what a down receiver costs a try's worker slot (airflow DAG files)."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_ordo_hooks import attach_hooks, attach_run_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
LATE = os.environ.get("ORDO_HOOKS_RECEIVER_LATE", "http://127.0.0.1:9")
"""A receiver that is down when the runs start and comes up minutes later (the test starts it)."""
LATE_TASKS = 20


def _dag(dag_id: str, **kwargs) -> DAG:
    return DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, is_paused_upon_creation=False, **kwargs)


# every try kills its own process: no callback ever runs
with _dag("system_killed_retried") as killed_retried:

    @task(retries=1, retry_delay=timedelta(seconds=1))
    def victim():
        os.kill(os.getpid(), signal.SIGKILL)

    victim()

attach_hooks(killed_retried, {
    "on_error": {"notify_webhook": [f"{RECEIVER}/system_killed_retried/victim/on_error"]},
    "on_retries_exhausted": {"notify_webhook": [f"{RECEIVER}/system_killed_retried/victim/on_retries_exhausted"]},
})

# twenty tasks, half failing, whose receiver is down for minutes
with _dag("system_late_receiver") as late:
    for i in range(LATE_TASKS):

        @task(task_id=f"t{i:02d}")
        def work(fail: bool):
            if fail:
                raise RuntimeError("this task fails")

        work(i % 2 == 1)

attach_hooks(late, {
    "on_success": {"notify_webhook": [f"{LATE}/system_late_receiver/on_success"]},
    "on_error": {"notify_webhook": [f"{LATE}/system_late_receiver/on_error"]},
})
attach_run_hooks(late, {"on_error": {"notify_webhook": [f"{LATE}/system_late_receiver/run/on_error"]}})

# the same short task twice: with a receiver that never answers, and without hooks
with _dag("system_slot_time") as slot_time:

    @task
    def hooked():
        time.sleep(1)

    @task
    def plain():
        time.sleep(1)

    hooked()
    plain()

attach_hooks(slot_time.get_task("hooked"), {"on_success": {"notify_webhook": [f"{RECEIVER}/system_slot_time/hanging"]}})

# a task that says it started, then works until its Celery worker is killed under it
with _dag("system_worker_killed") as worker_killed:

    @task
    def doomed():
        import requests

        requests.post(f"{RECEIVER}/system_worker_killed/started", json={"pid": os.getpid()}, timeout=10)
        time.sleep(900)

    doomed()

attach_hooks(worker_killed, {
    "on_error": {"notify_webhook": [f"{RECEIVER}/system_worker_killed/doomed/on_error"]},
    "on_retries_exhausted": {"notify_webhook": [f"{RECEIVER}/system_worker_killed/doomed/on_retries_exhausted"]},
})
