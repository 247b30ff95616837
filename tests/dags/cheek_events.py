"""Test DAGs for cheek's event semantics (SPEC C1-C5): every event of every task goes to
``$ORDO_HOOKS_RECEIVER/<dag_id>/<task_id>/<event>``."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_ordo_hooks import attach_hooks, attach_run_hooks

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")
EVENTS = ("on_success", "on_error", "on_retries_exhausted")


def every_event(dag_id: str, task_id: str, action: str = "notify_webhook") -> dict:
    return {event: {action: [f"{RECEIVER}/{dag_id}/{task_id}/{event}"]} for event in EVENTS}


def _dag(dag_id: str, retries: int = 0, **kwargs) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=0)},
        **kwargs,
    )


def _pattern_task(pattern: str):
    @task(task_id="job")
    def job(ti=None):
        print(f"try {ti.try_number} of pattern {pattern}")
        if pattern == "always_fails" or (pattern == "fails_then_succeeds" and ti.try_number == 1):
            raise RuntimeError(f"{pattern} failed on try {ti.try_number}")

    return job()


# C1-C3: retries x outcome patterns
for retries in (0, 1, 3):
    for pattern in ("always_fails", "fails_then_succeeds", "succeeds"):
        dag_id = f"cheek_{pattern}_r{retries}"
        with _dag(dag_id, retries):
            attach_hooks(_pattern_task(pattern), every_event(dag_id, "job"))

# C3a: failing for good before the retries are used
with _dag("cheek_fail_fast", retries=2):

    @task
    def job():
        raise AirflowFailException("no point in retrying")

    attach_hooks(job(), every_event("cheek_fail_fast", "job"))

# a try cut by execution_timeout is a failed try like any other
with _dag("cheek_timeout", retries=1):

    @task(execution_timeout=timedelta(seconds=1))
    def job():
        time.sleep(10)

    attach_hooks(job(), every_event("cheek_timeout", "job"))

# a skipped task and an upstream_failed task run no try: no cheek event
with _dag("cheek_skip_and_upstream_failed") as dag:

    @task
    def skips():
        raise AirflowSkipException("nothing to do")

    @task
    def fails():
        raise RuntimeError("boom")

    @task
    def downstream():
        pass

    skips()
    fails() >> downstream()
    for t in dag.tasks:
        attach_hooks(t, every_event("cheek_skip_and_upstream_failed", t.task_id))

# C5: schedule level + job level, combined; the same action and target once
with _dag("cheek_levels") as dag:

    @task
    def own():
        pass

    @task
    def plain():
        pass

    shared = f"{RECEIVER}/cheek_levels/shared"
    attach_hooks(own(), {"on_success": {"notify_webhook": [shared, f"{RECEIVER}/cheek_levels/own"]}})
    plain()
    attach_hooks(dag, {"on_success": {"notify_webhook": [shared]}})

# status = the exit code of a Bash command
with _dag("cheek_bash_exit") as dag:
    attach_hooks(BashOperator(task_id="job", bash_command="echo before the end; exit 3"), every_event("cheek_bash_exit", "job"))

# the payload's log is masked: a connection password in the failure never leaves in clear
with _dag("cheek_secret_in_log"):

    @task
    def job():
        from airflow.sdk import BaseHook

        password = BaseHook.get_connection("cheek_secret_db").password
        raise RuntimeError(f"could not log in with password {password}")

    attach_hooks(job(), every_event("cheek_secret_in_log", "job"))

# Slack and Discord bodies, to a receiver standing in for their servers
with _dag("cheek_chat") as dag:

    @task
    def job():
        raise RuntimeError("Kettle überhitzt ☕")

    attach_hooks(job(), {
        "on_error": {
            "notify_slack_webhook": [f"{RECEIVER}/slack/services/T000/B000/XXXX"],
            "notify_discord_webhook": [f"{RECEIVER}/discord/api/webhooks/1/token"],
        }
    })

# a receiver that hangs holds the task no longer than the delivery budget
with _dag("cheek_hanging_receiver"):

    @task
    def job():
        pass

    attach_hooks(job(), {"on_success": {"notify_webhook": [f"{RECEIVER}/hang"]}})

# DAG-run level events: name is the DAG id
for outcome in ("success", "failed"):
    with _dag(f"cheek_run_{outcome}") as dag:

        @task
        def job(outcome=outcome):
            if outcome == "failed":
                raise RuntimeError("the run fails")

        job()
        attach_run_hooks(dag, {
            "on_success": {"notify_webhook": [f"{RECEIVER}/cheek_run_{outcome}/run/on_success"]},
            "on_error": {"notify_webhook": [f"{RECEIVER}/cheek_run_{outcome}/run/on_error"]},
        })

# the notifier classes, wired by hand as an author who prefers code would
with _dag("cheek_notifiers", retries=1):
    from airflow_ordo_hooks import JobEventDiscordWebhookNotifier, JobEventWebhookNotifier

    @task(
        on_retry_callback=[JobEventWebhookNotifier(RECEIVER + "/cheek_notifiers/{{ ti.task_id }}/on_error")],
        on_failure_callback=[
            JobEventWebhookNotifier(RECEIVER + "/cheek_notifiers/job/on_error"),
            JobEventDiscordWebhookNotifier(RECEIVER + "/cheek_notifiers/job/on_retries_exhausted", event="on_retries_exhausted"),
        ],
    )
    def job():
        raise RuntimeError("notified")

    job()
