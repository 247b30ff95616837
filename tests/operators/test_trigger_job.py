"""SPEC §4 (T1-T6): trigger_job under dag.test(): the child runs it creates (they stay queued there)."""

from __future__ import annotations

import time

import pytest

from airflow_ordo_hooks.callbacks.trigger import CONF_KEY, parent_context, task_id_for
from airflow_ordo_hooks.testing.receiver import Respond

pytestmark = pytest.mark.airflow


@pytest.fixture
def new_runs():
    """``new_runs(dag_id)``: the confs of the runs of ``dag_id`` created since the test started
    (with ``with_type``: ``(run_type, state, conf)``; with ``with_id``: ``(run_id, conf)``)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        before = {r.id for r in session.query(DagRun).all()}

    def runs(dag_id, with_type=False, with_id=False):
        with create_session() as session:
            found = [r for r in session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id) if r.id not in before]
            if with_id:
                return [(r.run_id, r.conf) for r in found]
            return [(str(r.run_type), str(r.state), r.conf) if with_type else r.conf for r in found]

    return runs


@pytest.fixture
def run_child(run_dag, new_runs, monkeypatch):
    """
    ``run_child(dag_id)``: run under ``dag.test()`` the one run of ``dag_id`` a trigger task
    created, as that very run (its id, its conf): dag.test() cannot run a queued run, so the run is
    replaced by one of the same id. A context is honoured only in the run it was signed for.
    """
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    def run(dag_id):
        ((run_id, conf),) = new_runs(dag_id, with_id=True)
        with create_session() as session:
            for queued in session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id):
                session.delete(queued)
        with monkeypatch.context() as m:
            m.setattr(DagRun, "generate_run_id", staticmethod(lambda **_: run_id))
            return run_dag(dag_id, conf=conf)

    return run


def test_on_success_starts_the_child_with_the_parents_payload(run_dag, receiver, new_runs):
    run = run_dag("trigger_on_success")

    states = run_dag.task_states(run)
    assert states == {
        "job": "success",
        task_id_for("job", "on_success", "trigger_child"): "success",
        task_id_for("job", "on_error", "trigger_child_b"): "skipped",
    }
    assert str(run.state) == "success", "a skipped trigger task leaves a successful run successful"
    ((run_type, state, conf),) = new_runs("trigger_child", with_type=True)
    assert (run_type, state) == ("operator_triggered", "queued")  # dag.test starts no scheduler: the child waits
    assert new_runs("trigger_child_b") == []
    context = conf[CONF_KEY]
    assert context["triggered_by"] == "job[trigger_on_success]"
    assert context["chain"] == ["trigger_on_success"]
    parent = context["triggered_by_job_run"]
    assert parent["name"] == "job" and parent["status"] == 0 and parent["triggered"] == ["trigger_child"]
    assert parent["airflow"]["dag_id"] == "trigger_on_success"


def test_retries_exhausted_starts_its_child_and_a_retried_try_needs_the_api_connection(run_dag, receiver, new_runs, caplog):
    run = run_dag("trigger_on_exhausted")

    assert str(run.state) == "failed", "a successful trigger task does not turn a failed run successful"
    states = run_dag.task_states(run)
    assert states["job"] == "failed"
    assert states[task_id_for("job", "on_retries_exhausted", "trigger_child")] == "success"
    assert states[task_id_for("job", "on_error", "trigger_child_b")] == "success"
    assert states[task_id_for("job", "on_success", "trigger_child")] == "skipped"
    (child,) = new_runs("trigger_child")
    assert child[CONF_KEY]["triggered_by"] == "retries_exhausted[trigger_on_exhausted]"
    assert child[CONF_KEY]["triggered_by_job_run"]["retries_exhausted"] is True
    (child_b,) = new_runs("trigger_child_b")  # the final failure's on_error, by its graph task
    assert child_b[CONF_KEY]["triggered_by"] == "job[trigger_on_exhausted]"
    assert child_b[CONF_KEY]["triggered_by_job_run"]["retry_attempt"] == 1
    # the first, retried try had no graph task: without the API connection, an error, and its webhook still went
    assert "Airflow's REST API is not reachable through connection 'airflow_api'" in caplog.text
    assert [r.json["retry_attempt"] for r in receiver.requests] == [0, 1]
    # the retried try's child was not started, so its payload does not list it; the final failure's
    # is started by its graph task
    assert [r.json["triggered"] for r in receiver.requests] == [[], ["trigger_child_b"]]


def test_the_trigger_task_builds_the_payload_itself_without_waiting_for_a_callback(run_dag, receiver, new_runs, caplog):
    """The watched task has no hooks, so no callback leaves anything for its trigger task (as with a
    killed task); under dag.test() there is no REST API either: the payload comes from the task's state."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    trigger_id = task_id_for("job", "on_retries_exhausted", "trigger_child")
    run = run_dag("trigger_without_callback")

    assert run_dag.task_states(run) == {"job": "failed", trigger_id: "success"}
    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=trigger_id).one()
        seconds = (ti.end_date - ti.start_date).total_seconds()
    assert seconds < 5, f"the trigger task took {seconds:.1f} s: it waited for something"
    (conf,) = new_runs("trigger_child")
    assert conf[CONF_KEY]["triggered_by"] == "retries_exhausted[trigger_without_callback]"
    parent = conf[CONF_KEY]["triggered_by_job_run"]
    assert {k: parent[k] for k in ("name", "status", "triggered", "retry_attempt", "retries_exhausted", "duration")} == {
        "name": "job", "status": -1, "triggered": ["trigger_child"],
        "retry_attempt": 2,  # the try is unknown: a final failure is taken as the last try, index = retries
        "retries_exhausted": True, "duration": None,
    }
    assert parent["log"] == "job ended failed; its log could not be read"
    assert parent["triggered_by"] == "manual" and parent["triggered_at"]
    assert parent["airflow"] == {
        "dag_id": "trigger_without_callback", "task_id": "job", "run_id": run.run_id, "map_index": -1,
        "try_number": None, "max_tries": None, "state": "failed", "log_url": parent["airflow"]["log_url"],
    }
    assert "/dags/trigger_without_callback/runs/" in parent["airflow"]["log_url"] and parent["airflow"]["log_url"].endswith("/tasks/job")
    assert "there is no connection 'airflow_api' to Airflow's REST API, so job's on_retries_exhausted payload is built from its state" in caplog.text


def test_a_child_reports_who_triggered_it(run_dag, receiver, run_child):
    run_dag("trigger_on_success")
    run_child("trigger_child")

    (request,) = receiver.requests
    body = request.json
    assert body["triggered_by"] == "job[trigger_on_success]"
    assert body["triggered_by_job_run"]["name"] == "job"
    assert body["triggered_by_job_run"]["airflow"]["dag_id"] == "trigger_on_success"


def test_a_cycle_stops_after_one_round(run_dag, receiver, new_runs, run_child, caplog):
    run_dag("cycle_a")
    (conf_b,) = new_runs("cycle_b")
    assert conf_b[CONF_KEY]["chain"] == ["cycle_a"]

    run = run_child("cycle_b")

    assert run_dag.task_states(run)[task_id_for("job", "on_success", "cycle_a")] == "skipped"
    assert new_runs("cycle_a") == [{}], "only the first round's own run of cycle_a"
    assert "not starting cycle_a again, it would close the cycle cycle_a -> cycle_b -> cycle_a" in caplog.text
    payload = receiver.requests[-1].json
    assert payload["triggered"] == [] and payload["triggered_by"] == "job[cycle_a]"


def test_a_context_copied_into_another_run_names_no_parent_and_stops_no_trigger(run_dag, receiver, new_runs, caplog):
    """A signed context is for the run it was written for: pasted into another run of the same DAG,
    or into another DAG's run, it is ignored (with a warning), not a parent nor a cycle."""
    run_dag("cycle_a")
    (conf_b,) = new_runs("cycle_b")

    again = run_dag("cycle_b", conf=conf_b)  # another run of cycle_b, not the one conf_b was signed for
    elsewhere = run_dag("cycle_a", conf=conf_b)  # another DAG

    assert run_dag.task_states(again)[task_id_for("job", "on_success", "cycle_a")] == "success", "no cycle: cycle_a is started"
    assert run_dag.task_states(elsewhere)[task_id_for("job", "on_success", "cycle_b")] == "success"
    assert len(new_runs("cycle_a")) == 3, "the two runs of cycle_a here, and the one cycle_b started"
    assert "would close the cycle" not in caplog.text
    for run in (again, elsewhere):
        assert f"of run {run.run_id} of {run.dag_id} is ignored: its signature does not match" in caplog.text
    payloads = [r.json for r in receiver.requests]
    assert [(p["name"], p["triggered_by"], p["triggered"]) for p in payloads] == [
        ("job", "manual", ["cycle_b"]), ("job", "manual", ["cycle_a"]), ("job", "manual", ["cycle_b"])
    ]
    assert not any("triggered_by_job_run" in p for p in payloads), "no forged parent in any payload"
    children = {d: [c for r, c in new_runs(d, with_id=True) if r.startswith("trigger_job__")] for d in ("cycle_a", "cycle_b")}
    (from_again,) = children["cycle_a"]
    _, from_elsewhere = children["cycle_b"]
    assert (from_again[CONF_KEY]["chain"], from_elsewhere[CONF_KEY]["chain"]) == (["cycle_b"], ["cycle_a"]), "chains of their own"
    assert from_again[CONF_KEY]["triggered_by_job_run"]["triggered_by"] == "manual"
    assert from_elsewhere[CONF_KEY]["triggered_by_job_run"]["triggered_by"] == "manual"


def test_a_malformed_context_costs_a_run_neither_its_events_nor_its_triggers(run_dag, receiver, new_runs, caplog):
    run = run_dag("cycle_a", conf={CONF_KEY: {"triggered_by": "job[cycle_b]", "chain": ["cycle_b"], "signature": "é"}})

    assert run_dag.task_states(run) == {"job": "success", task_id_for("job", "on_success", "cycle_b"): "success"}
    (payload,) = [r.json for r in receiver.requests]
    assert (payload["triggered_by"], payload["triggered"]) == ("manual", ["cycle_b"])
    (child,) = new_runs("cycle_b")
    assert child[CONF_KEY]["chain"] == ["cycle_a"] and child[CONF_KEY]["triggered_by"] == "job[cycle_a]"
    assert f"of run {run.run_id} of cycle_a is ignored: its signature does not match" in caplog.text


def test_a_missing_target_fails_only_its_trigger_task(run_dag):
    run = run_dag("trigger_missing_target")

    states = run_dag.task_states(run)
    assert states["job"] == "success"
    assert states[task_id_for("job", "on_success", "no_such_dag")] == "failed"
    assert str(run.state) == "success"


def test_starting_a_run_from_a_callback_counts_against_the_callbacks_time(run_dag, receiver, monkeypatch):
    # a REST API that never answers the dagRuns POST in time; a delivery budget (8 s) longer than the
    # callback's time ([core] task_success_overtime 7 s, less 4): only the callback's deadline can stop it
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", receiver.url("").rstrip("/"))
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__BUDGET", "8")
    monkeypatch.setenv("AIRFLOW__CORE__TASK_SUCCESS_OVERTIME", "7")
    receiver.script("/api/v2/dags/trigger_child_b/dagRuns", *[Respond(200, delay=20)] * 5)
    start = time.monotonic()
    run = run_dag("trigger_on_exhausted")
    elapsed = time.monotonic() - start

    assert str(run.state) == "failed"
    posts = [r for r in receiver.requests if r.path == "/api/v2/dags/trigger_child_b/dagRuns"]
    assert len(posts) == 1, "the first try's on_error asked the API to start its child"
    body = posts[0].json
    assert parent_context(body["conf"], "trigger_child_b", body["dag_run_id"])["triggered_by"] == "job[trigger_on_exhausted]", (
        "the context is signed for the run the request creates"
    )
    first_try = [r.json for r in receiver.requests if r.path == "/trigger_on_exhausted/job/on_error" and r.json["retry_attempt"] == 0]
    assert first_try and first_try[0]["triggered"] == [], "the child was not started in time, and the payload says so"
    # unbounded, the POST alone would hold the first callback 8 s
    assert elapsed < 8.0, f"the run took {elapsed:.1f} s: starting the child was not bounded by the callback's time"
