"""Recovery of tries killed before their callbacks ran: the wiring attach_hooks adds, and the status a kill gives."""

from __future__ import annotations

from datetime import datetime

from airflow_ordo_hooks import attach_hooks
from airflow_ordo_hooks.callbacks.payloads import failure_status, kill_status
from airflow_ordo_hooks.callbacks.recovery import RecoverEarlierTries, RecoverRun, attached_hooks

SUPERVISOR_LINE = (
    "[2026-11-23T07:00:00.000+0000] {supervisor.py:1226} CRITICAL - Process terminated by signal. Likely out of memory "
    "error (OOM). For more information, see https://airflow.apache.org/docs/... signal=-9 signal_name=SIGKILL"
)


def test_a_killed_tries_status_is_minus_the_signal_the_supervisor_names():
    assert kill_status(f"doing work\n{SUPERVISOR_LINE}") == -9
    assert kill_status(SUPERVISOR_LINE.replace("-9", "-15").replace("SIGKILL", "SIGTERM")) == -15
    assert kill_status("Task failed with exception\nValueError: boom") is None


def test_a_failure_run_by_the_dag_processor_takes_the_signal_from_the_log_when_its_context_has_no_exit_code():
    # a killed try whose callbacks the DAG processor runs: the context's error carries no exit code
    assert failure_status("Task was killed", f"doing work\n{SUPERVISOR_LINE}") == -9
    assert failure_status(SystemExit(3), SUPERVISOR_LINE) == 3  # an exit code the failure carries comes first
    assert failure_status(RuntimeError("boom"), "no supervisor line") == -1


def test_attach_hooks_adds_one_recovery_per_task_and_one_per_dag_and_combines_hooks():
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("recovery_wiring", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        a = EmptyOperator(task_id="a", retries=1)
        b = EmptyOperator(task_id="b")
    attach_hooks(dag, {"on_error": {"notify_webhook": ["https://example.com/dag"]}})
    attach_hooks(a, {"on_success": {"notify_webhook": ["https://example.com/a"]}})

    (recover_a,) = [cb for cb in a.on_execute_callback if isinstance(cb, RecoverEarlierTries)]
    assert {x.target for x in recover_a.job_events.actions} == {"https://example.com/dag", "https://example.com/a"}
    assert attached_hooks(a) == recover_a.job_events
    # the DAG's callbacks are shared by its tasks: a's own hooks are added to a's copies, not to b's
    for name in ("on_success_callback", "on_failure_callback", "on_retry_callback", "on_execute_callback"):
        ours_b = [cb for cb in getattr(b, name) if hasattr(cb, "job_events")]
        assert len(ours_b) == (2 if name == "on_execute_callback" else 1), ours_b  # preparing the events, recovering
        for of_b in ours_b:
            assert {x.target for x in of_b.job_events.actions} == {"https://example.com/dag"}, name
        for of_a in [cb for cb in getattr(a, name) if hasattr(cb, "job_events")]:
            assert {x.target for x in of_a.job_events.actions} == {"https://example.com/dag", "https://example.com/a"}, name
    # a skipped try's copy of its output is stopped, once, however many times hooks were attached
    assert [repr(cb) for cb in a.on_skipped_callback] == [repr(cb) for cb in b.on_skipped_callback] == ["StopTryOutputCopy()"]
    for name in ("on_success_callback", "on_failure_callback"):
        assert sum(isinstance(cb, RecoverRun) for cb in getattr(dag, name)) == 1
    assert dag.has_on_success_callback and dag.has_on_failure_callback


def test_the_events_of_a_killed_try_handed_to_the_ledger_are_counted_by_event(receiver, monkeypatch):
    """A retry's start recovers its earlier try's on_error, one delivery per target: counted once, as events recovered by the worker."""
    import json
    import time
    from datetime import timezone
    from types import SimpleNamespace

    from airflow_ordo_hooks.callbacks.recovery import recover
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.testing.receiver import Respond
    from tests.test_metrics import StatsdReceiver

    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_RECOVERY", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "extra": {"token": "t"}}))
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "ledger_recovery")
    killed = {"task_id": "brew", "try_number": 1, "state": "failed", "map_index": -1, "end_date": "2026-11-23T07:00:00Z"}
    receiver.script("/api/v2/dags/coffee/dagRuns/r1/taskInstances/brew/tries",
                    Respond(body=json.dumps({"task_instances": [killed]}).encode()))
    receiver.script("/ordo-hooks/api/v1/deliveries/existing", Respond(body=b'{"existing": []}'))
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(body=b'{"deliveries": []}'))
    job_events = parse_hooks({"on_error": {"notify_webhook": ["https://example.com/a", "https://example.com/b"]}})
    now = datetime.now(timezone.utc)
    dag_run = SimpleNamespace(dag_id="coffee", run_id="r1", run_type="manual", conf={}, start_date=now, run_after=now)

    with StatsdReceiver() as statsd:
        handed = recover("coffee", "r1", {"brew": (job_events, 1)}, only=[("brew", -1)], before_try=2,
                         deadline=time.monotonic() + 10, dag_run=dag_run)
        lines = statsd.lines()

    assert handed == 2
    (recorded,) = [r.json["deliveries"] for r in receiver.requests if r.path == "/ordo-hooks/api/v1/deliveries"]
    assert [(d["event"], d["source"]) for d in recorded] == [("on_error", "recovery")] * 2
    assert lines == ["airflow.ordo_hooks.event.recovered,component=worker,event=on_error,dag_id=coffee:2|c"]
