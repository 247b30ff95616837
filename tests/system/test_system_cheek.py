"""SPEC §2, §3 and §5 in a real Airflow deployment (``airflow standalone``, LocalExecutor, SQLite):
task callbacks run in a worker's task process under the supervisor, which writes each try's log to a
file; DAG-run callbacks run in the DAG processor. Runs are started and read through the REST API v2.

Every run the module needs is started at once (they run concurrently in the deployment); each test
then waits for its own run and the webhooks it sent.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from airflow_ordo_hooks._targets import mask_url
from airflow_ordo_hooks.testing.receiver import ReceivedRequest, Respond, WebhookReceiver
from tests.system.deployments import utc

pytestmark = pytest.mark.system

DAG_IDS = (
    "system_prints_then_fails",
    "system_prints_secret",
    "system_succeeds",
    "system_run_success",
    "system_run_failed",
    "system_500_success",
    "system_500_failed",
    "system_down_success",
    "system_down_failed",
    "system_nohooks_success",
    "system_nohooks_failed",
    "system_log_burst_success",
    "system_log_burst_failed",
)
EVENTS = ("on_success", "on_error", "on_retries_exhausted")


@pytest.fixture(scope="module")
def runs(airflow_deployment, system_receiver):
    """``{dag_id: run_id}``: one run of each DAG, all started before the first test waits for one."""
    system_receiver.reset()
    for dag_id in ("system_500_success", "system_500_failed"):  # a receiver answering 500 to every request
        for task_id in ("ok", "after", "bad", "run"):
            for event in EVENTS:
                system_receiver.script(f"/{dag_id}/{task_id}/{event}", *[Respond(500)] * 50)
    return {dag_id: airflow_deployment.trigger(dag_id) for dag_id in DAG_IDS}


@pytest.fixture
def run_of(airflow_deployment, runs):
    """``run_of(dag_id)`` waits for the DAG's run to end; returns ``(run, {task_id: state})``."""

    def wait(dag_id: str):
        run = airflow_deployment.wait_for_run(dag_id, runs[dag_id])
        return run, airflow_deployment.task_states(dag_id, runs[dag_id])

    return wait


def received(receiver: WebhookReceiver, prefix: str) -> list[ReceivedRequest]:
    """The requests under ``/<prefix>/``, in the order they arrived."""
    return sorted((r for r in receiver.requests if r.path.startswith(f"/{prefix}/")), key=lambda r: r.received_at)


def wait_for_requests(receiver: WebhookReceiver, prefix: str, count: int, timeout: float = 30.0, quiet: float = 1.0) -> list[ReceivedRequest]:
    """
    Wait (bounded) for ``count`` requests under ``/<prefix>/``, then ``quiet`` seconds more for any extra one.

    A task's webhooks may come after its run has ended: the supervisor reports success and
    up_for_retry before the callbacks run (a failure only once they have returned); DAG-run
    webhooks always come after the run has ended, from the DAG processor.
    """
    deadline = time.monotonic() + timeout
    while len(received(receiver, prefix)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(quiet)
    return received(receiver, prefix)


def _events(requests):
    return [(r.path.rsplit("/", 1)[1], r.json["retry_attempt"], r.json["retries_exhausted"]) for r in requests]


def test_each_failed_try_sends_its_own_log_from_the_try_log_file(run_of, system_receiver, airflow_deployment):
    run, tasks = run_of("system_prints_then_fails")
    requests = wait_for_requests(system_receiver, "system_prints_then_fails", 3)

    assert run["state"] == "failed" and tasks == {"job": "failed"}
    assert _events(requests) == [("on_error", 0, False), ("on_error", 1, False), ("on_retries_exhausted", 1, True)]
    for request in requests:
        body = request.json
        try_number = body["retry_attempt"] + 1
        assert body["name"] == "job" and body["status"] == -1 and body["triggered_by"] == "manual"
        assert body["airflow"]["try_number"] == try_number and body["airflow"]["run_id"] == run["dag_run_id"]
        # printed to stdout by this try, and not part of the exception: only the try's log file has it
        assert f"printed by try {try_number}: the kettle is empty" in body["log"], body["log"]
        other = 2 if try_number == 1 else 1
        assert f"printed by try {other}:" not in body["log"], "a payload carries another try's log"
        assert "RuntimeError" in body["log"] and "deliberate failure" in body["log"]
    # the log files the supervisor wrote are where that text came from, and the callbacks ran in the
    # tries' own task processes: what they logged is in those files
    files = airflow_deployment.task_log_files("system_prints_then_fails")
    assert [f.name for f in files] == ["attempt=1.log", "attempt=2.log"]
    for file in files:
        assert "airflow-ordo-hooks: reading this try's log" in file.read_text()
    assert "printed by try 1: the kettle is empty" in files[0].read_text()
    # two tries, the second a real retry_delay (3 s) after the first; on Celery, each run by the worker
    if airflow_deployment.kind == "celery":
        ran = airflow_deployment.celery_workloads()
        for file in files:
            assert str(file.relative_to(airflow_deployment.home / "logs")) in ran, f"the Celery worker did not run {file}"
    first, second = airflow_deployment.tries("system_prints_then_fails", run["dag_run_id"], "job")
    gap = utc(second["start_date"]) - utc(first["end_date"])
    assert gap.total_seconds() >= 3, f"the retry started {gap} after the first try ended"


def test_a_printed_connection_password_is_masked_in_the_payload(run_of, system_receiver, airflow_deployment):
    run, tasks = run_of("system_prints_secret")
    requests = wait_for_requests(system_receiver, "system_prints_secret", 1)

    assert run["state"] == "failed" and tasks == {"job": "failed"}
    assert _events(requests) == [("on_error", 0, False)]
    (request,) = requests
    assert "connecting with password *** now" in request.json["log"], request.json["log"]
    password = airflow_deployment.secret_password
    assert password not in request.body.decode() and password not in request.body.decode("unicode_escape")


def test_on_success_carries_the_log_of_the_succeeding_try(run_of, system_receiver):
    run, tasks = run_of("system_succeeds")
    requests = wait_for_requests(system_receiver, "system_succeeds", 1)

    assert run["state"] == "success" and tasks == {"job": "success"}
    assert _events(requests) == [("on_success", 0, False)]
    body = requests[0].json
    assert body["status"] == 0 and body["name"] == "job"
    assert "the coffee is ready, says the succeeding task" in body["log"], body["log"]


@pytest.mark.parametrize("outcome, event", [("success", "on_success"), ("failed", "on_error")])
def test_the_log_ends_where_the_try_log_ends_and_logged_exceptions_read_as_exceptions(run_of, system_receiver, outcome, event):
    dag_id = f"system_log_burst_{outcome}"
    run, tasks = run_of(dag_id)
    requests = wait_for_requests(system_receiver, dag_id, 1)

    assert run["state"] == outcome and tasks == {"job": outcome}
    assert [r.path for r in requests] == [f"/{dag_id}/job/{event}"]
    log = requests[0].json["log"]
    # the last lines the try logged, though the supervisor writes them to the file behind the task
    assert log.count("the last line of the burst") == 1, f"the payload's log ends before the try's log does:\n{log[-2000:]}"
    tail = log[log.index("burst line 2999 of 3000"):]
    assert "the last line of the burst" in tail and "handled a problem" in tail
    assert "airflow-ordo-hooks: reading this try's log" not in log
    # an exception logged with log.exception, as the supervisor wrote it (structlog's dict, under error_detail)
    assert "ValueError: the beans are wet" in tail, f"a logged exception is lost:\n{tail}"
    if outcome == "failed":
        assert "RuntimeError: the burst failed" in tail
        assert 'system_cheek.py", line' in tail, "the failure's traceback is in the log"
        assert tail.count("RuntimeError: the burst failed") == 1, "the failure is in the log once"


@pytest.mark.parametrize("outcome, event, status", [("success", "on_success", 0), ("failed", "on_error", -1)])
def test_dag_run_events_are_sent_once_from_the_dag_processor(run_of, system_receiver, airflow_deployment, outcome, event, status):
    dag_id = f"system_run_{outcome}"
    run, tasks = run_of(dag_id)
    requests = wait_for_requests(system_receiver, dag_id, 1, timeout=60, quiet=2.0)

    assert run["state"] == outcome and tasks == {"job": outcome}
    assert [r.path for r in requests] == [f"/{dag_id}/run/{event}"]
    body = requests[0].json
    assert body["name"] == dag_id and body["status"] == status
    # a failed run names the task(s) that failed, read in the DAG processor through the Task SDK
    failed = ["job"] if outcome == "failed" else []
    assert body["airflow"] == {"dag_id": dag_id, "run_id": run["dag_run_id"], "state": outcome, "failed_tasks": failed}
    assert body["log"].endswith("\nfailed: job") == (outcome == "failed"), body["log"]
    # one callback request, run once in the DAG processor, which logs each callback of the DAG's list:
    # the run's hooks, then the sweep for tries killed before their callbacks ran; and it returned:
    # the processor went on to hand its parse back
    deadline = time.monotonic() + 10  # the processor's log is written behind it, as a task's is
    while len(started := airflow_deployment.dag_callback_times(dag_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(started) == 2, f"DAG callbacks of {dag_id} started: {started}"
    started = started[-1]
    airflow_deployment.wait_until_parsed_after(dag_id, started)
    timeouts = airflow_deployment.dag_processor_timeouts()
    assert timeouts == [], "the DAG processor timed out:\n" + "\n".join(timeouts)


@pytest.mark.parametrize("outcome", ["success", "failed"])
def test_a_receiver_answering_500_changes_no_state(run_of, system_receiver, outcome):
    with_hooks, with_hooks_tasks = run_of(f"system_500_{outcome}")
    without, without_tasks = run_of(f"system_nohooks_{outcome}")
    expected_tasks = {"ok": "success", "after": "success"} | ({"bad": "failed"} if outcome == "failed" else {})
    # one webhook-id per event: ok and after succeed (on_success each), bad fails twice (retries=1:
    # on_error twice, then on_retries_exhausted), the run ends; each delivery is tried [ordo_hooks]
    # max_attempts = 3 times at once against the 500s, then again by the ledger's redelivery
    expected = {"ok/on_success": 1, "after/on_success": 1, f"run/{'on_success' if outcome == 'success' else 'on_error'}": 1}
    if outcome == "failed":
        expected |= {"bad/on_error": 2, "bad/on_retries_exhausted": 1}

    def tried_three_times():
        tries = Counter((r.path.split("/", 2)[2], r.header("webhook-id")) for r in received(system_receiver, f"system_500_{outcome}"))
        ids = Counter(path for path, _ in tries)
        return (ids, tries) if ids == expected and all(n >= 3 for n in tries.values()) else None

    deadline = time.monotonic() + 60
    while not (found := tried_three_times()):
        assert time.monotonic() < deadline, Counter(r.path for r in received(system_receiver, f"system_500_{outcome}"))
        time.sleep(0.5)

    assert without["state"] == outcome and without_tasks == expected_tasks
    assert with_hooks["state"] == without["state"] and with_hooks_tasks == without_tasks
    assert found[0] == expected
    assert not received(system_receiver, f"system_nohooks_{outcome}")


@pytest.mark.parametrize("outcome", ["success", "failed"])
def test_a_receiver_that_is_down_changes_no_state_and_every_failed_delivery_is_recorded(run_of, airflow_deployment, outcome):
    dag_id = f"system_down_{outcome}"
    with_hooks, with_hooks_tasks = run_of(dag_id)
    without, without_tasks = run_of(f"system_nohooks_{outcome}")

    assert with_hooks["state"] == without["state"] == outcome
    # Ordo's on_exit step is a teardown: it succeeds though its receiver is down, and counts for nothing
    assert with_hooks_tasks == without_tasks | {"call_webhook": "success"}
    record = airflow_deployment.xcom(dag_id, with_hooks["dag_run_id"], "call_webhook")
    assert record["job_status"] == outcome and record["source"] == "rest_api"
    delivery = record["delivery"]
    # tried where it fired, up to [ordo_hooks] max_attempts (3) within the inline budget (2 s; a busy
    # machine may fit fewer), then handed to the ledger
    assert delivery["status_code"] is None and 1 <= delivery["attempts"] <= 3, delivery
    assert "ConnectionError" in delivery["error"] and "refused" in delivery["error"].lower(), delivery
    # each task's failed deliveries are in its try's log, one warning per event, naming the target
    down = f"127.0.0.1:{airflow_deployment.down_port}"

    def warnings():
        found = {}
        for file in airflow_deployment.task_log_files(dag_id):
            task = file.parent.name.removeprefix("task_id=")
            # the down receiver's; the deployment-wide hooks' receiver is up, though on a loaded machine a
            # stalled task process can run out of the budget for it too: not what this test is about
            lines = [line for line in file.read_text().splitlines()
                     if re.search(r"not delivered after [123] attempt\(s\)", line) and down in line]
            assert all("refused" in line.lower() for line in lines), lines
            if task != "call_webhook":
                found[f"{task}/{file.name}"] = len(lines)
        return found

    expected = {"ok/attempt=1.log": 1, "after/attempt=1.log": 1}  # on_success
    if outcome == "failed":  # on_error, then on_error and on_retries_exhausted
        expected |= {"bad/attempt=1.log": 1, "bad/attempt=2.log": 2}
    # a task's callbacks run after it reported its state, so the run can end before the last
    # warning is written: wait for it, bounded by the callbacks' own time (task_success_overtime)
    deadline = time.monotonic() + 30
    while (found := warnings()) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert found == expected
    # and the DAG-run event's, in the DAG processor's log, naming its target masked (the fingerprint
    # tells it from the others)
    event = "on_success" if outcome == "success" else "on_error"
    target = mask_url(f"http://{down}/{dag_id}/run/{event}")
    deadline = time.monotonic() + 30
    while not (lines := [line for line in airflow_deployment.dag_processor_log().splitlines()
                         if target in line and "not delivered" in line]):
        assert time.monotonic() < deadline, f"no failed delivery of {dag_id}'s run event in the DAG processor's log"
        time.sleep(0.5)
    assert len(lines) == 1, lines
