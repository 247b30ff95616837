"""DAGs for the system tests: cheek's events in a real Airflow deployment (``airflow standalone``).

Every webhook goes to ``$ORDO_HOOKS_RECEIVER/<dag_id>/<task_id>/<event>`` (``<task_id>`` is ``run``
for DAG-run events). The lines the tasks print are distinctive and never part of an exception
message, so a payload's ``log`` can only contain them if it was read from the try's log file.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_ordo_hooks import attach_hooks, attach_on_exit, attach_run_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
DOWN = os.environ.get("ORDO_HOOKS_RECEIVER_DOWN", "http://127.0.0.1:9")
"""A receiver that is down: nothing listens on its port, so every connection is refused."""
EVENTS = ("on_success", "on_error", "on_retries_exhausted")
RUN_EVENTS = ("on_success", "on_error")


def every_event(dag_id: str, task_id: str, receiver: str = RECEIVER) -> dict:
    return {event: {"notify_webhook": [f"{receiver}/{dag_id}/{task_id}/{event}"]} for event in EVENTS}


def run_events(dag_id: str, receiver: str = RECEIVER) -> dict:
    return {event: {"notify_webhook": [f"{receiver}/{dag_id}/run/{event}"]} for event in RUN_EVENTS}


def _dag(dag_id: str, retries: int = 0, retry_delay: float = 1) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=retry_delay)},
    )


# A task that prints a line and then always fails, with one retry 3 s later: each payload's log is its own try's.
with _dag("system_prints_then_fails", retries=1, retry_delay=3):

    @task(task_id="job")
    def prints_then_fails(ti=None):
        print(f"printed by try {ti.try_number}: the kettle is empty")
        raise RuntimeError("deliberate failure")

    attach_hooks(prints_then_fails(), every_event("system_prints_then_fails", "job"))


# A task that prints a connection's password, then fails: the payload's log is masked.
with _dag("system_prints_secret"):

    @task(task_id="job")
    def prints_secret():
        from airflow.sdk import BaseHook

        password = BaseHook.get_connection("system_secret").password
        print(f"connecting with password {password} now")
        raise RuntimeError("deliberate failure after printing the password")

    attach_hooks(prints_secret(), every_event("system_prints_secret", "job"))


# A succeeding task: on_success carries its log.
with _dag("system_succeeds"):

    @task(task_id="job")
    def succeeds():
        print("the coffee is ready, says the succeeding task")

    attach_hooks(succeeds(), every_event("system_succeeds", "job"))


# DAG-run events, sent from the DAG processor.
for outcome in ("success", "failed"):
    with _dag(f"system_run_{outcome}") as dag:

        @task(task_id="job")
        def run_job(outcome=outcome):
            if outcome == "failed":
                raise RuntimeError("the run fails")

        run_job()
        attach_run_hooks(dag, run_events(f"system_run_{outcome}"))


# A receiver answering 500 to everything, or one that is down, changes no state: each DAG with hooks
# has a twin without.
def _outcome_dag(dag_id: str, fails: bool, job_events: bool, receiver: str = RECEIVER) -> DAG:
    with _dag(dag_id, retries=1) as dag:

        @task(task_id="ok")
        def ok():
            print("ok")

        @task(task_id="after")
        def after():
            print("after")

        first = ok()
        first >> after()
        if fails:

            @task(task_id="bad")
            def bad():
                raise RuntimeError("bad")

            bad()
        if job_events:
            for t in dag.tasks:
                attach_hooks(t, every_event(dag_id, t.task_id, receiver))
            attach_run_hooks(dag, run_events(dag_id, receiver))
    if job_events and receiver == DOWN:  # and Ordo's report, to the same receiver
        step = {"id": "call_webhook", "type": "CALL_WEBHOOK", "inputs": {"waits_for": "step:ok.return_value"}, "param_keys": ["webhook_url"]}
        attach_on_exit(dag, step, defaults={"webhook_url": f"{receiver}/{dag_id}/report"})
    return dag


for outcome in ("success", "failed"):
    _outcome_dag(f"system_500_{outcome}", fails=outcome == "failed", job_events=True)
    _outcome_dag(f"system_down_{outcome}", fails=outcome == "failed", job_events=True, receiver=DOWN)
    _outcome_dag(f"system_nohooks_{outcome}", fails=outcome == "failed", job_events=False)


# A try that logs a burst of lines just before it ends: the payload's log must still end where the
# try's log ends (the supervisor writes the file from a socket, behind the task), and an exception
# the task logged (structlog writes it as a dict, under ``error_detail``) must read as one.
for outcome in ("success", "failed"):
    with _dag(f"system_log_burst_{outcome}"):

        @task(task_id="job")
        def burst(outcome=outcome):
            import logging

            log = logging.getLogger("airflow.task")
            for i in range(3000):
                log.info("burst line %d of 3000, a line long enough to fill the socket to the supervisor", i)
            log.info("the last line of the burst")
            try:
                raise ValueError("the beans are wet")
            except ValueError:
                log.exception("handled a problem")
            if outcome == "failed":
                raise RuntimeError("the burst failed")

        attach_hooks(burst(), every_event(f"system_log_burst_{outcome}", "job"))
