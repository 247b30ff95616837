"""SPEC §2 (C1-C7) and §3: cheek's events on real Airflow task runs (dag.test), delivered to a real receiver."""

from __future__ import annotations

import json
import time

import pytest

from airflow_ordo_hooks.testing.receiver import Respond

pytestmark = pytest.mark.airflow


def _events(receiver, dag_id):
    """(task, event, retry_attempt, retries_exhausted) of every webhook a DAG's tasks sent, in order."""
    got = []
    for r in receiver.requests:
        parts = r.path.strip("/").split("/")
        if parts[0] == dag_id and len(parts) == 3:
            got.append((parts[1], parts[2], r.json["retry_attempt"], r.json["retries_exhausted"]))
    return got


def _expected(pattern, retries):
    if pattern == "succeeds":
        return [("on_success", 0, False)]
    if pattern == "fails_then_succeeds":
        return [("on_error", 0, False)] + ([("on_success", 1, False)] if retries else [])
    return [("on_error", i, False) for i in range(retries + 1)] + (
        [("on_retries_exhausted", retries, True)] if retries else []
    )


@pytest.mark.parametrize("retries", [0, 1, 3])
@pytest.mark.parametrize("pattern", ["always_fails", "fails_then_succeeds", "succeeds"])
def test_event_sequence_follows_cheek(run_dag, receiver, pattern, retries):
    dag_id = f"cheek_{pattern}_r{retries}"
    run = run_dag(dag_id)

    expected = _expected(pattern, retries)
    assert [e[1:] for e in _events(receiver, dag_id)] == expected
    final = "failed" if expected[-1][0] != "on_success" else "success"
    assert run_dag.task_states(run) == {"job": final}

    payloads = [r.json for r in receiver.requests]
    assert len({p["triggered_at"] for p in payloads}) == 1, "triggered_at is the run's, the same for every try"
    for p in payloads:
        assert p["name"] == "job" and p["triggered_by"] == "manual" and p["triggered"] == []
        assert p["airflow"]["dag_id"] == dag_id and p["airflow"]["try_number"] == p["retry_attempt"] + 1
        if p["status"] != 0:
            assert p["status"] == -1 and f"{pattern} failed on try {p['retry_attempt'] + 1}" in p["log"]


def test_a_task_failing_for_good_before_its_retries_are_used_still_exhausts_them(run_dag, receiver):
    run_dag("cheek_fail_fast")

    assert [e[1:] for e in _events(receiver, "cheek_fail_fast")] == [
        ("on_error", 0, False),
        ("on_retries_exhausted", 0, True),
    ]
    assert "no point in retrying" in receiver.requests[-1].json["log"]


def test_on_retries_exhausted_is_sent_after_on_error_has_been_answered(run_dag, receiver):
    receiver.script("/cheek_always_fails_r1/job/on_error", Respond(200), Respond(200, delay=0.5))
    run_dag("cheek_always_fails_r1")

    requests = receiver.requests
    assert [r.path.rsplit("/", 1)[1] for r in requests] == ["on_error", "on_error", "on_retries_exhausted"]
    assert requests[2].received_at >= requests[1].received_at + 0.5


def test_an_execution_timeout_is_a_failed_try(run_dag, receiver):
    run_dag("cheek_timeout")

    events = _events(receiver, "cheek_timeout")
    assert [e[1:] for e in events] == [("on_error", 0, False), ("on_error", 1, False), ("on_retries_exhausted", 1, True)]
    assert "Timeout" in receiver.requests[0].json["log"]


def test_skipped_and_upstream_failed_tasks_fire_no_event(run_dag, receiver):
    run = run_dag("cheek_skip_and_upstream_failed")

    assert run_dag.task_states(run) == {"skips": "skipped", "fails": "failed", "downstream": "upstream_failed"}
    assert _events(receiver, "cheek_skip_and_upstream_failed") == [("fails", "on_error", 0, False)]


def test_dag_level_and_task_level_hooks_combine_and_a_shared_target_gets_one_delivery(run_dag, receiver):
    run_dag("cheek_levels")

    got = sorted((r.path, r.json["name"]) for r in receiver.requests)
    assert got == [
        ("/cheek_levels/own", "own"),
        ("/cheek_levels/shared", "own"),
        ("/cheek_levels/shared", "plain"),
    ]


def test_status_is_the_exit_code_of_a_bash_command(run_dag, receiver):
    run_dag("cheek_bash_exit")

    (request,) = receiver.requests
    assert request.json["status"] == 3
    assert "exit code 3" in request.json["log"]


def test_a_connection_password_in_the_log_is_masked(run_dag, receiver, monkeypatch):
    password = "s3cr3t-hunter2-xyzzy"
    monkeypatch.setenv("AIRFLOW_CONN_CHEEK_SECRET_DB", json.dumps({"conn_type": "postgres", "host": "db", "password": password}))
    run_dag("cheek_secret_in_log")

    (request,) = receiver.requests
    log = request.json["log"]
    assert "could not log in with password ***" in log
    assert password not in request.body.decode()


def test_slack_and_discord_bodies_are_their_documented_shape(run_dag, receiver):
    run_dag("cheek_chat")

    bodies = {r.path.split("/")[1]: r for r in receiver.requests}
    slack, discord = bodies["slack"], bodies["discord"]
    assert set(slack.json) == {"text"} and set(discord.json) == {"content"}
    for request, text in ((slack, slack.json["text"]), (discord, discord.json["content"])):
        assert request.header("Content-Type") == "application/json"
        assert text.startswith("job (exitcode -1):\n")
        assert text.endswith("RuntimeError: Kettle überhitzt ☕")
        key = "text" if request is slack else "content"
        assert request.body == json.dumps({key: text}, ensure_ascii=False, separators=(",", ":")).encode()
    assert len(discord.json["content"]) <= 2000


def test_a_hanging_receiver_holds_the_task_no_longer_than_the_budget(run_dag, receiver):
    receiver.script("/hang", *[Respond(200, delay=60)] * 5)
    start = time.monotonic()
    run = run_dag("cheek_hanging_receiver")
    elapsed = time.monotonic() - start

    assert str(run.state) == "success"
    # the test environment sets [ordo_hooks] budget = 3 s; dag.test itself takes well under a second here
    assert 3.0 <= elapsed < 5.0
    assert len(receiver.requests) >= 1


@pytest.mark.parametrize("outcome, event, status", [("success", "on_success", 0), ("failed", "on_error", -1)])
def test_dag_run_events_name_the_dag(run_dag, receiver, outcome, event, status):
    run = run_dag(f"cheek_run_{outcome}")

    assert str(run.state) == outcome
    (request,) = receiver.wait_for(1)
    assert request.path == f"/cheek_run_{outcome}/run/{event}"
    body = request.json
    assert body["name"] == f"cheek_run_{outcome}" and body["status"] == status
    assert body["retries_exhausted"] is False and body["airflow"]["run_id"] == run.run_id
    assert body["duration"] >= 0


def test_the_deliveries_of_one_callback_fit_in_the_time_the_supervisor_gives_it(run_dag, receiver, monkeypatch):
    # the supervisor kills a task process [core] task_success_overtime s after its state is sent
    monkeypatch.setenv("AIRFLOW__CORE__TASK_SUCCESS_OVERTIME", "6")  # 2 s for the deliveries of a callback
    for event in ("on_error", "on_retries_exhausted"):
        receiver.script(f"/cheek_always_fails_r1/job/{event}", *[Respond(200, delay=30)] * 10)
    start = time.monotonic()
    run_dag("cheek_always_fails_r1")
    elapsed = time.monotonic() - start

    # two callbacks of 2 s each (the 3 s delivery budget alone would give 3 + 3 + 3)
    assert elapsed < 6.5
    assert [r.path.rsplit("/", 1)[1] for r in receiver.requests][-1] == "on_retries_exhausted", "still sent, with what time was left"


def test_one_event_reads_the_providers_configuration_once(run_dag, receiver, monkeypatch):
    from airflow.sdk import conf

    from airflow_ordo_hooks.callbacks.job_event import JobEventCallback

    sections, in_callback = [], []
    getsection, call = conf.getsection, JobEventCallback.__call__

    def counting_getsection(section, *args, **kwargs):
        if in_callback:
            sections.append(section)
        return getsection(section, *args, **kwargs)

    def counted_call(self, context):
        in_callback.append(self)
        try:
            call(self, context)
        finally:
            in_callback.pop()

    monkeypatch.setattr(conf, "getsection", counting_getsection)
    monkeypatch.setattr(JobEventCallback, "__call__", counted_call)
    run_dag("cheek_succeeds_r0")

    assert [e[1] for e in _events(receiver, "cheek_succeeds_r0")] == ["on_success"]
    assert sections.count("ordo_hooks") == 1, "the callback's policy, ledger, log size and time come from one reading"


def success_context():
    """A successful try's callback context, as the Task SDK gives it, of a try that never ran."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    now = datetime.now(timezone.utc)
    ti = SimpleNamespace(dag_id="coffee", task_id="brew", run_id="r1", map_index=-1, try_number=1, max_tries=0,
                         state="success", start_date=now, log_url="http://localhost:8080/log")
    return {"ti": ti, "task": SimpleNamespace(retries=0), "exception": None,
            "dag_run": SimpleNamespace(run_type="manual", conf={}, start_date=now, run_after=now, dag_id="coffee", run_id="r1")}


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_garbage_collector_is_paused_while_the_events_are_sent_and_left_as_it_was(receiver, monkeypatch, enabled_before):
    """A full collection at a try's end scans every object of the process: none holds the webhook up; the collector is as it was after."""
    import gc

    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks import job_event
    from airflow_ordo_hooks.hooks import webhook

    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__LEDGER", "false")
    sending = []
    deliver_all = webhook.deliver_all

    def watched(*args, **kwargs):
        sending.append(gc.isenabled())
        return deliver_all(*args, **kwargs)

    monkeypatch.setattr(webhook, "deliver_all", watched)
    job_events = parse_hooks({"on_success": {"notify_webhook": [receiver.url("/event")]}})
    (gc.enable if enabled_before else gc.disable)()
    try:
        job_event.fire(["on_success"], job_events, success_context())
        after = gc.isenabled()
    finally:
        gc.enable()
    assert [r.path for r in receiver.requests] == ["/event"]
    assert sending == [False]
    assert after is enabled_before


def test_an_event_delivered_inline_is_counted_as_airflows_statsd_client_sends_it(receiver, monkeypatch):
    """Its attempt, the first attempt's time, the delivery and its time to deliver: tagged by who sent it, never by run or URL."""
    from airflow_ordo_hooks.callbacks import job_event
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from tests.test_metrics import StatsdReceiver

    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__LEDGER", "false")
    job_events = parse_hooks({"on_success": {"notify_webhook": [receiver.url("/event")]}})
    with StatsdReceiver() as statsd:
        job_event.fire(["on_success"], job_events, success_context())
        lines = statsd.lines()

    assert [r.path for r in receiver.requests] == ["/event"]
    assert lines == [
        "airflow.ordo_hooks.attempt,component=worker,outcome=2xx:1|c",
        "airflow.ordo_hooks.delivery.first_attempt,component=worker,outcome=2xx:T|ms",
        "airflow.ordo_hooks.delivery.delivered,component=worker,event=on_success,action=notify_webhook,source=callback,"
        "dag_id=coffee:1|c",
        "airflow.ordo_hooks.delivery.time_to_deliver,component=worker,source=callback:T|ms",
    ]


def _failure_context():
    context = success_context()
    context["ti"].state, context["exception"] = "failed", RuntimeError("boom")
    return context


def test_a_failing_receiver_is_counted_by_attempt_and_its_inline_budget_running_out_before_the_ledger_takes_it(receiver, monkeypatch):
    """The inline budget (1 s here, of the 3 s delivery budget) leaves time for one 0.5 s attempt: the rest is the API server's."""
    from airflow_ordo_hooks.callbacks import job_event
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from tests.test_metrics import StatsdReceiver

    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_METRICS", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "extra": {"token": "t"}}))
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "ledger_metrics")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__INLINE_BUDGET", str(1.0 + job_event.HAND_OFF_RESERVE))
    receiver.script("/down", *[Respond(503, delay=0.5)] * 3)
    receiver.script("/ordo-hooks/api/v1/deliveries/existing", Respond(body=b'{"existing": []}'))
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(body=b'{"deliveries": []}'))
    job_events = parse_hooks({"on_error": {"notify_webhook": [receiver.url("/down")]}})
    with StatsdReceiver() as statsd:
        job_event.fire(["on_error"], job_events, _failure_context())
        lines = statsd.lines()

    assert [r.path for r in receiver.requests][1:] == ["/down", "/ordo-hooks/api/v1/deliveries"]
    assert lines == [
        "airflow.ordo_hooks.attempt,component=worker,outcome=5xx:1|c",
        "airflow.ordo_hooks.delivery.first_attempt,component=worker,outcome=5xx:T|ms",
        "airflow.ordo_hooks.inline.budget_exhausted,component=worker,event=on_error,dag_id=coffee:1|c",
        "airflow.ordo_hooks.ledger.handed_over,component=worker,event=on_error,dag_id=coffee:1|c",
    ]


def test_without_the_ledger_a_delivery_that_fails_in_the_tries_own_time_too_is_given_up_by_the_worker(receiver, monkeypatch):
    from airflow_ordo_hooks.callbacks import job_event
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from tests.test_metrics import StatsdReceiver

    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__LEDGER", "false")
    receiver.script("/down", *[Respond(500)] * 6)  # 3 attempts (the test's max_attempts), then 3 more in the budget left
    with StatsdReceiver() as statsd:
        job_event.fire(["on_error"], parse_hooks({"on_error": {"notify_webhook": [receiver.url("/down")]}}), _failure_context())
        lines = statsd.lines()

    assert len(receiver.requests) == 6
    attempt = "airflow.ordo_hooks.attempt,component=worker,outcome=5xx:1|c"
    assert lines == [
        *[attempt] * 3,
        "airflow.ordo_hooks.delivery.first_attempt,component=worker,outcome=5xx:T|ms",
        *[attempt] * 3,
        "airflow.ordo_hooks.delivery.given_up,component=worker,event=on_error,action=notify_webhook,source=callback,"
        "dag_id=coffee:1|c",
    ]
