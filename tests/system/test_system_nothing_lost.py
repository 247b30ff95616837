"""Nothing lost, in a real deployment: tries killed before their callbacks ran still fire their
events, a receiver that is down for minutes gets every event once it is back, and a down receiver
costs a try's worker slot at most the inline budget. Counted by ``webhook-id`` at the receiver, and
read back from the delivery ledger through the provider's endpoint on the API server."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import timedelta

import pytest

from airflow_ordo_hooks._targets import mask_url
from airflow_ordo_hooks.testing.receiver import Respond, WebhookReceiver
from tests.system.deployments import utc

pytestmark = pytest.mark.system

DAG_IDS = ("system_killed_retried", "system_slot_time")
OUTAGE = 180.0
"""Seconds the late receiver stays down at least after its run starts (it is started by the harness with the deployment)."""


@pytest.fixture(scope="module")
def runs(airflow_deployment, system_receiver):
    system_receiver.script("/system_slot_time/hanging", *[Respond(delay=120)] * 20)  # never answers in time
    return {dag_id: airflow_deployment.trigger(dag_id) for dag_id in DAG_IDS}


def ledger(deployment, dag_id: str, run_id: str) -> list[dict]:
    """
    The ledger's deliveries of a run, as the provider's endpoint on the API server gives them,
    but those of the deployment-wide hook (an on_success of every task, from ``[ordo_hooks] hooks_file``).
    """
    params = {"dag_id": dag_id, "run_id": run_id, "limit": 100, "full": "true"}  # with their attempts
    rows = deployment.get("/ordo-hooks/api/v1/deliveries", params=params)["deliveries"]
    deployment_wide = mask_url(f"{deployment.receiver_url}/deployment/on_success")
    return [row for row in rows if row["target_masked"] != deployment_wide]


def _wait(what: str, check, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(interval)
    return result


def test_a_task_killed_on_every_try_gets_each_tries_on_error_and_one_on_retries_exhausted(airflow_deployment, system_receiver, runs):
    dag_id = "system_killed_retried"
    run = airflow_deployment.wait_for_run(dag_id, runs[dag_id])
    assert run["state"] == "failed"
    assert [t["try_number"] for t in airflow_deployment.tries(dag_id, runs[dag_id], "victim")] == [1, 2]

    def delivered():
        rows = ledger(airflow_deployment, dag_id, runs[dag_id])
        return rows if len(rows) == 3 and all(r["state"] == "delivered" for r in rows) else None

    # recovered when try 2 starts (try 1's) and when the run settles (try 2's), sent once the tries'
    # callbacks could no longer be running: task_success_overtime (20 s) and 5 s after each try ended
    rows = _wait("the killed tries' events delivered", delivered, timeout=150)
    received = [r for r in system_receiver.requests if r.path.startswith(f"/{dag_id}/")]
    assert Counter(r.header("webhook-id") for r in received) == Counter({row["webhook_id"]: 1 for row in rows})
    got = sorted((r.json["retry_attempt"], r.path.rsplit("/", 1)[1]) for r in received)
    assert got == [(0, "on_error"), (1, "on_error"), (1, "on_retries_exhausted")]
    for r in received:
        assert r.json["status"] == -9 and r.json["airflow"]["try_number"] == r.json["retry_attempt"] + 1
        assert "Process terminated by signal" in r.json["log"], r.json["log"]
    # each try's events come from the DAG processor's run of its callbacks (when the scheduler sees
    # the executor's report disagree) or from recovery, whichever is first: never both
    assert {row["source"] for row in rows} <= {"callback", "recovery"}
    assert all(len(row["attempts"]) == 1 and row["attempts"][0]["status_code"] == 200 for row in rows), rows


def test_a_celery_worker_killed_mid_task_gives_the_tries_events_once_the_scheduler_notices(airflow_deployment, system_receiver):
    if airflow_deployment.kind != "celery":
        pytest.skip("kills a Celery worker: the local deployment's tries are killed in the test above")
    dag_id = "system_worker_killed"
    run_id = airflow_deployment.trigger(dag_id)
    system_receiver.wait_for(1, timeout=120, path=f"/{dag_id}/started")
    killed_at = time.monotonic()
    airflow_deployment.kill_worker()  # the worker, its pool, the try's supervisor and the try: no callback runs

    # the scheduler notices the try's missing heartbeat, fails it (and the run), and has the DAG
    # processor run its failure callbacks, twice (the heartbeat timeout, then the executor's report)
    (first,) = system_receiver.wait_for(1, timeout=airflow_deployment.HEARTBEAT_TIMEOUT + 120, path=f"/{dag_id}/doomed/on_error")
    print(f"a killed worker's try: its on_error {time.monotonic() - killed_at:.0f} s after the kill "
          f"(heartbeat timeout {airflow_deployment.HEARTBEAT_TIMEOUT} s)")
    run = airflow_deployment.wait_for_run(dag_id, run_id)
    assert run["state"] == "failed"
    # the run's failure callbacks (its sweep for tries that ended without callbacks among them) are
    # asked for after the try's, and the DAG processor runs a file's callbacks in order: once they
    # have started, both reports of the try were handled, and the sweep must find the event sent
    _wait("the run's failure callback in the DAG processor", lambda: airflow_deployment.dag_callback_times(dag_id), timeout=60)
    (row,) = _wait("the event delivered in the ledger",
                   lambda: (r := ledger(airflow_deployment, dag_id, run_id)) and all(x["state"] == "delivered" for x in r) and r,
                   timeout=60)
    received = [r for r in system_receiver.requests if r.path.startswith(f"/{dag_id}/doomed/")]
    assert [(r.path, r.header("webhook-id")) for r in received] == [(f"/{dag_id}/doomed/on_error", row["webhook_id"])]
    # cheek sends on_retries_exhausted only for a task that has retries; this one has none
    assert first.json["name"] == "doomed" and first.json["airflow"]["try_number"] == 1
    assert first.json["status"] == -1, "the supervisor died with the try: no signal is known"


def test_a_down_receiver_costs_a_tries_slot_at_most_the_inline_budget(airflow_deployment, runs):
    dag_id = "system_slot_time"
    run = airflow_deployment.wait_for_run(dag_id, runs[dag_id])
    assert run["state"] == "success"

    def process_time(task_id: str) -> float | None:
        """From the try's start to its log's last record: the task process's life, callbacks included."""
        (path,) = [p for p in airflow_deployment.task_log_files(dag_id) if p.parent.name == f"task_id={task_id}"]
        records = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
        if task_id == "hooked" and not any("left to the API server's redelivery" in r.get("event", "") for r in records):
            return None  # its callback has not finished
        (ti,) = airflow_deployment.tries(dag_id, runs[dag_id], task_id)
        return (utc(records[-1]["timestamp"]) - utc(ti["start_date"])).total_seconds()

    hooked = _wait("the hooked task's callback handed its delivery over", lambda: process_time("hooked"), timeout=60)
    plain = process_time("plain")
    print(f"a try's process with a receiver that never answers: {hooked:.2f} s; without hooks: {plain:.2f} s "
          f"({hooked / plain:.2f} x, +{hooked - plain:.2f} s)")
    # the inline budget (2 s) and handing the delivery to the ledger, nothing more
    assert hooked - plain < 2.0 + 1.0, (hooked, plain)
    (row,) = ledger(airflow_deployment, dag_id, runs[dag_id])
    assert row["state"] in ("pending", "delivering") and row["attempts"], row


@pytest.mark.system_last
def test_a_receiver_down_for_three_minutes_gets_every_event_exactly_once_when_it_is_back(airflow_deployment):
    """Last of the deployment's tests, on a run triggered when it started: the other tests run during the outage."""
    dag_id, run_id = "system_late_receiver", airflow_deployment.early_runs["system_late_receiver"]
    run = airflow_deployment.wait_for_run(dag_id, run_id)
    assert run["state"] == "failed"
    expected = 20 + 1  # on_success of 10 tasks, on_error of 10, the run's on_error

    rows = _wait("every event in the ledger", lambda: (r := ledger(airflow_deployment, dag_id, run_id)) and len(r) == expected and r,
                 timeout=90)
    assert all(r["state"] in ("pending", "delivering") and r["attempts"] and r["attempts"][0]["status_code"] is None for r in rows), rows
    assert Counter(r["event"] for r in rows) == {"on_success": 10, "on_error": 11}

    back_at = utc(run["start_date"]) + timedelta(seconds=OUTAGE)
    _wait("the outage's end", lambda: time.time() >= back_at.timestamp(), timeout=OUTAGE + 60)
    with WebhookReceiver(port=airflow_deployment.late_port) as late:
        up_at = time.time()
        # attempts 5, 15, 35, 75, 135 s after the first, then every 60 s: the next after the outage is within 60 s
        def all_delivered():
            rows = ledger(airflow_deployment, dag_id, run_id)
            return rows if all(r["state"] == "delivered" for r in rows) else None

        rows = _wait("every delivery delivered", all_delivered, timeout=150)
        ids = Counter(r.header("webhook-id") for r in late.requests)
    assert ids == Counter({row["webhook_id"]: 1 for row in rows}), "each event exactly once"
    for row in rows:
        attempts = row["attempts"]
        assert len(attempts) >= 3 and attempts[-1]["status_code"] == 200, attempts
        assert all(a["status_code"] is None for a in attempts[:-1]), attempts
        # tried at once where the event fired (up to [ordo_hooks] max_attempts = 3), then by the API server
        assert attempts[0]["by"] in ("worker", "dag-processor") and attempts[-1]["by"] == "api-server", attempts
        _assert_on_schedule(attempts, airflow_deployment, up_at)


LOOP_SLACK = 10.0
"""
Seconds an API server's attempt may come after its due time. The loop looks every second and sends
a few at a time, taking the DAGs in turn; in this suite other tests' deliveries (receivers answering
500 or refusing, on this fast schedule) fall due at the same moments, and each attempt's row is
written to SQLite beside the scheduler's writes: on two busy cores, a step came 5.1 s late. A step
counted twice still shows: were two or more inline attempts each to use a step (the fault this
guards against), the API server's third attempt would come 20 s or more after it is due.
"""


def _assert_on_schedule(attempts: list[dict], deployment, up_at: float) -> None:
    """
    The callback's inline attempts are the schedule's first step however many they were, each API
    server attempt one more, each due its step's wait after the one before; so the delivery came at
    the first step due after the receiver was back.
    """
    waits = [float(w) for w in deployment.environment()["AIRFLOW__ORDO_HOOKS__REDELIVERY_SCHEDULE"].split(",")]
    ends = [utc(a["at"]).timestamp() + (a["elapsed_ms"] or 0) / 1000 for a in attempts]
    inline = [a for a in attempts if a["by"] != "api-server"]
    assert inline == attempts[: len(inline)], attempts
    steps = [ends[len(inline) - 1], *ends[len(inline):]]  # when each step ended: the inline burst, then each API server attempt
    starts = [utc(a["at"]).timestamp() for a in attempts[len(inline):]]
    for n, (ended, started) in enumerate(zip(steps, starts), start=1):
        late = started - (ended + waits[n])
        assert -0.5 <= late <= LOOP_SLACK, f"step {n} came {late:+.1f} s after it was due: {attempts}"
    assert utc(attempts[-2]["at"]).timestamp() < up_at, f"delivered later than the first step after the receiver was back: {attempts}"
